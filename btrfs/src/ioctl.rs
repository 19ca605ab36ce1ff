//! The one layer that calls `ioctl(2)`. Every `unsafe` block of the crate lives here.
//!
//! Each function takes a borrowed file descriptor and a properly sized, owned argument struct, so
//! the kernel only ever reads and writes memory we own for the duration of the call. Functions
//! return the raw `c_int` on success: a few btrfs ioctls return *positive* values (e.g.
//! `BTRFS_ERROR_DEV_EXCL_RUN_IN_PROGRESS`) that callers must check.

use btrfs_sys as sys;
use btrfs_sys::ioctl as req;
use nix::errno::Errno;
use std::ffi::{c_char, c_int};
use std::os::fd::{AsRawFd, BorrowedFd};

/// The outcome of one ioctl call: the kernel's non-negative return value, or its errno.
pub(crate) type IoctlResult<T = c_int> = Result<T, Errno>;

mod raw {
    use super::{req, sys};
    nix::ioctl_read_bad!(
        fs_info,
        req::BTRFS_IOC_FS_INFO,
        sys::btrfs_ioctl_fs_info_args
    );
    nix::ioctl_readwrite_bad!(
        dev_info,
        req::BTRFS_IOC_DEV_INFO,
        sys::btrfs_ioctl_dev_info_args
    );
    nix::ioctl_read_bad!(
        get_label,
        req::BTRFS_IOC_GET_FSLABEL,
        [u8; sys::BTRFS_LABEL_SIZE as usize]
    );
    nix::ioctl_readwrite_bad!(space_info, req::BTRFS_IOC_SPACE_INFO, u64);
    nix::ioctl_readwrite_bad!(
        tree_search,
        req::BTRFS_IOC_TREE_SEARCH,
        sys::btrfs_ioctl_search_args
    );
    nix::ioctl_readwrite_bad!(
        balance_v2,
        req::BTRFS_IOC_BALANCE_V2,
        sys::btrfs_ioctl_balance_args
    );
    nix::ioctl_write_int_bad!(balance_ctl, req::BTRFS_IOC_BALANCE_CTL);
    nix::ioctl_read_bad!(
        balance_progress,
        req::BTRFS_IOC_BALANCE_PROGRESS,
        sys::btrfs_ioctl_balance_args
    );
    nix::ioctl_none_bad!(sync, req::BTRFS_IOC_SYNC);
    nix::ioctl_read_bad!(start_sync, req::BTRFS_IOC_START_SYNC, u64);
    nix::ioctl_write_ptr_bad!(wait_sync, req::BTRFS_IOC_WAIT_SYNC, u64);
    nix::ioctl_write_ptr_bad!(resize, req::BTRFS_IOC_RESIZE, sys::btrfs_ioctl_vol_args);
    nix::ioctl_write_ptr_bad!(
        subvol_create_v2,
        req::BTRFS_IOC_SUBVOL_CREATE_V2,
        sys::btrfs_ioctl_vol_args_v2
    );
    nix::ioctl_write_ptr_bad!(
        snap_create_v2,
        req::BTRFS_IOC_SNAP_CREATE_V2,
        sys::btrfs_ioctl_vol_args_v2
    );
    nix::ioctl_write_ptr_bad!(
        snap_destroy_v2,
        req::BTRFS_IOC_SNAP_DESTROY_V2,
        sys::btrfs_ioctl_vol_args_v2
    );
    nix::ioctl_readwrite_bad!(
        ino_lookup,
        req::BTRFS_IOC_INO_LOOKUP,
        sys::btrfs_ioctl_ino_lookup_args
    );
    nix::ioctl_readwrite_bad!(
        ino_lookup_user,
        req::BTRFS_IOC_INO_LOOKUP_USER,
        sys::btrfs_ioctl_ino_lookup_user_args
    );
    nix::ioctl_read_bad!(
        get_subvol_info,
        req::BTRFS_IOC_GET_SUBVOL_INFO,
        sys::btrfs_ioctl_get_subvol_info_args
    );
    nix::ioctl_readwrite_bad!(
        get_subvol_rootref,
        req::BTRFS_IOC_GET_SUBVOL_ROOTREF,
        sys::btrfs_ioctl_get_subvol_rootref_args
    );
    nix::ioctl_read_bad!(subvol_getflags, req::BTRFS_IOC_SUBVOL_GETFLAGS, u64);
    nix::ioctl_write_ptr_bad!(subvol_setflags, req::BTRFS_IOC_SUBVOL_SETFLAGS, u64);
    nix::ioctl_write_ptr_bad!(default_subvol, req::BTRFS_IOC_DEFAULT_SUBVOL, u64);
    nix::ioctl_readwrite_bad!(
        set_received_subvol,
        req::BTRFS_IOC_SET_RECEIVED_SUBVOL,
        sys::btrfs_ioctl_received_subvol_args
    );
    nix::ioctl_readwrite_bad!(
        quota_ctl,
        req::BTRFS_IOC_QUOTA_CTL,
        sys::btrfs_ioctl_quota_ctl_args
    );
    nix::ioctl_write_ptr_bad!(
        qgroup_assign,
        req::BTRFS_IOC_QGROUP_ASSIGN,
        sys::btrfs_ioctl_qgroup_assign_args
    );
    nix::ioctl_write_ptr_bad!(
        qgroup_create,
        req::BTRFS_IOC_QGROUP_CREATE,
        sys::btrfs_ioctl_qgroup_create_args
    );
    nix::ioctl_read_bad!(
        qgroup_limit,
        req::BTRFS_IOC_QGROUP_LIMIT,
        sys::btrfs_ioctl_qgroup_limit_args
    );
    nix::ioctl_write_ptr_bad!(
        quota_rescan,
        req::BTRFS_IOC_QUOTA_RESCAN,
        sys::btrfs_ioctl_quota_rescan_args
    );
    nix::ioctl_read_bad!(
        quota_rescan_status,
        req::BTRFS_IOC_QUOTA_RESCAN_STATUS,
        sys::btrfs_ioctl_quota_rescan_args
    );
    nix::ioctl_none_bad!(quota_rescan_wait, req::BTRFS_IOC_QUOTA_RESCAN_WAIT);
}

