//! Planning and defragmenting one regular file.

use super::options::DefragOptions;
use super::plan::{plan_extents, FilePlan};
use crate::error::{Error, Result};
use crate::fiemap::{FiemapReader, FiemapRequest};
use crate::ioctl;
use crate::size::ByteSize;
use btrfs_sys as sys;
use nix::errno::Errno;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

const PLAN_OP: &str = "plan defragmentation";
const DEFRAG_OP: &str = "defragment (BTRFS_IOC_DEFRAG_RANGE)";

/// The dry run for one file: its extents, the shared ones, and what defragmenting with `options`
/// would rewrite and unshare. Needs only read access.
pub fn plan_file(path: impl AsRef<Path>, options: &DefragOptions) -> Result<FilePlan> {
    let path = path.as_ref();
    let file = open_regular(PLAN_OP, path)?;
    plan_open_file(&mut FiemapReader::new(), &file, path, options)
}

/// Defragments one regular file with `options`, after a dry run: a file with extents shared with
/// snapshots or reflinks in the range is refused with [`Error::SharedExtents`] unless
/// [`DefragOptions::allow_shared`] is set. Returns the dry run it acted on.
///
/// The kernel's answers become errors that say what to do: [`Error::PermissionDenied`] (needs
/// write permission on the file or `CAP_SYS_ADMIN`), [`Error::ReadOnly`] (read-only mount),
/// [`Error::ReadOnlySubvolume`], [`Error::ActiveSwapfile`].
pub fn defragment_file(path: impl AsRef<Path>, options: &DefragOptions) -> Result<FilePlan> {
    let path = path.as_ref();
    let file = open_regular(DEFRAG_OP, path)?;
    match defragment_open_file(&mut FiemapReader::new(), &file, path, options)? {
        Applied::Defragmented(plan) => Ok(plan),
        Applied::RefusedShared(plan) => Err(Error::SharedExtents {
            op: DEFRAG_OP,
            path: path.into(),
            shared_extents: plan.shared_extents,
            would_unshare: plan.would_unshare,
        }),
    }
}

/// What [`defragment_open_file`] did.
pub(crate) enum Applied {
    /// Defragmented after this dry run.
    Defragmented(FilePlan),
    /// Refused: the dry run found shared extents and they were not allowed.
    RefusedShared(FilePlan),
}

/// Opens `path` read-only (the kernel checks write permission on the inode, not the descriptor,
/// so running executables can be defragmented) and checks that it is a regular file.
pub(crate) fn open_regular(op: &'static str, path: &Path) -> Result<File> {
    let file = File::open(path).map_err(|e| Error::from_io(op, path, &e))?;
    let meta = file.metadata().map_err(|e| Error::from_io(op, path, &e))?;
    if !meta.is_file() {
        return Err(Error::InvalidArguments {
            op,
            reason: format!(
                "{} is not a regular file; give a file, or walk a directory with the tree functions",
                path.display()
            ),
        });
    }
    Ok(file)
}

/// The dry run of an open file, reusing `reader`'s buffer.
pub(crate) fn plan_open_file(
    reader: &mut FiemapReader,
    file: &File,
    path: &Path,
    options: &DefragOptions,
) -> Result<FilePlan> {
    let size = file
        .metadata()
        .map_err(|e| Error::from_io(PLAN_OP, path, &e))?
        .len();
    let request = FiemapRequest {
        start: options.start,
        length: options.length,
        sync: false,
    };
    let extents = reader.extents(file.as_fd(), path, &request)?;
    Ok(plan_extents(path.into(), ByteSize(size), &extents, options))
}

