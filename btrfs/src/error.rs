//! The error type of every operation in this crate.
//!
//! Each error names the operation, the path it ran on, the cause (errno where the kernel gave
//! one) and what to do about it, so it can be shown to an operator as it is.

use nix::errno::Errno;
use std::path::PathBuf;

/// What most btrfs ioctls need: the capability, and how a caller usually gets it.
pub(crate) const NEEDS_ADMIN: &str = "CAP_SYS_ADMIN (run as root)";

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a btrfs filesystem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The path exists but is not on a btrfs filesystem.
    #[error("{op} on {}: not a btrfs filesystem (found {found}); give a path on a mounted btrfs filesystem", path.display())]
    NotBtrfs {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// The filesystem type found there, e.g. `ext4` or `tmpfs`.
        found: String,
    },
    /// The path does not exist.
    #[error("{op} on {}: no such file or directory; check the path and that the filesystem is mounted", path.display())]
    NotFound {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// The caller lacks a right the operation requires: a capability, or access to a file.
    #[error("{op} on {}: permission denied ({errno}); this needs {needs}", path.display())]
    PermissionDenied {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// The errno the kernel returned (EPERM or EACCES).
        errno: Errno,
        /// What the operation requires and how to get it, e.g. `CAP_SYS_ADMIN (run as root)`
        /// for an ioctl, or file access for formatting a file: each operation says its own.
        needs: &'static str,
    },
    /// A balance is already running (or paused) on this filesystem.
    #[error("{op} on {}: a balance is already running or paused; wait for it to end, or pause, cancel or resume it (Filesystem::balance_status, balance_pause, balance_cancel, balance_resume)", path.display())]
    BalanceAlreadyRunning {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// No balance is running or paused on this filesystem.
    #[error("{op} on {}: no balance is running or paused; start one first", path.display())]
    BalanceNotRunning {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// Another exclusive operation (device add/remove/replace, resize, swapfile...) is running.
    #[error("{op} on {}: another exclusive operation is running{}; wait for it to finish, then retry",
        path.display(), running.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    ExclusiveOperationRunning {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// What runs, from `/sys/fs/btrfs/<fsid>/exclusive_operation`, when readable.
        running: Option<crate::sysfs::ExclusiveOperation>,
    },
    /// The filesystem has no device with this id (ENODEV).
    #[error("{op} on {}: no device with id {devid} (ENODEV); list the devices (Filesystem::devices) for valid ids", path.display())]
    NoSuchDevice {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// The device id asked for.
        devid: u64,
    },
    /// A scrub already runs on this device (EINPROGRESS), or another btrfs-kit scrub holds the
    /// filesystem's scrub lock.
    #[error("{op} on {}: a scrub is already running{}; watch it with scrub_status, or cancel it with scrub_cancel", path.display(), devid.map(|d| format!(" on device {d}")).unwrap_or_default())]
    ScrubAlreadyRunning {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// The device it runs on, when the kernel said so.
        devid: Option<u64>,
    },
    /// No scrub runs on this filesystem (ENOTCONN).
    #[error("{op} on {}: no scrub is running (ENOTCONN); start one first, or resume a cancelled one", path.display())]
    ScrubNotRunning {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// The running kernel lacks a knob or feature this call needs.
    #[error("{op} on {}: the running kernel lacks this (it needs {needs}); upgrade the kernel or leave this setting alone", path.display())]
    KernelLacks {
        /// The operation that was attempted.
        op: &'static str,
        /// The path (e.g. the missing sysfs file).
        path: PathBuf,
        /// What is needed, e.g. `Linux 5.19 (bg_reclaim_threshold)`.
        needs: &'static str,
    },
    /// A scrub state file could not be read or written.
    #[error("{op} on {}: {detail}", path.display())]
    StateFile {
        /// The operation that was attempted.
        op: &'static str,
        /// The state file (or its directory).
        path: PathBuf,
        /// What went wrong and what to do.
        detail: String,
    },
    /// The kernel ran out of unallocated space.
    #[error("{op} on {}: no space left to relocate chunks (ENOSPC); free space (delete files or snapshots) or add a device, then retry with a low usage filter such as `usage=5` (ChunkFilters::usage_below(5))", path.display())]
    NoSpace {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// The filesystem is mounted read-only.
    #[error("{op} on {}: the filesystem is read-only (EROFS); remount it read-write", path.display())]
    ReadOnly {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// Arguments rejected before anything reached the kernel.
    #[error("{op}: invalid arguments: {reason}")]
    InvalidArguments {
        /// The operation that was attempted.
        op: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The kernel rejected the arguments (EINVAL).
    #[error("{op} on {}: the kernel rejected the arguments (EINVAL){}; see `dmesg` for its reason", path.display(), hint.map(|h| format!("; {h}")).unwrap_or_default())]
    KernelRejected {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// The most likely reason, where one is known.
        hint: Option<&'static str>,
    },
    /// Any other errno from a system call.
    #[error("{op} on {}: {errno} ({})", path.display(), errno.desc())]
    Sys {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// The errno.
        errno: Errno,
    },
    /// The path is not the root directory of a subvolume.
    #[error("{op} on {}: not a subvolume (a subvolume's root directory has inode 256); give the path of a subvolume", path.display())]
    NotASubvolume {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// The subvolume still holds nested subvolumes (ENOTEMPTY).
    #[error("{op} on {}: the subvolume holds nested subvolumes (ENOTEMPTY); delete them first, or delete recursively", path.display())]
    SubvolumeNotEmpty {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// The target name already exists (EEXIST).
    #[error("{op} on {}: already exists (EEXIST); choose another name or remove the existing entry first", path.display())]
    AlreadyExists {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// The operation cannot apply to the top-level subvolume (id 5).
    #[error("{op} on {}: this is the filesystem's top-level subvolume (id 5), which cannot be deleted; give a subvolume below it", path.display())]
    TopLevelSubvolume {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// The subvolume is the filesystem's default subvolume, which the kernel will not delete.
    #[error("{op} on {}: subvolume {id} is the default subvolume (mounted when no subvol= option is given); set another default subvolume first", path.display())]
    DefaultSubvolume {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// The subvolume's id.
        id: u64,
    },
    /// The subvolume is in use: mounted, holding an active swapfile (EBUSY), or being sent by
    /// `btrfs send` (EPERM for a caller with CAP_SYS_ADMIN).
    #[error("{op} on {}: the subvolume is in use ({errno}: mounted, holding an active swapfile, or being sent); wait for a send to finish, unmount it or swapoff first", path.display())]
    SubvolumeBusy {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// What the kernel said: EBUSY, or EPERM for a send in progress.
        errno: Errno,
    },
    /// A delete was refused before anything was deleted: each problem would have stopped it
    /// part-way, and says what to do.
    #[error("{op} on {}: refused, nothing deleted: {}", path.display(), join(problems))]
    DeleteRefused {
        /// The operation that was attempted.
        op: &'static str,
        /// The subvolume given.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<crate::subvolume::DeleteProblem>,
    },
    /// A recursive delete failed part-way, after the checks: what was deleted and what was
    /// not; the read-only subvolumes it had made writable are read-only again.
    #[error("{op} on {}: {progress}", path.display())]
    DeleteIncomplete {
        /// The operation that was attempted.
        op: &'static str,
        /// The subvolume given.
        path: PathBuf,
        /// Where it failed, why, and what it had done.
        progress: Box<crate::subvolume::DeleteProgress>,
    },
    /// No subvolume with this id exists.
    #[error("{op} on {}: no subvolume with id {id}; list subvolumes to find the right id", path.display())]
    SubvolumeNotFound {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// The id asked for.
        id: u64,
    },
    /// Making a received subvolume writable would break incremental send.
    #[error("{op} on {}: the subvolume has a received uuid ({received_uuid}), which incremental send relies on; making it writable breaks that: snapshot it instead, or force it (which clears the received uuid)", path.display())]
    ReceivedSubvolume {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// The received uuid that would be lost.
        received_uuid: uuid::Uuid,
    },
    /// A nested subvolume could not be resolved, so a recursive operation cannot proceed.
    #[error("{op} on {}: nested subvolume {id} could not be resolved ({reason}); run as root, or fix the permissions on its path", path.display())]
    NestedSubvolumeUnreachable {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// The nested subvolume's id.
        id: u64,
        /// Why it could not be resolved.
        reason: String,
    },
    /// Quotas are not enabled on this filesystem.
    #[error("{op} on {}: quotas are not enabled on this filesystem; enable them first (Filesystem::enable_quota)", path.display())]
    QuotaNotEnabled {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// A qgroup limit was hit (EDQUOT).
    #[error("{op} on {}: a qgroup limit is exceeded (EDQUOT); raise the limit or free space in the subvolume", path.display())]
    QuotaExceeded {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// The device is mounted or held open exclusively by another program.
    #[error("{op} on {}: the device is in use: {detail}; unmount it or stop the program holding it", path.display())]
    DeviceBusy {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// Who holds it, as far as known.
        detail: String,
    },
    /// The device holds a filesystem or other signature that formatting would destroy.
    #[error("{op} on {}: found an existing {found} signature; check the device is the right one, then set MkfsOptions::force to overwrite it", path.display())]
    ExistingFilesystem {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// What was found, e.g. `ext2/ext3/ext4`.
        found: String,
    },
    /// The device or requested size is too small for the layout.
    #[error("{op} on {}: {size} bytes is too small; need at least {minimum} bytes with these options (on less, the metadata chunk cannot hold the tree blocks a mounted filesystem needs to create its first file): use a larger device or size, or a smaller node size", path.display())]
    TooSmall {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// The size requested.
        size: u64,
        /// The smallest size that works with these options.
        minimum: u64,
    },
    /// Defragmenting would unshare extents this file shares with snapshots or reflinks, and
    /// the caller did not opt in.
    #[error("{op} on {}: {shared_extents} extents are shared with snapshots or reflinks; defragmenting would unshare up to {would_unshare} (used space grows by that much); leave the file alone, or opt in to unsharing (DefragOptions::allow_shared)", path.display())]
    SharedExtents {
        /// The operation that was attempted.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// How many of its extents are shared.
        shared_extents: u64,
        /// The bytes that defragmenting would rewrite out of shared extents (the dry run's
        /// estimate).
        would_unshare: crate::ByteSize,
    },
    /// The file lives in a read-only subvolume (e.g. a read-only snapshot).
    #[error("{op} on {}: the file is in a read-only subvolume (EROFS), which this would change; skip it, or make the subvolume writable first", path.display())]
    ReadOnlySubvolume {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// The file is busy (ETXTBSY): an active swap file, or an executable mapped with
    /// transparent huge pages.
    #[error("{op} on {}: the file is busy (ETXTBSY): an active swap file (swapoff it first) or an executable mapped with huge pages (stop it first); or leave it alone", path.display())]
    ActiveSwapfile {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// None of the filesystem's devices supports discard (EOPNOTSUPP from FITRIM).
    #[error("{op} on {}: no device of this filesystem supports discard (EOPNOTSUPP), so there is nothing to trim; this is normal for devices without TRIM/UNMAP (and loop devices over files that cannot punch holes)", path.display())]
    DiscardUnsupported {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// The filesystem or the running kernel does not implement the request.
    #[error("{op} on {}: not supported here: {what}", path.display())]
    Unsupported {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// What is missing.
        what: &'static str,
    },
    /// The kernel returned data this crate could not decode.
    #[error("{op} on {}: unexpected data from the kernel: {detail}; please report this", path.display())]
    Decode {
        /// The operation that was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
}

/// `a; b; c`.
fn join(items: &[impl std::fmt::Display]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// Maps an errno from `op` on `path` to the most specific error, for errnos whose meaning
    /// does not depend on the operation.
    pub(crate) fn from_errno(op: &'static str, path: impl Into<PathBuf>, errno: Errno) -> Self {
        let path = path.into();
        match errno {
            Errno::ENOENT => Error::NotFound { op, path },
            Errno::EPERM | Errno::EACCES => Error::PermissionDenied {
                op,
                path,
                errno,
                needs: NEEDS_ADMIN,
            },
            Errno::EROFS => Error::ReadOnly { op, path },
            Errno::ENOSPC => Error::NoSpace { op, path },
            Errno::EEXIST => Error::AlreadyExists { op, path },
            Errno::EDQUOT => Error::QuotaExceeded { op, path },
            Errno::EINVAL => Error::KernelRejected {
                op,
                path,
                hint: None,
            },
            errno => Error::Sys { op, path, errno },
        }
    }

    /// Maps an `std::io::Error` from `op` on `path` (EIO when it carries no errno).
    pub(crate) fn from_io(op: &'static str, path: impl Into<PathBuf>, e: &std::io::Error) -> Self {
        Self::from_errno(
            op,
            path,
            Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32)),
        )
    }

    /// The errno behind this error, where there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::NotFound { .. } => Some(Errno::ENOENT),
            Error::PermissionDenied { errno, .. } | Error::Sys { errno, .. } => Some(*errno),
            Error::BalanceAlreadyRunning { .. } => Some(Errno::EINPROGRESS),
            Error::BalanceNotRunning { .. } => Some(Errno::ENOTCONN),
            Error::NoSpace { .. } => Some(Errno::ENOSPC),
            Error::ReadOnly { .. } => Some(Errno::EROFS),
            Error::KernelRejected { .. } => Some(Errno::EINVAL),
            Error::AlreadyExists { .. } => Some(Errno::EEXIST),
            Error::SubvolumeNotEmpty { .. } => Some(Errno::ENOTEMPTY),
            Error::SubvolumeBusy { errno, .. } => Some(*errno),
            Error::QuotaExceeded { .. } => Some(Errno::EDQUOT),
            Error::DefaultSubvolume { .. } => Some(Errno::EPERM),
            Error::QuotaNotEnabled { .. } => Some(Errno::ENOTCONN),
            Error::ReadOnlySubvolume { .. } => Some(Errno::EROFS),
            Error::ActiveSwapfile { .. } => Some(Errno::ETXTBSY),
            Error::DiscardUnsupported { .. } => Some(Errno::EOPNOTSUPP),
            Error::NoSuchDevice { .. } => Some(Errno::ENODEV),
            Error::ScrubNotRunning { .. } => Some(Errno::ENOTCONN),
            Error::ScrubAlreadyRunning { .. } => Some(Errno::EINPROGRESS),
            _ => None,
        }
    }
}