/// `BTRFS_IOC_FS_INFO`, asking for checksum info and generation too.
pub(crate) fn fs_info(fd: BorrowedFd<'_>) -> IoctlResult<sys::btrfs_ioctl_fs_info_args> {
    let mut args = sys::btrfs_ioctl_fs_info_args {
        flags: (sys::BTRFS_FS_INFO_FLAG_CSUM_INFO | sys::BTRFS_FS_INFO_FLAG_GENERATION) as u64,
        ..Default::default()
    };
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_fs_info_args; the kernel writes
    // only within it and keeps no reference after returning.
    unsafe { raw::fs_info(fd.as_raw_fd(), &mut args) }?;
    Ok(args)
}

/// `BTRFS_IOC_DEV_INFO` for one device id (`ENODEV` when there is no such device).
pub(crate) fn dev_info(
    fd: BorrowedFd<'_>,
    devid: u64,
) -> IoctlResult<sys::btrfs_ioctl_dev_info_args> {
    let mut args = sys::btrfs_ioctl_dev_info_args {
        devid,
        ..Default::default()
    };
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_dev_info_args for the call.
    unsafe { raw::dev_info(fd.as_raw_fd(), &mut args) }?;
    Ok(args)
}

/// `BTRFS_IOC_GET_FSLABEL`: the label as raw NUL-padded bytes.
pub(crate) fn get_label(fd: BorrowedFd<'_>) -> IoctlResult<[u8; sys::BTRFS_LABEL_SIZE as usize]> {
    let mut label = [0u8; sys::BTRFS_LABEL_SIZE as usize];
    // SAFETY: the request's size is BTRFS_LABEL_SIZE bytes, exactly the buffer we pass.
    unsafe { raw::get_label(fd.as_raw_fd(), &mut label) }?;
    Ok(label)
}

