//! Path helpers: opening directories, splitting a path into parent and name, identifying
//! subvolumes, and finding the subvolume root that contains a path.

use super::ROOT_DIR_INO;
use crate::error::{Error, ErrorKind, Result};
use crate::fstype::BTRFS_SUPER_MAGIC;
use crate::ioctl;
use rustix::io::Errno;
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The errno of an `std::io::Error`.
pub(crate) fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw_os_error(e.raw_os_error().unwrap_or(0))
}

/// Opens a directory (or any file) read-only, mapping failures to [`Error`]s naming `op`.
pub(crate) fn open(op: &'static str, path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::from_errno(op, path, errno_of(&e)))
}

/// Opens `path`, checks that it is on btrfs and is a subvolume's root directory.
pub(crate) fn open_subvolume(op: &'static str, path: &Path) -> Result<File> {
    let file = open(op, path)?;
    let meta = file
        .metadata()
        .map_err(|e| Error::from_errno(op, path, errno_of(&e)))?;
    check_btrfs(op, path, &file)?;
    if !meta.is_dir() || meta.ino() != ROOT_DIR_INO {
        return Err(Error::new(op, path, ErrorKind::NotASubvolume));
    }
    Ok(file)
}

/// Fails with [`ErrorKind::NotBtrfs`] unless `file` is on btrfs.
pub(crate) fn check_btrfs(op: &'static str, path: &Path, file: &File) -> Result<()> {
    let stat = rustix::fs::fstatfs(file).map_err(|e| Error::from_errno(op, path, e))?;
    let magic = stat.f_type as i64;
    if magic != BTRFS_SUPER_MAGIC {
        return Err(Error::new(
            op,
            path,
            ErrorKind::NotBtrfs {
                found: crate::fstype::name_of_magic(magic),
            },
        ));
    }
    Ok(())
}

/// Maps an errno from a subvolume operation to the most specific error; `needs` names what
/// the kernel wants when it says EPERM/EACCES.
pub(crate) fn subvol_err(
    op: &'static str,
    path: &Path,
    errno: Errno,
    needs: &'static str,
) -> Error {
    let path = path.to_path_buf();
    match errno {
        Errno::NOTEMPTY => Error::new(op, path, ErrorKind::SubvolumeNotEmpty),
        Errno::BUSY => Error::new(op, path, ErrorKind::SubvolumeBusy { errno }),
        Errno::PERM | Errno::ACCESS => {
            Error::new(op, path, ErrorKind::PermissionDenied { errno, needs })
        }
        errno => Error::from_errno(op, path, errno),
    }
}

/// Splits `path` into its parent directory (`.` when none is given) and its last component,
/// which must be a plain name (not empty, `.` or `..`).
pub(crate) fn split(op: &'static str, path: &Path) -> Result<(PathBuf, Vec<u8>)> {
    let bytes = path.as_os_str().as_bytes();
    let trimmed = bytes.strip_suffix(b"/").unwrap_or(bytes);
    let (parent, name) = match trimmed.iter().rposition(|b| *b == b'/') {
        Some(0) => (&b"/"[..], &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (&b"."[..], trimmed),
    };
    if name.is_empty() || name == b"." || name == b".." {
        return Err(Error::invalid_arguments(op, format!(
                "{} does not end in a name; give the path of the new subvolume, e.g. /mnt/data/name",
                path.display()
            )));
    }
    if name.len() > btrfs_sys::BTRFS_VOL_NAME_MAX as usize {
        return Err(Error::invalid_arguments(
            op,
            format!(
                "the name {:?} is longer than {} bytes",
                String::from_utf8_lossy(name),
                btrfs_sys::BTRFS_VOL_NAME_MAX
            ),
        ));
    }
    Ok((PathBuf::from(OsStr::from_bytes(parent)), name.to_vec()))
}

/// Whether `path` is the root directory of a btrfs subvolume (a directory with inode 256 on
/// btrfs). A missing path is an error, not `false`.
pub fn is_subvolume(path: impl AsRef<Path>) -> Result<bool> {
    const OP: &str = "is subvolume";
    let path = path.as_ref();
    match open_subvolume(OP, path) {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::NotASubvolume | ErrorKind::NotBtrfs { .. }
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The id of the subvolume holding `path` (any file or directory on btrfs). Needs no
/// privileges.
pub fn subvolume_id(path: impl AsRef<Path>) -> Result<u64> {
    const OP: &str = "subvolume id";
    let path = path.as_ref();
    let file = open(OP, path)?;
    check_btrfs(OP, path, &file)?;
    id_of(OP, path, &file)
}

/// The subvolume id of an open file (`BTRFS_IOC_INO_LOOKUP` of inode 256, unprivileged).
pub(crate) fn id_of(op: &'static str, path: &Path, file: &impl AsFd) -> Result<u64> {
    ioctl::ino_lookup(file.as_fd(), 0, ROOT_DIR_INO)
        .map(|(treeid, _)| treeid)
        .map_err(|e| Error::from_errno(op, path, e))
}

/// The root directory of the subvolume that holds `path`, found by walking up the canonical
/// path to the first directory with inode 256, and `path` relative to it.
pub(crate) fn containing_root(op: &'static str, path: &Path) -> Result<(PathBuf, PathBuf)> {
    let canonical = path
        .canonicalize()
        .map_err(|e| Error::from_errno(op, path, errno_of(&e)))?;
    for ancestor in canonical.ancestors() {
        let meta = std::fs::metadata(ancestor)
            .map_err(|e| Error::from_errno(op, ancestor, errno_of(&e)))?;
        if meta.is_dir() && meta.ino() == ROOT_DIR_INO {
            let rel = canonical.strip_prefix(ancestor).unwrap_or(Path::new(""));
            return Ok((ancestor.to_path_buf(), rel.to_path_buf()));
        }
    }
    Err(Error::invalid_arguments(
        op,
        format!(
            "no subvolume root found above {}; is it on btrfs?",
            path.display()
        ),
    ))
}

/// Joins a relative path given as bytes (possibly with a trailing `/`) and a name onto `base`.
pub(crate) fn join_bytes(base: &Path, dir: &[u8], name: &[u8]) -> PathBuf {
    let mut p = base.to_path_buf();
    for part in dir.split(|b| *b == b'/').filter(|p| !p.is_empty()) {
        p.push(OsStr::from_bytes(part));
    }
    if !name.is_empty() {
        p.push(OsStr::from_bytes(name));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_takes_the_last_component() {
        let (parent, name) = split("t", Path::new("/mnt/a/b/")).unwrap();
        assert_eq!(
            (parent.as_path(), name.as_slice()),
            (Path::new("/mnt/a"), &b"b"[..])
        );
        let (parent, name) = split("t", Path::new("b")).unwrap();
        assert_eq!(
            (parent.as_path(), name.as_slice()),
            (Path::new("."), &b"b"[..])
        );
        let (parent, name) = split("t", Path::new("/b")).unwrap();
        assert_eq!(
            (parent.as_path(), name.as_slice()),
            (Path::new("/"), &b"b"[..])
        );
        assert!(split("t", Path::new("/mnt/..")).is_err());
        assert!(split("t", Path::new("/")).is_err());
        assert!(split("t", Path::new("a/.")).is_err());
    }

    #[test]
    fn join_bytes_skips_empty_parts() {
        assert_eq!(
            join_bytes(Path::new("x"), b"a/b/", b"c"),
            PathBuf::from("x/a/b/c")
        );
        assert_eq!(join_bytes(Path::new(""), b"", b"c"), PathBuf::from("c"));
    }
}
