//! The filesystem's sysfs directory, `/sys/fs/btrfs/<fsid>/`, typed.
//!
//! [`FsSysfs::for_fs`] finds the directory of an open [`Filesystem`]. Every getter returns
//! `Ok(None)` when the running kernel lacks the knob (each names the kernel version that added
//! it), never an error; a knob that exists but cannot be read or parsed is an error. Setters
//! need root and fail with [`ErrorKind::Unsupported`] when the knob is missing.
//!
//! * per allocation kind (`allocation/<data|metadata|system|mixed>/`): sizes
//!   ([`FsSysfs::allocation`]), `bg_reclaim_threshold` (5.19+), `dynamic_reclaim` (6.11+),
//!   `periodic_reclaim` (6.11+);
//! * `exclusive_operation` (5.10+, [`ExclusiveOperation`]), `commit_stats` (6.0+,
//!   [`CommitStats`]), `features/` ([`Feature`]);
//! * per device (`devinfo/<devid>/`): `error_stats` (5.14+, the same counters as
//!   [`Filesystem::device_stats`]) and `scrub_speed_max` (5.14+, [`SpeedLimit`]).
//!
//! Reading works for any user; writing needs root (CAP_SYS_ADMIN, or CAP_SYS_RESOURCE for
//! `commit_stats`).

mod allocation;
mod commit;
mod devinfo;
mod exclusive;
pub(crate) mod exclusive_operation;
mod features;
mod knob;

pub use allocation::{AllocationKind, GlobalReserve, ProfileAllocation, SysfsAllocation};
pub use commit::CommitStats;
pub use devinfo::SpeedLimit;
pub use exclusive_operation::ExclusiveOperation;
pub use features::Feature;

use crate::error::{Error, ErrorKind, Result};
use crate::fs::Filesystem;
use crate::ioctl;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// Where the kernel publishes btrfs filesystems in sysfs.
pub const SYSFS_BTRFS: &str = "/sys/fs/btrfs";

/// The sysfs directory of one mounted btrfs filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsSysfs {
    root: PathBuf,
}

impl FsSysfs {
    /// The directory of `fs`: `/sys/fs/btrfs/<fsid>` (the fsid `BTRFS_IOC_FS_INFO` reports,
    /// which is also the directory's name with `metadata_uuid` or a temporary fsid). Fails
    /// with [`ErrorKind::NotFound`] when it does not exist (sysfs not mounted, e.g. in some
    /// containers).
    pub fn for_fs(fs: &Filesystem) -> Result<FsSysfs> {
        let fsid = ioctl::fs_info(fs.fd()).map_err(|e| fs.err("find sysfs directory", e))?;
        let root = Path::new(SYSFS_BTRFS).join(Uuid::from_bytes(fsid.fsid).to_string());
        if !root.is_dir() {
            return Err(Error::new(
                "find sysfs directory",
                root,
                ErrorKind::NotFound,
            ));
        }
        Ok(FsSysfs { root })
    }

    /// A directory laid out like `/sys/fs/btrfs/<fsid>` (sysfs mounted elsewhere).
    pub fn at(root: impl Into<PathBuf>) -> FsSysfs {
        FsSysfs { root: root.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn knob(&self, rel: impl AsRef<Path>) -> knob::Knob {
        knob::Knob::new(self.root.join(rel))
    }
}

impl Filesystem {
    /// The exclusive operation running on this filesystem (balance, device add/remove/replace,
    /// resize, swapfile activation), from sysfs (5.10+). `None` when none runs, or when the
    /// kernel or sysfs cannot tell; for the difference use [`FsSysfs::exclusive_operation`].
    pub fn exclusive_operation(&self) -> Option<ExclusiveOperation> {
        match FsSysfs::for_fs(self).ok()?.exclusive_operation() {
            Ok(Some(ExclusiveOperation::None)) | Ok(None) | Err(_) => None,
            Ok(Some(op)) => Some(op),
        }
    }
}