/// `BTRFS_IOC_SPACE_INFO` with the two-call pattern: ask for the count, then for that many
/// entries (again, if the count grew in between).
pub(crate) fn space_info(fd: BorrowedFd<'_>) -> IoctlResult<Vec<sys::btrfs_ioctl_space_info>> {
    const HEADER_WORDS: usize = std::mem::size_of::<sys::btrfs_ioctl_space_args>() / 8;
    const ENTRY_WORDS: usize = std::mem::size_of::<sys::btrfs_ioctl_space_info>() / 8;
    let mut slots = 0usize;
    loop {
        // A u64 buffer keeps the 8-byte alignment both structs need.
        let mut buf = vec![0u64; HEADER_WORDS + slots * ENTRY_WORDS];
        buf[0] = slots as u64; // space_slots
                               // SAFETY: `buf` holds the header plus `space_slots` entries; the kernel writes at most
                               // `space_slots` entries after the header and records the real count in total_spaces.
        unsafe { raw::space_info(fd.as_raw_fd(), buf.as_mut_ptr()) }?;
        let total = buf[1] as usize; // total_spaces
        if total <= slots {
            let entries = buf[HEADER_WORDS..HEADER_WORDS + total * ENTRY_WORDS]
                .chunks_exact(ENTRY_WORDS)
                .map(|w| sys::btrfs_ioctl_space_info {
                    flags: w[0],
                    total_bytes: w[1],
                    used_bytes: w[2],
                })
                .collect();
            return Ok(entries);
        }
        slots = total;
    }
}

/// `BTRFS_IOC_TREE_SEARCH` (v1): fills `args.buf` with items matching `args.key`.
pub(crate) fn tree_search(
    fd: BorrowedFd<'_>,
    args: &mut sys::btrfs_ioctl_search_args,
) -> IoctlResult<()> {
    // SAFETY: `args` is an exclusive reference to a correctly sized btrfs_ioctl_search_args;
    // the kernel writes results only into its 3992-byte buffer and the key.
    unsafe { raw::tree_search(fd.as_raw_fd(), args) }?;
    Ok(())
}

/// `BTRFS_IOC_BALANCE_V2`: start or resume a balance; blocks until it ends. Returns the
/// kernel's return value, which may be positive (another exclusive operation runs).
pub(crate) fn balance_v2(
    fd: BorrowedFd<'_>,
    args: &mut sys::btrfs_ioctl_balance_args,
) -> IoctlResult {
    // SAFETY: `args` is an exclusive reference to a correctly sized btrfs_ioctl_balance_args
    // (1024 bytes); the kernel copies it in and back out before returning.
    unsafe { raw::balance_v2(fd.as_raw_fd(), args) }
}

/// `BTRFS_IOC_BALANCE_CTL` with `BTRFS_BALANCE_CTL_PAUSE` or `BTRFS_BALANCE_CTL_CANCEL`.
pub(crate) fn balance_ctl(fd: BorrowedFd<'_>, cmd: u32) -> IoctlResult {
    // SAFETY: the argument is passed by value; no memory is shared with the kernel.
    unsafe { raw::balance_ctl(fd.as_raw_fd(), cmd as c_int) }
}

/// `BTRFS_IOC_BALANCE_PROGRESS`: the running or paused balance's arguments, state and counters.
pub(crate) fn balance_progress(fd: BorrowedFd<'_>) -> IoctlResult<sys::btrfs_ioctl_balance_args> {
    let mut args = sys::btrfs_ioctl_balance_args::default();
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_balance_args the kernel fills.
    unsafe { raw::balance_progress(fd.as_raw_fd(), &mut args) }?;
    Ok(args)
}

/// `BTRFS_IOC_SYNC`: commit the running transaction and wait for it.
pub(crate) fn sync(fd: BorrowedFd<'_>) -> IoctlResult {
    // SAFETY: the request takes no argument.
    unsafe { raw::sync(fd.as_raw_fd()) }
}

