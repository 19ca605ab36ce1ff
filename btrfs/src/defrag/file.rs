//! Planning and defragmenting one regular file.

use super::options::DefragOptions;
use super::plan::{FilePlan, Planner};
use super::walk::dev_pair;
use crate::error::{Error, ErrorKind, Result};
use crate::fiemap::{FiemapReader, FiemapRequest};
use crate::ioctl;
use crate::size::ByteSize;
use btrfs_sys as sys;
use rustix::fs::{FileType, Mode, OFlags, CWD};
use rustix::io::Errno;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

const PLAN_OP: &str = "plan defragmentation";
const DEFRAG_OP: &str = "defragment (BTRFS_IOC_DEFRAG_RANGE)";

/// The dry run for one file: its extents, the shared ones, and what defragmenting with `options`
/// would rewrite and unshare. Needs only read access.
pub fn plan_file(path: impl AsRef<Path>, options: &DefragOptions) -> Result<FilePlan> {
    let path = path.as_ref();
    let file = open_regular(PLAN_OP, CWD, path, path, Follow::Yes)?;
    plan_open_file(
        &mut FiemapReader::new(),
        &file,
        &mut path.to_path_buf(),
        options,
    )
}

/// Defragments one regular file with `options`, after a dry run: a file with extents shared with
/// snapshots or reflinks in the range is refused with [`ErrorKind::SharedExtents`] unless
/// [`DefragOptions::allow_shared`] is set. Returns the dry run it acted on.
///
/// The kernel's answers become errors that say what to do: [`ErrorKind::PermissionDenied`] (needs
/// write permission on the file or `CAP_SYS_ADMIN`), [`ErrorKind::ReadOnly`] (read-only mount),
/// [`ErrorKind::ReadOnlySubvolume`], [`ErrorKind::ActiveSwapfile`].
pub fn defragment_file(path: impl AsRef<Path>, options: &DefragOptions) -> Result<FilePlan> {
    let path = path.as_ref();
    let file = open_regular(DEFRAG_OP, CWD, path, path, Follow::Yes)?;
    let applied = defragment_open_file(
        &mut FiemapReader::new(),
        &file,
        &mut path.to_path_buf(),
        options,
    )?;
    match applied {
        Applied::Defragmented(plan) => Ok(plan),
        Applied::RefusedShared(plan) => Err(Error::new(
            DEFRAG_OP,
            path,
            ErrorKind::SharedExtents {
                shared_extents: plan.shared_extents,
                would_unshare: plan.would_unshare,
            },
        )),
    }
}

/// What [`defragment_open_file`] did.
pub(crate) enum Applied {
    /// Defragmented after this dry run.
    Defragmented(FilePlan),
    /// Refused: the dry run found shared extents and they were not allowed.
    RefusedShared(FilePlan),
}

/// An open regular file, with what its one `fstat` said.
pub(crate) struct OpenFile {
    fd: OwnedFd,
    /// Its size.
    pub(crate) size: ByteSize,
    /// Its device (`st_dev` split as `statx` does).
    pub(crate) dev: (u32, u32),
}

/// Whether [`open_regular`] follows a symbolic link in the last component.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    /// Follow it (a path the caller named).
    Yes,
    /// Refuse it (an entry the walk listed as a regular file).
    No,
}

/// Opens `name` (relative to `dir`; `path` names it in errors) read-only and checks with one
/// `fstat` that it is a regular file. The kernel checks write permission for defragmenting on
/// the inode, not the descriptor, so running executables can be defragmented. `O_NONBLOCK`
/// keeps a FIFO put in a file's place from blocking the open; ioctls ignore it.
pub(crate) fn open_regular(
    op: &'static str,
    dir: BorrowedFd<'_>,
    name: impl rustix::path::Arg,
    path: &Path,
    follow: Follow,
) -> Result<OpenFile> {
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    if follow == Follow::No {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty())
        .map_err(|e| Error::from_errno(op, path, e))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::from_errno(op, path, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::invalid_arguments(op, format!(
                "{} is not a regular file; give a file, or walk a directory with the tree functions",
                path.display()
            )));
    }
    Ok(OpenFile {
        fd,
        size: ByteSize(st.st_size as u64),
        dev: dev_pair(&st),
    })
}

/// The dry run of an open file, reusing `reader`'s buffer and judging each extent as the
/// kernel returns it (no extent list is kept). On success the plan takes `path`'s buffer (put
/// it back from the plan to reuse it); on failure `path` keeps it.
pub(crate) fn plan_open_file(
    reader: &mut FiemapReader,
    file: &OpenFile,
    path: &mut PathBuf,
    options: &DefragOptions,
) -> Result<FilePlan> {
    let request = FiemapRequest {
        start: options.start,
        length: options.length,
        sync: false,
    };
    let mut planner = Planner::new(file.size, options);
    reader.for_each(file.fd.as_fd(), path, &request, |e| planner.push(e))?;
    Ok(planner.finish(std::mem::take(path)))
}

/// Plans, refuses shared extents unless allowed, then defragments an open file. On success the
/// plan holds `path`'s buffer; on failure `path` keeps it.
pub(crate) fn defragment_open_file(
    reader: &mut FiemapReader,
    file: &OpenFile,
    path: &mut PathBuf,
    options: &DefragOptions,
) -> Result<Applied> {
    let plan = plan_open_file(reader, file, path, options)?;
    if plan.shared_extents > 0 && !options.allow_shared {
        return Ok(Applied::RefusedShared(plan));
    }
    // The kernel answers EINVAL for a start at or past the end: there is nothing to do.
    if options.start.0 < plan.size.0 {
        if let Err(errno) = ioctl::defrag_range(file.fd.as_fd(), &range_args(options)) {
            let error = defrag_error(file.fd.as_fd(), &plan.path, errno);
            *path = plan.path;
            return Err(error);
        }
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
fn defrag_error(fd: BorrowedFd<'_>, path: &Path, errno: Errno) -> Error {
    let path_buf = path.to_path_buf();
    match errno {
        Errno::PERM | Errno::ACCESS => Error::new(DEFRAG_OP, path_buf, ErrorKind::PermissionDenied { errno, needs: "write permission on the file (check its permissions), or CAP_SYS_ADMIN (run as root)" }),
        Errno::ROFS => {
            let mount_ro = rustix::fs::fstatvfs(fd)
                .is_ok_and(|s| s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY));
            if mount_ro {
                Error::new(DEFRAG_OP, path_buf, ErrorKind::ReadOnly)
            } else {
                Error::new(DEFRAG_OP, path_buf, ErrorKind::ReadOnlySubvolume)
            }
        }
        Errno::TXTBSY => Error::new(DEFRAG_OP, path_buf, ErrorKind::ActiveSwapfile),
        Errno::INVAL => Error::new(DEFRAG_OP, path_buf, ErrorKind::KernelRejected { hint: Some("the compression type is unknown to this kernel, or the file shrank below the start offset") }),
        Errno::OPNOTSUPP => Error::new(DEFRAG_OP, path_buf, ErrorKind::Unsupported { what: "this kernel does not know a requested defrag flag" }),
        Errno::NOTTY => Error::new(DEFRAG_OP, path_buf, ErrorKind::Unsupported { what: "the file is not on btrfs (ENOTTY)" }),
        Errno::NOSPC => Error::new(DEFRAG_OP, path_buf, ErrorKind::Sys { errno }),
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