/// Plans, refuses shared extents unless allowed, then defragments an open file.
pub(crate) fn defragment_open_file(
    reader: &mut FiemapReader,
    file: &File,
    path: &Path,
    options: &DefragOptions,
) -> Result<Applied> {
    let plan = plan_open_file(reader, file, path, options)?;
    if plan.shared_extents > 0 && !options.allow_shared {
        return Ok(Applied::RefusedShared(plan));
    }
    // The kernel answers EINVAL for a start at or past the end: there is nothing to do.
    if options.start.0 < plan.size.0 {
        ioctl::defrag_range(file.as_fd(), &range_args(options))
            .map_err(|errno| defrag_error(file, path, errno))?;
    }
    Ok(Applied::Defragmented(plan))
}

/// The kernel's argument struct for `options`.
fn range_args(options: &DefragOptions) -> sys::btrfs_ioctl_defrag_range_args {
    let mut flags = 0u64;
    if options.flush {
        flags |= u64::from(sys::BTRFS_DEFRAG_RANGE_START_IO);
    }
    let mut compress_type = 0;
    if let Some(c) = options.compression {
        flags |= u64::from(sys::BTRFS_DEFRAG_RANGE_COMPRESS);
        compress_type = c.kernel_type();
    }
    let threshold = options.extent_threshold.map_or(0, |t| t.0);
    sys::btrfs_ioctl_defrag_range_args {
        start: options.start.0,
        len: options.length.map_or(u64::MAX, |l| l.0),
        flags,
        extent_thresh: u32::try_from(threshold).unwrap_or(u32::MAX),
        compress_type,
        unused: [0; 4],
    }
}

/// Maps an errno of `BTRFS_IOC_DEFRAG_RANGE` to an error that says what to do.
fn defrag_error(file: &File, path: &Path, errno: Errno) -> Error {
    let path_buf = path.to_path_buf();
    match errno {
        Errno::EPERM | Errno::EACCES => Error::PermissionDenied {
            op: DEFRAG_OP,
            path: path_buf,
            errno,
            needs: "write permission on the file (check its permissions), or CAP_SYS_ADMIN (run as root)",
        },
        Errno::EROFS => {
            let mount_ro = nix::sys::statvfs::fstatvfs(file)
                .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
            if mount_ro {
                Error::ReadOnly {
                    op: DEFRAG_OP,
                    path: path_buf,
                }
            } else {
                Error::ReadOnlySubvolume {
                    op: DEFRAG_OP,
                    path: path_buf,
                }
            }
        }
        Errno::ETXTBSY => Error::ActiveSwapfile {
            op: DEFRAG_OP,
            path: path_buf,
        },
        Errno::EINVAL => Error::KernelRejected {
            op: DEFRAG_OP,
            path: path_buf,
            hint: Some("the compression type is unknown to this kernel, or the file shrank below the start offset"),
        },
        Errno::EOPNOTSUPP => Error::Unsupported {
            op: DEFRAG_OP,
            path: path_buf,
            what: "this kernel does not know a requested defrag flag",
        },
        Errno::ENOTTY => Error::Unsupported {
            op: DEFRAG_OP,
            path: path_buf,
            what: "the file is not on btrfs (ENOTTY)",
        },
        Errno::ENOSPC => Error::Sys {
            op: DEFRAG_OP,
            path: path_buf,
            errno,
        },
        errno => Error::from_errno(DEFRAG_OP, path_buf, errno),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defrag::Compression;

    #[test]
    fn range_args_carry_the_options_as_the_kernel_numbers_them() {
        let a = range_args(&DefragOptions::default());
        assert_eq!(
            (a.start, a.len, a.flags, a.extent_thresh, a.compress_type),
            (0, u64::MAX, 0, 0, 0)
        );
        let a = range_args(
            &DefragOptions::default()
                .compression(Compression::Zstd)
                .flush(true)
                .extent_threshold(ByteSize(8 << 30))
                .range(ByteSize(4096), ByteSize(8192)),
        );
        assert_eq!(a.flags, 3);
        assert_eq!(a.compress_type, 3);
        assert_eq!(a.extent_thresh, u32::MAX);
        assert_eq!((a.start, a.len), (4096, 8192));
    }
}