/// `BTRFS_IOC_START_SYNC`: start a commit; returns its transaction id.
pub(crate) fn start_sync(fd: BorrowedFd<'_>) -> IoctlResult<u64> {
    let mut transid = 0u64;
    // SAFETY: the kernel writes one u64 into `transid`.
    unsafe { raw::start_sync(fd.as_raw_fd(), &mut transid) }?;
    Ok(transid)
}

/// `BTRFS_IOC_WAIT_SYNC`: wait until transaction `transid` (0: the current one) is committed.
pub(crate) fn wait_sync(fd: BorrowedFd<'_>, transid: u64) -> IoctlResult {
    // SAFETY: the kernel reads one u64 from `transid`.
    unsafe { raw::wait_sync(fd.as_raw_fd(), &transid) }
}

/// `BTRFS_IOC_RESIZE`: `args.name` holds "[devid:]size|max|+size|-size".
pub(crate) fn resize(fd: BorrowedFd<'_>, args: &sys::btrfs_ioctl_vol_args) -> IoctlResult {
    // SAFETY: `args` is a correctly sized btrfs_ioctl_vol_args the kernel only reads.
    unsafe { raw::resize(fd.as_raw_fd(), args) }
}

/// The two anonymous unions of a balance filter as raw words: (usage, limit). Each holds one
/// u64 or two u32s (`usage_min/usage_max`, `limit_min/limit_max`) in the same 8 bytes.
pub(crate) fn balance_args_unions(a: &sys::btrfs_balance_args) -> (u64, u64) {
    // SAFETY: both unions consist only of integers, so every bit pattern is a valid u64; the
    // fields are copied out of the packed struct by value, never referenced.
    unsafe { (a.__bindgen_anon_1.usage, a.__bindgen_anon_2.limit) }
}

/// Copies `name` into a NUL-terminated C string field; `Err(ENAMETOOLONG)` when it does not fit
/// with its terminator.
fn copy_name(dst: &mut [c_char], name: &[u8]) -> IoctlResult<()> {
    if name.len() >= dst.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    for (d, s) in dst.iter_mut().zip(name) {
        *d = *s as c_char;
    }
    dst[name.len()] = 0;
    Ok(())
}

/// The bytes of a NUL-terminated C string field (all of it when there is no NUL).
pub(crate) fn c_bytes(src: &[c_char]) -> Vec<u8> {
    src.iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect()
}

/// A `btrfs_qgroup_inherit` built as 64-bit words: the fixed header (flags, num_qgroups,
/// num_ref_copies, num_excl_copies, then the five words of `btrfs_qgroup_limit`) followed by
/// `num_qgroups` qgroup ids. Owning it as words keeps the 8-byte alignment the kernel expects.
#[derive(Debug, Clone)]
pub(crate) struct QgroupInheritBuf(Vec<u64>);

impl QgroupInheritBuf {
    const HEADER_WORDS: usize = std::mem::size_of::<sys::btrfs_qgroup_inherit>() / 8;

    /// Inherit into each qgroup of `qgroups`, without limits or copies.
    pub(crate) fn new(qgroups: &[u64]) -> Self {
        let mut words = vec![0u64; Self::HEADER_WORDS];
        words[1] = qgroups.len() as u64; // num_qgroups
        words.extend_from_slice(qgroups);
        QgroupInheritBuf(words)
    }
}

/// The name (or id) of a subvolume to delete with `BTRFS_IOC_SNAP_DESTROY_V2`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DestroyTarget<'n> {
    /// The entry `name` of the directory the ioctl runs on.
    Name(&'n [u8]),
    /// Subvolume id (kernel 5.7+), anywhere on the filesystem.
    Id(u64),
}

