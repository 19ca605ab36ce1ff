//! The error type of every operation in this crate.
//!
//! Each error names the operation, the path it ran on, the cause (errno where the kernel gave
//! one) and what to do about it, so it can be shown to an operator as it is.

use crate::errno_text::{desc, Shown};
use rustix::io::Errno;
use std::path::PathBuf;

/// What most btrfs ioctls need: the capability, and how a caller usually gets it.
pub(crate) const NEEDS_ADMIN: &str = "CAP_SYS_ADMIN (run as root)";

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a btrfs filesystem: the operation, the path it ran
/// on, and what went wrong ([`ErrorKind`]).
///
/// Match on [`Error::kind`] to tell cases apart, as with [`std::io::Error::kind`].
#[derive(Debug)]
pub struct Error {
    op: &'static str,
    path: PathBuf,
    kind: ErrorKind,
}

/// What went wrong, with only each case's own data; the operation and the path are in
/// [`Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The path exists but is not on a btrfs filesystem.
    #[error("not a btrfs filesystem (found {found}); give a path on a mounted btrfs filesystem")]
    NotBtrfs {
        /// The filesystem type found there, e.g. `ext4` or `tmpfs`.
        found: String,
    },
    /// The path does not exist.
    #[error("no such file or directory; check the path and that the filesystem is mounted")]
    NotFound,
    /// The caller lacks a right the operation requires: a capability, or access to a file.
    #[error("permission denied ({}); this needs {needs}", Shown(*errno))]
    PermissionDenied {
        /// The errno the kernel returned (EPERM or EACCES).
        errno: Errno,
        /// What the operation requires and how to get it, e.g. `CAP_SYS_ADMIN (run as root)`
        /// for an ioctl, or file access for formatting a file: each operation says its own.
        needs: &'static str,
    },
    /// A balance is already running (or paused) on this filesystem.
    #[error("a balance is already running or paused; wait for it to end, or pause, cancel or resume it (Filesystem::balance_status, balance_pause, balance_cancel, balance_resume)")]
    BalanceAlreadyRunning,
    /// No balance is running or paused on this filesystem.
    #[error("no balance is running or paused; start one first")]
    BalanceNotRunning,
    /// Another exclusive operation (device add/remove/replace, resize, swapfile...) is running.
    #[error("another exclusive operation is running{}; wait for it to finish, then retry", running.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    ExclusiveOperationRunning {
        /// What runs, from `/sys/fs/btrfs/<fsid>/exclusive_operation`, when readable.
        running: Option<crate::sysfs::exclusive_operation::ExclusiveOperation>,
    },
    /// The filesystem has no device with this id (ENODEV).
    #[error(
        "no device with id {devid} (ENODEV); list the devices (Filesystem::devices) for valid ids"
    )]
    NoSuchDevice {
        /// The device id asked for.
        devid: u64,
    },
    /// A scrub already runs on this device (EINPROGRESS), or another btrfs-kit scrub holds the
    /// filesystem's scrub lock.
    #[error("a scrub is already running{}; watch it with scrub_status, or cancel it with scrub_cancel", devid.map(|d| format!(" on device {d}")).unwrap_or_default())]
    ScrubAlreadyRunning {
        /// The device it runs on, when the kernel said so.
        devid: Option<u64>,
    },
    /// No scrub runs on this filesystem (ENOTCONN).
    #[error("no scrub is running (ENOTCONN); start one first, or resume a cancelled one")]
    ScrubNotRunning,
    /// The running kernel lacks a knob or feature this call needs.
    #[error("the running kernel lacks this (it needs {needs}); upgrade the kernel or leave this setting alone")]
    KernelLacks {
        /// What is needed, e.g. `Linux 5.19 (bg_reclaim_threshold)`.
        needs: &'static str,
    },
    /// A scrub state file could not be read or written.
    #[error("{detail}")]
    StateFile {
        /// What went wrong and what to do.
        detail: String,
    },
    /// The kernel ran out of unallocated space.
    #[error("no space left to relocate chunks (ENOSPC); free space (delete files or snapshots) or add a device, then retry with a low usage filter such as `usage=5` (ChunkFilters::usage_below(5))")]
    NoSpace,
    /// The filesystem is mounted read-only.
    #[error("the filesystem is read-only (EROFS); remount it read-write")]
    ReadOnly,
    /// Arguments rejected before anything reached the kernel.
    #[error("invalid arguments: {reason}")]
    InvalidArguments {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The kernel rejected the arguments (EINVAL).
    #[error("the kernel rejected the arguments (EINVAL){}; see `dmesg` for its reason", hint.map(|h| format!("; {h}")).unwrap_or_default())]
    KernelRejected {
        /// The most likely reason, where one is known.
        hint: Option<&'static str>,
    },
    /// Any other errno from a system call.
    #[error("{} ({})", Shown(*errno), desc(*errno))]
    Sys {
        /// The errno.
        errno: Errno,
    },
    /// The path is not the root directory of a subvolume.
    #[error("not a subvolume (a subvolume's root directory has inode 256); give the path of a subvolume")]
    NotASubvolume,
    /// The subvolume still holds nested subvolumes (ENOTEMPTY).
    #[error("the subvolume holds nested subvolumes (ENOTEMPTY); delete them first, or delete recursively")]
    SubvolumeNotEmpty,
    /// The target name already exists (EEXIST).
    #[error("already exists (EEXIST); choose another name or remove the existing entry first")]
    AlreadyExists,
    /// The operation cannot apply to the top-level subvolume (id 5).
    #[error("this is the filesystem's top-level subvolume (id 5), which cannot be deleted; give a subvolume below it")]
    TopLevelSubvolume,
    /// The subvolume is the filesystem's default subvolume, which the kernel will not delete.
    #[error("subvolume {id} is the default subvolume (mounted when no subvol= option is given); set another default subvolume first")]
    DefaultSubvolume {
        /// The subvolume's id.
        id: u64,
    },
    /// The subvolume is in use: mounted, holding an active swapfile (EBUSY), or being sent by
    /// `btrfs send` (EPERM for a caller with CAP_SYS_ADMIN).
    #[error("the subvolume is in use ({}: mounted, holding an active swapfile, or being sent); wait for a send to finish, unmount it or swapoff first", Shown(*errno))]
    SubvolumeBusy {
        /// What the kernel said: EBUSY, or EPERM for a send in progress.
        errno: Errno,
    },
    /// A delete was refused before anything was deleted: each problem would have stopped it
    /// part-way, and says what to do.
    #[error("refused, nothing deleted: {}", join(problems))]
    DeleteRefused {
        /// Every problem found.
        problems: Vec<crate::subvolume::delete_problem::DeleteProblem>,
    },
    /// A recursive delete failed part-way, after the checks: what was deleted and what was
    /// not; the read-only subvolumes it had made writable are read-only again.
    #[error("{progress}")]
    DeleteIncomplete {
        /// Where it failed, why, and what it had done.
        progress: Box<crate::subvolume::delete_progress::DeleteProgress<Error>>,
    },
    /// No subvolume with this id exists.
    #[error("no subvolume with id {id}; list subvolumes to find the right id")]
    SubvolumeNotFound {
        /// The id asked for.
        id: u64,
    },
    /// Making a received subvolume writable would break incremental send.
    #[error("the subvolume has a received uuid ({received_uuid}), which incremental send relies on; making it writable breaks that: snapshot it instead, or force it (which clears the received uuid)")]
    ReceivedSubvolume {
        /// The received uuid that would be lost.
        received_uuid: uuid::Uuid,
    },
    /// A nested subvolume could not be resolved, so a recursive operation cannot proceed.
    #[error("nested subvolume {id} could not be resolved ({reason}); run as root, or fix the permissions on its path")]
    NestedSubvolumeUnreachable {
        /// The nested subvolume's id.
        id: u64,
        /// Why it could not be resolved.
        reason: String,
    },
    /// Quotas are not enabled on this filesystem.
    #[error(
        "quotas are not enabled on this filesystem; enable them first (Filesystem::enable_quota)"
    )]
    QuotaNotEnabled,
    /// A qgroup limit was hit (EDQUOT).
    #[error("a qgroup limit is exceeded (EDQUOT); raise the limit or free space in the subvolume")]
    QuotaExceeded,
    /// The device is mounted or held open exclusively by another program.
    #[error("the device is in use: {detail}; unmount it or stop the program holding it")]
    DeviceBusy {
        /// Who holds it, as far as known.
        detail: String,
    },
    /// The device holds a filesystem or other signature that formatting would destroy.
    #[error("found an existing {found} signature; check the device is the right one, then set MkfsOptions::force to overwrite it")]
    ExistingFilesystem {
        /// What was found, e.g. `ext2/ext3/ext4`.
        found: String,
    },
    /// The device or requested size is too small for the layout.
    #[error("{size} bytes is too small; need at least {minimum} bytes with these options (on less, the metadata chunk cannot hold the tree blocks a mounted filesystem needs to create its first file): use a larger device or size, or a smaller node size")]
    TooSmall {
        /// The size requested.
        size: u64,
        /// The smallest size that works with these options.
        minimum: u64,
    },
    /// Defragmenting would unshare extents this file shares with snapshots or reflinks, and
    /// the caller did not opt in.
    #[error("{shared_extents} extents are shared with snapshots or reflinks; defragmenting would unshare up to {would_unshare} (used space grows by that much); leave the file alone, or opt in to unsharing (DefragOptions::allow_shared)")]
    SharedExtents {
        /// How many of its extents are shared.
        shared_extents: u64,
        /// The bytes that defragmenting would rewrite out of shared extents (the dry run's
        /// estimate).
        would_unshare: crate::ByteSize,
    },
    /// The file lives in a read-only subvolume (e.g. a read-only snapshot).
    #[error("the file is in a read-only subvolume (EROFS), which this would change; skip it, or make the subvolume writable first")]
    ReadOnlySubvolume,
    /// The file is busy (ETXTBSY): an active swap file, or an executable mapped with
    /// transparent huge pages.
    #[error("the file is busy (ETXTBSY): an active swap file (swapoff it first) or an executable mapped with huge pages (stop it first); or leave it alone")]
    ActiveSwapfile,
    /// None of the filesystem's devices supports discard (EOPNOTSUPP from FITRIM).
    #[error("no device of this filesystem supports discard (EOPNOTSUPP), so there is nothing to trim; this is normal for devices without TRIM/UNMAP (and loop devices over files that cannot punch holes)")]
    DiscardUnsupported,
    /// The filesystem or the running kernel does not implement the request.
    #[error("not supported here: {what}")]
    Unsupported {
        /// What is missing.
        what: &'static str,
    },
    /// The kernel returned data this crate could not decode.
    #[error("unexpected data from the kernel: {detail}; please report this")]
    Decode {
        /// What was wrong.
        detail: String,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            // Arguments are checked before any path is touched: no path to name.
            ErrorKind::InvalidArguments { .. } => write!(f, "{}: {}", self.op, self.kind),
            _ => write!(f, "{} on {}: {}", self.op, self.path.display(), self.kind),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
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
    /// An error of `kind` from `op` on `path`.
    pub fn new(op: &'static str, path: impl Into<PathBuf>, kind: ErrorKind) -> Self {
        Error {
            op,
            path: path.into(),
            kind,
        }
    }

    /// Arguments of `op` rejected before anything reached the kernel, and why.
    pub fn invalid_arguments(op: &'static str, reason: impl Into<String>) -> Self {
        Self::new(
            op,
            PathBuf::new(),
            ErrorKind::InvalidArguments {
                reason: reason.into(),
            },
        )
    }

    /// The operation that failed, e.g. `balance start`.
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// The path the operation ran on (empty for [`ErrorKind::InvalidArguments`], which are
    /// checked before any path is touched).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Consumes the error into what went wrong.
    pub fn into_kind(self) -> ErrorKind {
        self.kind
    }

    /// Maps an errno from `op` on `path` to the most specific error, for errnos whose meaning
    /// does not depend on the operation.
    pub(crate) fn from_errno(op: &'static str, path: impl Into<PathBuf>, errno: Errno) -> Self {
        let path = path.into();
        match errno {
            Errno::NOENT => Error::new(op, path, ErrorKind::NotFound),
            Errno::PERM | Errno::ACCESS => Error::new(
                op,
                path,
                ErrorKind::PermissionDenied {
                    errno,
                    needs: NEEDS_ADMIN,
                },
            ),
            Errno::ROFS => Error::new(op, path, ErrorKind::ReadOnly),
            Errno::NOSPC => Error::new(op, path, ErrorKind::NoSpace),
            Errno::EXIST => Error::new(op, path, ErrorKind::AlreadyExists),
            Errno::DQUOT => Error::new(op, path, ErrorKind::QuotaExceeded),
            Errno::INVAL => Error::new(op, path, ErrorKind::KernelRejected { hint: None }),
            errno => Error::new(op, path, ErrorKind::Sys { errno }),
        }
    }

    /// Maps an `std::io::Error` from `op` on `path` (EIO when it carries no errno).
    pub(crate) fn from_io(op: &'static str, path: impl Into<PathBuf>, e: &std::io::Error) -> Self {
        Self::from_errno(
            op,
            path,
            Errno::from_raw_os_error(e.raw_os_error().unwrap_or(Errno::IO.raw_os_error())),
        )
    }

    /// The errno behind this error, where there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self.kind {
            ErrorKind::NotFound => Some(Errno::NOENT),
            ErrorKind::PermissionDenied { errno, .. } | ErrorKind::Sys { errno, .. } => Some(errno),
            ErrorKind::BalanceAlreadyRunning => Some(Errno::INPROGRESS),
            ErrorKind::BalanceNotRunning => Some(Errno::NOTCONN),
            ErrorKind::NoSpace => Some(Errno::NOSPC),
            ErrorKind::ReadOnly => Some(Errno::ROFS),
            ErrorKind::KernelRejected { .. } => Some(Errno::INVAL),
            ErrorKind::AlreadyExists => Some(Errno::EXIST),
            ErrorKind::SubvolumeNotEmpty => Some(Errno::NOTEMPTY),
            ErrorKind::SubvolumeBusy { errno, .. } => Some(errno),
            ErrorKind::QuotaExceeded => Some(Errno::DQUOT),
            ErrorKind::DefaultSubvolume { .. } => Some(Errno::PERM),
            ErrorKind::QuotaNotEnabled => Some(Errno::NOTCONN),
            ErrorKind::ReadOnlySubvolume => Some(Errno::ROFS),
            ErrorKind::ActiveSwapfile => Some(Errno::TXTBSY),
            ErrorKind::DiscardUnsupported => Some(Errno::OPNOTSUPP),
            ErrorKind::NoSuchDevice { .. } => Some(Errno::NODEV),
            ErrorKind::ScrubNotRunning => Some(Errno::NOTCONN),
            ErrorKind::ScrubAlreadyRunning { .. } => Some(Errno::INPROGRESS),
            _ => None,
        }
    }
}
