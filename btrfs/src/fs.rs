//! The filesystem handle: an open file descriptor on any path of a mounted btrfs filesystem.

use crate::error::{Error, ErrorKind, Result};
use crate::fstype::{name_of_magic, BTRFS_SUPER_MAGIC};
use crate::ioctl;
use btrfs_sys as sys;
use rustix::io::Errno;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// A mounted btrfs filesystem, opened through any path on it.
///
/// The handle is `Send + Sync`: share it between threads (e.g. in an `Arc`) to poll a balance's
/// progress while another thread runs it.
#[derive(Debug)]
pub struct Filesystem {
    file: File,
    path: PathBuf,
}

impl Filesystem {
    /// Opens the btrfs filesystem that holds `path` (a mount point, or any file or directory on
    /// it). Fails with [`ErrorKind::NotBtrfs`] naming the filesystem found when it is not btrfs, and
    /// with [`ErrorKind::NotFound`] when the path does not exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        const OP: &str = "open";
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| {
            let errno = Errno::from_raw_os_error(e.raw_os_error().unwrap_or(0));
            match errno {
                Errno::ACCESS | Errno::PERM => Error::new(OP, path, ErrorKind::PermissionDenied { errno, needs: "read access to the path (check its permissions and those of its directories)" }),
                errno => Error::from_errno(OP, path, errno),
            }
        })?;
        let stat = rustix::fs::fstatfs(&file).map_err(|e| Error::from_errno(OP, path, e))?;
        let magic = stat.f_type as i64;
        if magic != BTRFS_SUPER_MAGIC {
            return Err(Error::new(
                OP,
                path,
                ErrorKind::NotBtrfs {
                    found: name_of_magic(magic),
                },
            ));
        }
        Ok(Filesystem {
            file,
            path: path.into(),
        })
    }

    /// The path this handle was opened with; errors name it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Another handle on the same open file description, e.g. for a background thread.
    pub fn try_clone(&self) -> Result<Self> {
        let file = self.file.try_clone().map_err(|e| {
            Error::from_errno(
                "clone handle",
                &self.path,
                Errno::from_raw_os_error(e.raw_os_error().unwrap_or(0)),
            )
        })?;
        Ok(Filesystem {
            file,
            path: self.path.clone(),
        })
    }

    /// Commits the current transaction and waits for it (`BTRFS_IOC_SYNC`), so that space
    /// figures reflect recent deletes.
    pub fn sync(&self) -> Result<()> {
        ioctl::sync(self.fd()).map_err(|e| self.err("sync", e))?;
        Ok(())
    }

    /// Starts a transaction commit without waiting; returns its transaction id.
    pub fn start_sync(&self) -> Result<u64> {
        ioctl::start_sync(self.fd()).map_err(|e| self.err("start sync", e))
    }

    /// Waits until transaction `transid` is committed (0: the current one).
    pub fn wait_sync(&self, transid: u64) -> Result<()> {
        ioctl::wait_sync(self.fd(), transid).map_err(|e| self.err("wait sync", e))?;
        Ok(())
    }

    /// The raw descriptor, for the ioctl layer.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Maps a *positive* ioctl return (`enum btrfs_err_code`: BALANCE_V2, RESIZE and the other
    /// exclusive operations return these instead of an errno) to an [`Error`].
    pub(crate) fn btrfs_error_code(&self, op: &'static str, code: i32) -> Error {
        if code as u32 == sys::BTRFS_ERROR_DEV_EXCL_RUN_IN_PROGRESS {
            return Error::new(
                op,
                self.path(),
                ErrorKind::ExclusiveOperationRunning {
                    running: self.exclusive_operation(),
                },
            );
        }
        let hint = match code as u32 {
            sys::BTRFS_ERROR_DEV_RAID1_MIN_NOT_MET
            | sys::BTRFS_ERROR_DEV_RAID10_MIN_NOT_MET
            | sys::BTRFS_ERROR_DEV_RAID5_MIN_NOT_MET
            | sys::BTRFS_ERROR_DEV_RAID6_MIN_NOT_MET
            | sys::BTRFS_ERROR_DEV_RAID1C3_MIN_NOT_MET
            | sys::BTRFS_ERROR_DEV_RAID1C4_MIN_NOT_MET => {
                "the target profile needs more devices than the filesystem has"
            }
            _ => "the kernel returned an unexpected btrfs error code",
        };
        Error::new(
            op,
            self.path(),
            ErrorKind::KernelRejected { hint: Some(hint) },
        )
    }

    /// Maps an errno from `op` on this filesystem to an [`Error`].
    pub(crate) fn err(&self, op: &'static str, errno: Errno) -> Error {
        Error::from_errno(op, &self.path, errno)
    }

    /// An [`ErrorKind::Decode`]: `op` on this filesystem got bytes from the kernel that do not
    /// decode; `detail` says which and why.
    pub(crate) fn decode_err(&self, op: &'static str, detail: impl Into<String>) -> Error {
        Error::new(
            op,
            self.path.clone(),
            ErrorKind::Decode {
                detail: detail.into(),
            },
        )
    }
}

impl AsFd for Filesystem {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn handles_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<super::Filesystem>();
        assert_send_sync::<crate::balance::BalanceHandle>();
    }
}