/// Fills a `btrfs_ioctl_vol_args_v2` with `name`, `flags` and an optional qgroup inherit. The
/// returned struct points into `inherit`, which must outlive its use.
fn vol_args_v2(
    name: &[u8],
    flags: u64,
    inherit: Option<&mut QgroupInheritBuf>,
) -> IoctlResult<sys::btrfs_ioctl_vol_args_v2> {
    let mut args = sys::btrfs_ioctl_vol_args_v2 {
        flags,
        ..Default::default()
    };
    // SAFETY: writing the `name` member of the union as a whole; any bytes are valid for it.
    let name_field = unsafe { &mut args.__bindgen_anon_2.name };
    copy_name(name_field, name)?;
    if let Some(inherit) = inherit {
        args.flags |= u64::from(sys::BTRFS_SUBVOL_QGROUP_INHERIT);
        args.__bindgen_anon_1.__bindgen_anon_1 =
            sys::btrfs_ioctl_vol_args_v2__bindgen_ty_1__bindgen_ty_1 {
                size: (inherit.0.len() * 8) as u64,
                qgroup_inherit: inherit.0.as_mut_ptr().cast(),
            };
    }
    Ok(args)
}

/// `BTRFS_IOC_SUBVOL_CREATE_V2` on the parent directory `dir`: create subvolume `name` in it.
pub(crate) fn subvol_create(
    dir: BorrowedFd<'_>,
    name: &[u8],
    mut inherit: Option<QgroupInheritBuf>,
) -> IoctlResult {
    let args = vol_args_v2(name, 0, inherit.as_mut())?;
    // SAFETY: `args` is a correctly sized btrfs_ioctl_vol_args_v2 the kernel only reads; its
    // qgroup_inherit pointer, when set, points at `inherit`, alive and sized as `size` says
    // until this call returns.
    unsafe { raw::subvol_create_v2(dir.as_raw_fd(), &args) }
}

/// `BTRFS_IOC_SNAP_CREATE_V2` on the destination's parent directory `dir`: snapshot the
/// subvolume open as `source` as entry `name`.
pub(crate) fn snap_create(
    dir: BorrowedFd<'_>,
    source: BorrowedFd<'_>,
    name: &[u8],
    read_only: bool,
    mut inherit: Option<QgroupInheritBuf>,
) -> IoctlResult {
    let flags = if read_only {
        u64::from(sys::BTRFS_SUBVOL_RDONLY)
    } else {
        0
    };
    let mut args = vol_args_v2(name, flags, inherit.as_mut())?;
    args.fd = source.as_raw_fd().into();
    // SAFETY: as for `subvol_create`; `args.fd` is a descriptor borrowed for the whole call.
    unsafe { raw::snap_create_v2(dir.as_raw_fd(), &args) }
}

/// `BTRFS_IOC_SNAP_DESTROY_V2`: by name on the parent directory `fd`, or by id on any fd of the
/// filesystem.
pub(crate) fn snap_destroy(fd: BorrowedFd<'_>, target: DestroyTarget<'_>) -> IoctlResult {
    let args = match target {
        DestroyTarget::Name(name) => vol_args_v2(name, 0, None)?,
        DestroyTarget::Id(id) => {
            let mut args = sys::btrfs_ioctl_vol_args_v2 {
                flags: u64::from(sys::BTRFS_SUBVOL_SPEC_BY_ID),
                ..Default::default()
            };
            args.__bindgen_anon_2.subvolid = id;
            args
        }
    };
    // SAFETY: `args` is a correctly sized btrfs_ioctl_vol_args_v2 the kernel only reads.
    unsafe { raw::snap_destroy_v2(fd.as_raw_fd(), &args) }
}

/// `BTRFS_IOC_INO_LOOKUP`: the path of directory `objectid` inside tree `treeid` (0: the fd's
/// subvolume), with a trailing `/` unless empty, and the tree id used. Needs CAP_SYS_ADMIN
/// unless `objectid` is 256 (then it only returns the fd's subvolume id).
pub(crate) fn ino_lookup(
    fd: BorrowedFd<'_>,
    treeid: u64,
    objectid: u64,
) -> IoctlResult<(u64, Vec<u8>)> {
    let mut args = sys::btrfs_ioctl_ino_lookup_args {
        treeid,
        objectid,
        ..Default::default()
    };
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_ino_lookup_args the kernel fills.
    unsafe { raw::ino_lookup(fd.as_raw_fd(), &mut args) }?;
    Ok((args.treeid, c_bytes(&args.name)))
}

