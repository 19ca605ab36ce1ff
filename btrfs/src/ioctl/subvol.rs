//! Subvolume ioctls: create, snapshot, delete, path lookups, info, child refs, flags, the
//! default subvolume and the received uuid. Same rules as the parent module: owned, correctly
//! sized arguments; one `// SAFETY:` line per `unsafe` block.

use super::IoctlResult;
use btrfs_sys as sys;
use btrfs_sys::ioctl as req;
use rustix::io::Errno;
use std::ffi::c_char;
use std::os::fd::{AsRawFd, BorrowedFd};

mod raw {
    use super::{req, sys};
    bad_ioctl!(
        write,
        subvol_create_v2,
        req::BTRFS_IOC_SUBVOL_CREATE_V2,
        sys::btrfs_ioctl_vol_args_v2
    );
    bad_ioctl!(
        write,
        snap_create_v2,
        req::BTRFS_IOC_SNAP_CREATE_V2,
        sys::btrfs_ioctl_vol_args_v2
    );
    bad_ioctl!(
        write,
        snap_destroy_v2,
        req::BTRFS_IOC_SNAP_DESTROY_V2,
        sys::btrfs_ioctl_vol_args_v2
    );
    bad_ioctl!(
        readwrite,
        ino_lookup,
        req::BTRFS_IOC_INO_LOOKUP,
        sys::btrfs_ioctl_ino_lookup_args
    );
    bad_ioctl!(
        readwrite,
        ino_lookup_user,
        req::BTRFS_IOC_INO_LOOKUP_USER,
        sys::btrfs_ioctl_ino_lookup_user_args
    );
    bad_ioctl!(
        read,
        get_subvol_info,
        req::BTRFS_IOC_GET_SUBVOL_INFO,
        sys::btrfs_ioctl_get_subvol_info_args
    );
    bad_ioctl!(
        readwrite,
        get_subvol_rootref,
        req::BTRFS_IOC_GET_SUBVOL_ROOTREF,
        sys::btrfs_ioctl_get_subvol_rootref_args
    );
    bad_ioctl!(read, subvol_getflags, req::BTRFS_IOC_SUBVOL_GETFLAGS, u64);
    bad_ioctl!(write, subvol_setflags, req::BTRFS_IOC_SUBVOL_SETFLAGS, u64);
    bad_ioctl!(write, default_subvol, req::BTRFS_IOC_DEFAULT_SUBVOL, u64);
    bad_ioctl!(
        readwrite,
        set_received_subvol,
        req::BTRFS_IOC_SET_RECEIVED_SUBVOL,
        sys::btrfs_ioctl_received_subvol_args
    );
}

/// Copies `name` into a NUL-terminated C string field; `Err(ENAMETOOLONG)` when it does not fit
/// with its terminator.
pub(crate) fn copy_name(dst: &mut [c_char], name: &[u8]) -> IoctlResult<()> {
    if name.len() >= dst.len() {
        return Err(Errno::NAMETOOLONG);
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
    unsafe { raw::subvol_create_v2(dir, &args) }
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
    unsafe { raw::snap_create_v2(dir, &args) }
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
    unsafe { raw::snap_destroy_v2(fd, &args) }
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
    unsafe { raw::ino_lookup(fd, &mut args) }?;
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
    unsafe { raw::ino_lookup_user(fd, &mut args) }?;
    Ok((c_bytes(&args.path), c_bytes(&args.name)))
}

/// `BTRFS_IOC_GET_SUBVOL_INFO`: the fd's subvolume (no privileges needed).
pub(crate) fn get_subvol_info(
    fd: BorrowedFd<'_>,
) -> IoctlResult<sys::btrfs_ioctl_get_subvol_info_args> {
    let mut args = sys::btrfs_ioctl_get_subvol_info_args::default();
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_get_subvol_info_args.
    unsafe { raw::get_subvol_info(fd, &mut args) }?;
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
    match unsafe { raw::get_subvol_rootref(fd, args) } {
        Ok(_) => Ok(false),
        Err(Errno::OVERFLOW) => Ok(true),
        Err(e) => Err(e),
    }
}

/// `BTRFS_IOC_SUBVOL_GETFLAGS`: `BTRFS_SUBVOL_*` flags of the fd's subvolume.
pub(crate) fn subvol_getflags(fd: BorrowedFd<'_>) -> IoctlResult<u64> {
    let mut flags = 0u64;
    // SAFETY: the kernel writes one u64 into `flags`.
    unsafe { raw::subvol_getflags(fd, &mut flags) }?;
    Ok(flags)
}

/// `BTRFS_IOC_SUBVOL_SETFLAGS`: set the fd's subvolume flags (only RDONLY is settable).
pub(crate) fn subvol_setflags(fd: BorrowedFd<'_>, flags: u64) -> IoctlResult {
    // SAFETY: the kernel reads one u64 from `flags`.
    unsafe { raw::subvol_setflags(fd, &flags) }
}

/// `BTRFS_IOC_DEFAULT_SUBVOL`: make subvolume `id` the one mounted by default.
pub(crate) fn default_subvol(fd: BorrowedFd<'_>, id: u64) -> IoctlResult {
    // SAFETY: the kernel reads one u64 from `id`.
    unsafe { raw::default_subvol(fd, &id) }
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
    unsafe { raw::set_received_subvol(fd, &mut args) }
}
