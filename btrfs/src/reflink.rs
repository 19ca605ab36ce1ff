//! Point-in-time copies of a file by reflink (`FICLONE`), for reading a file that another
//! process keeps writing.
//!
//! `FICLONE` shares the source's extents with the destination under the source inode's lock,
//! after writing back its dirty pages, so the copy is the file as it was at one instant: no
//! `write(2)` of the writer lands half in it. A database whose writer stays consistent across a
//! crash at any instant (bbolt, SQLite's journal modes) is therefore consistent in the copy, as
//! it would be after a power cut. The copy is an unnamed `O_TMPFILE` in the source's
//! directory: it shares every extent, takes no space until one side changes, and vanishes when
//! the returned [`File`] is closed — nothing is left behind, even after a crash.

use crate::{Error, Result};
use rustix::fs::{Mode, OFlags};
use std::fs::File;
use std::path::Path;

const OP: &str = "point-in-time copy (FICLONE)";

/// The content of `path` as it was at one instant, as an unnamed file on the same filesystem
/// that disappears when closed, read from its start. Needs write permission in `path`'s
/// directory. Fails with the kernel's errno where the filesystem cannot reflink (EOPNOTSUPP:
/// not btrfs or XFS with reflink; EINVAL: one side is `nodatacow`, the other not).
pub fn point_in_time_copy(path: &Path) -> Result<File> {
    let source = File::open(path).map_err(|e| Error::from_io(OP, path, &e))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let copy = rustix::fs::open(
        dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::RUSR | Mode::WUSR,
    )
    .map_err(|e| Error::from_errno(OP, dir, e))?;
    rustix::fs::ioctl_ficlone(&copy, &source).map_err(|e| Error::from_errno(OP, path, e))?;
    Ok(File::from(copy))
}