/// `BTRFS_IOC_INO_LOOKUP_USER`: for child subvolume `treeid` whose entry lives in directory
/// `dirid` of the fd's subvolume, the directory's path below the fd (trailing `/` unless empty)
/// and the child's name. Checks the caller's access to each directory on the way.
pub(crate) fn ino_lookup_user(
    fd: BorrowedFd<'_>,
    dirid: u64,
    treeid: u64,
) -> IoctlResult<(Vec<u8>, Vec<u8>)> {
    let mut args = sys::btrfs_ioctl_ino_lookup_user_args {
        dirid,
        treeid,
        ..Default::default()
    };
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_ino_lookup_user_args.
    unsafe { raw::ino_lookup_user(fd.as_raw_fd(), &mut args) }?;
    Ok((c_bytes(&args.path), c_bytes(&args.name)))
}

/// `BTRFS_IOC_GET_SUBVOL_INFO`: the fd's subvolume (no privileges needed).
pub(crate) fn get_subvol_info(
    fd: BorrowedFd<'_>,
) -> IoctlResult<sys::btrfs_ioctl_get_subvol_info_args> {
    let mut args = sys::btrfs_ioctl_get_subvol_info_args::default();
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_get_subvol_info_args.
    unsafe { raw::get_subvol_info(fd.as_raw_fd(), &mut args) }?;
    Ok(args)
}

/// `BTRFS_IOC_GET_SUBVOL_ROOTREF`: up to 255 child subvolumes (id, directory) of the fd's
/// subvolume with ids from `args.min_treeid`. `Ok(true)` when more remain (the kernel's
/// `EOVERFLOW`); `args.min_treeid` is then where to continue.
pub(crate) fn get_subvol_rootref(
    fd: BorrowedFd<'_>,
    args: &mut sys::btrfs_ioctl_get_subvol_rootref_args,
) -> IoctlResult<bool> {
    // SAFETY: `args` is an exclusive reference to a correctly sized
    // btrfs_ioctl_get_subvol_rootref_args; the kernel copies it back out, also on EOVERFLOW.
    match unsafe { raw::get_subvol_rootref(fd.as_raw_fd(), args) } {
        Ok(_) => Ok(false),
        Err(Errno::EOVERFLOW) => Ok(true),
        Err(e) => Err(e),
    }
}

/// `BTRFS_IOC_SUBVOL_GETFLAGS`: `BTRFS_SUBVOL_*` flags of the fd's subvolume.
pub(crate) fn subvol_getflags(fd: BorrowedFd<'_>) -> IoctlResult<u64> {
    let mut flags = 0u64;
    // SAFETY: the kernel writes one u64 into `flags`.
    unsafe { raw::subvol_getflags(fd.as_raw_fd(), &mut flags) }?;
    Ok(flags)
}

/// `BTRFS_IOC_SUBVOL_SETFLAGS`: set the fd's subvolume flags (only RDONLY is settable).
pub(crate) fn subvol_setflags(fd: BorrowedFd<'_>, flags: u64) -> IoctlResult {
    // SAFETY: the kernel reads one u64 from `flags`.
    unsafe { raw::subvol_setflags(fd.as_raw_fd(), &flags) }
}

/// `BTRFS_IOC_DEFAULT_SUBVOL`: make subvolume `id` the one mounted by default.
pub(crate) fn default_subvol(fd: BorrowedFd<'_>, id: u64) -> IoctlResult {
    // SAFETY: the kernel reads one u64 from `id`.
    unsafe { raw::default_subvol(fd.as_raw_fd(), &id) }
}

/// `BTRFS_IOC_SET_RECEIVED_SUBVOL`: set (or, with a zero uuid, clear) the received uuid and
/// send/receive transids of the fd's (writable) subvolume.
pub(crate) fn set_received_subvol(
    fd: BorrowedFd<'_>,
    uuid: [u8; 16],
    stransid: u64,
) -> IoctlResult {
    let mut args = sys::btrfs_ioctl_received_subvol_args {
        stransid,
        ..Default::default()
    };
    for (d, s) in args.uuid.iter_mut().zip(uuid) {
        *d = s as c_char;
    }
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_received_subvol_args.
    unsafe { raw::set_received_subvol(fd.as_raw_fd(), &mut args) }
}

/// `BTRFS_IOC_QUOTA_CTL` with `BTRFS_QUOTA_CTL_ENABLE` or `_DISABLE`.
pub(crate) fn quota_ctl(fd: BorrowedFd<'_>, cmd: u32) -> IoctlResult {
    let mut args = sys::btrfs_ioctl_quota_ctl_args {
        cmd: cmd.into(),
        status: 0,
    };
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_quota_ctl_args.
    unsafe { raw::quota_ctl(fd.as_raw_fd(), &mut args) }
}

/// `BTRFS_IOC_QGROUP_ASSIGN`: make `src` a member (assign) or not (remove) of `dst`. A
/// positive return means the quick accounting update failed: quotas need a rescan.
pub(crate) fn qgroup_assign(fd: BorrowedFd<'_>, assign: bool, src: u64, dst: u64) -> IoctlResult {
    let args = sys::btrfs_ioctl_qgroup_assign_args {
        assign: assign.into(),
        src,
        dst,
    };
    // SAFETY: `args` is a correctly sized btrfs_ioctl_qgroup_assign_args the kernel only reads.
    unsafe { raw::qgroup_assign(fd.as_raw_fd(), &args) }
}

/// `BTRFS_IOC_QGROUP_CREATE`: create (or destroy) qgroup `qgroupid`.
pub(crate) fn qgroup_create(fd: BorrowedFd<'_>, create: bool, qgroupid: u64) -> IoctlResult {
    let args = sys::btrfs_ioctl_qgroup_create_args {
        create: create.into(),
        qgroupid,
    };
    // SAFETY: `args` is a correctly sized btrfs_ioctl_qgroup_create_args the kernel only reads.
    unsafe { raw::qgroup_create(fd.as_raw_fd(), &args) }
}

/// `BTRFS_IOC_QGROUP_LIMIT`: set the limits of `qgroupid` (0: the fd's subvolume).
pub(crate) fn qgroup_limit(
    fd: BorrowedFd<'_>,
    qgroupid: u64,
    lim: sys::btrfs_qgroup_limit,
) -> IoctlResult {
    let mut args = sys::btrfs_ioctl_qgroup_limit_args { qgroupid, lim };
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_qgroup_limit_args (declared _IOR,
    // but the kernel copies it in).
    unsafe { raw::qgroup_limit(fd.as_raw_fd(), &mut args) }
}

/// `BTRFS_IOC_QUOTA_RESCAN`: start a rescan of all qgroups.
pub(crate) fn quota_rescan(fd: BorrowedFd<'_>) -> IoctlResult {
    let args = sys::btrfs_ioctl_quota_rescan_args::default();
    // SAFETY: `args` is a correctly sized btrfs_ioctl_quota_rescan_args the kernel only reads.
    unsafe { raw::quota_rescan(fd.as_raw_fd(), &args) }
}

/// `BTRFS_IOC_QUOTA_RESCAN_STATUS`: (running, progress objectid).
pub(crate) fn quota_rescan_status(fd: BorrowedFd<'_>) -> IoctlResult<(bool, u64)> {
    let mut args = sys::btrfs_ioctl_quota_rescan_args::default();
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_quota_rescan_args.
    unsafe { raw::quota_rescan_status(fd.as_raw_fd(), &mut args) }?;
    Ok((args.flags != 0, args.progress))
}

/// `BTRFS_IOC_QUOTA_RESCAN_WAIT`: block until the running rescan (if any) ends.
pub(crate) fn quota_rescan_wait(fd: BorrowedFd<'_>) -> IoctlResult {
    // SAFETY: the request takes no argument.
    unsafe { raw::quota_rescan_wait(fd.as_raw_fd()) }
}
