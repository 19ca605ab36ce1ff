//! Walking a directory tree for defragmentation without crossing into other filesystems or
//! nested subvolumes unless asked.
//!
//! On btrfs every subvolume has its own `st_dev`, so "same device" (as `find -xdev` or
//! `nftw(FTW_MOUNT)` judge it) cannot tell a nested subvolume from another mount. The walk uses
//! the mount id (`statx` `STATX_MNT_ID`): a directory with another mount id is a mount point; one
//! with the same mount id but another `st_dev` is a nested subvolume (a Docker layer, a
//! snapshot).
//!
//! The walk streams: it holds one open directory at a time (read with `getdents64` into one
//! reused buffer) and a stack of the directories still to visit, and hands each regular file to
//! its caller as a name relative to the open directory, so the caller opens it with `openat`
//! without the kernel resolving the whole path again. Its memory grows with the directories
//! waiting on the stack, never with the number of files.

use crate::error::{Error, Result};
use crate::size::ByteSize;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir, StatxFlags, CWD};
use std::ffi::{CStr, CString, OsStr};
use std::mem::MaybeUninit;
use std::ops::ControlFlow;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Which boundaries a walk may cross.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WalkOptions {
    /// Descend into nested subvolumes (and snapshots) below the root.
    pub cross_subvolumes: bool,
    /// Descend into other mounted filesystems below the root (only btrfs ones are walked).
    pub cross_mounts: bool,
    /// Walk the tree once before the work to count its files and bytes, so that
    /// [`TreeProgress`](super::TreeProgress) carries the totals from the first file on. This
    /// costs a second listing of every directory and one `statx` per file: little beside a real
    /// defragmentation, a good part of a dry run (whose work per file is about as cheap). Without
    /// it the totals are the figures found so far.
    pub count_first: bool,
}

impl WalkOptions {
    /// Descends into nested subvolumes too.
    pub fn cross_subvolumes(mut self, cross: bool) -> Self {
        self.cross_subvolumes = cross;
        self
    }

    /// Descends into other mounted btrfs filesystems too.
    pub fn cross_mounts(mut self, cross: bool) -> Self {
        self.cross_mounts = cross;
        self
    }

    /// Counts the files and bytes first, for progress with totals.
    pub fn count_first(mut self, count: bool) -> Self {
        self.count_first = count;
        self
    }
}

/// Why the walk stopped at a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum BoundaryKind {
    /// A nested subvolume (or snapshot), not crossed.
    Subvolume,
    /// Another mounted filesystem, not crossed.
    Mount,
    /// Another mounted filesystem that is not btrfs (never crossed).
    NotBtrfs,
}

/// A directory (or file) the walk did not enter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Boundary {
    /// Its path.
    pub path: PathBuf,
    /// What it is.
    pub kind: BoundaryKind,
}

/// The regular files of a tree, and what the walk left out.
#[derive(Debug, Default)]
pub struct Walk {
    /// Regular files with their sizes, in walk order.
    pub files: Vec<(PathBuf, ByteSize)>,
    /// Directories not entered.
    pub boundaries: Vec<Boundary>,
    /// Entries that could not be read (the walk goes on without them).
    pub errors: Vec<Error>,
}

/// What a streaming walk left out: boundaries not crossed and entries it could not read.
#[derive(Debug, Default)]
pub(crate) struct WalkLog {
    pub(crate) boundaries: Vec<Boundary>,
    pub(crate) errors: Vec<Error>,
}

/// A regular file the walk found, named relative to its open directory.
pub(crate) struct FoundFile<'a> {
    /// The open directory holding it (the working directory when the root is a file).
    pub(crate) dir: BorrowedFd<'a>,
    /// Its name in `dir` (the root path itself when the root is a file).
    pub(crate) name: &'a CStr,
    /// Its full path. The caller may move it out (into a report) and put it back, so that the
    /// buffer is reused for the next file.
    pub(crate) path: &'a mut PathBuf,
    /// The device of its directory: a file on another one is mounted there from elsewhere.
    /// `None` for a root that is a file.
    pub(crate) dir_dev: Option<(u32, u32)>,
}

/// What the caller made of a [`FoundFile`].
pub(crate) enum Seen {
    /// Handled (planned, defragmented, counted).
    File,
    /// A file mounted from another device (a bind mount): the walk records a boundary.
    Mounted,
    /// It could not be looked at (e.g. it vanished since the listing): a walk error.
    Unreadable(Error),
}

/// Where a directory lives: its device and its mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    dev: (u32, u32),
    mnt_id: u64,
}

const OP: &str = "walk tree";

/// The `getdents64` buffer: as large as the C library's, so most directories are read in one
/// or two calls.
const DIR_BUFFER: usize = 32 * 1024;

/// The place of a `statx` answer.
fn place(st: &rustix::fs::Statx) -> Place {
    Place {
        dev: (st.stx_dev_major, st.stx_dev_minor),
        // Without STATX_MNT_ID (kernels before 5.8) every directory counts as the same mount,
        // and other filesystems are told apart by the btrfs check below.
        mnt_id: if st.stx_mask & StatxFlags::MNT_ID.bits() != 0 {
            st.stx_mnt_id
        } else {
            0
        },
    }
}

// `f_type`'s width depends on the target (i64 on x86_64, where the cast is a no-op).
#[allow(clippy::unnecessary_cast)]
fn is_btrfs(path: &Path) -> bool {
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type as i64 == crate::fstype::BTRFS_SUPER_MAGIC)
}

/// The device of an `fstat`/`fstatat` answer, as `statx` splits it.
pub(crate) fn dev_pair(st: &rustix::fs::Stat) -> (u32, u32) {
    (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev))
}

/// Lists the regular files under `root` (or `root` itself when it is a file), not following
/// symbolic links, stopping at nested subvolumes and other mounts unless `options` says to cross
/// them. Unreadable entries are collected in [`Walk::errors`]; only an unreadable root fails.
///
/// This collects every path (memory grows with the tree); [`plan_tree`](super::plan_tree) and
/// [`defragment_tree`](super::defragment_tree) stream instead.
pub fn walk(root: impl AsRef<Path>, options: &WalkOptions) -> Result<Walk> {
    let mut log = WalkLog::default();
    let mut files = Vec::new();
    visit(root.as_ref(), options, &mut log, |found| {
        ControlFlow::Continue(match stat_found(&found, options) {
            Ok(Some(size)) => {
                files.push((found.path.clone(), size));
                Seen::File
            }
            Ok(None) => Seen::Mounted,
            Err(e) => Seen::Unreadable(e),
        })
    })?;
    Ok(Walk {
        files,
        boundaries: log.boundaries,
        errors: log.errors,
    })
}

/// The size of a found file by `fstatat` relative to its directory, or `None` when it is
/// mounted from another device and `options` does not cross mounts.
pub(crate) fn stat_found(found: &FoundFile<'_>, options: &WalkOptions) -> Result<Option<ByteSize>> {
    let st = rustix::fs::statat(found.dir, found.name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::from_errno(OP, &*found.path, e))?;
    if found
        .dir_dev
        .is_some_and(|dev| dev != dev_pair(&st) && !options.cross_mounts)
    {
        return Ok(None);
    }
    Ok(Some(ByteSize(st.st_size as u64)))
}

/// Walks the tree under `root` as [`walk`] does, handing each regular file to `on_file` in walk
/// order as soon as its directory listing reaches it, and recording boundaries and unreadable
/// entries in `log`. Returns whether `on_file` stopped the walk.
pub(crate) fn visit(
    root: &Path,
    options: &WalkOptions,
    log: &mut WalkLog,
    mut on_file: impl FnMut(FoundFile<'_>) -> ControlFlow<(), Seen>,
) -> Result<bool> {
    let st = rustix::fs::statx(
        CWD,
        root,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::TYPE | StatxFlags::MNT_ID,
    )
    .map_err(|e| Error::from_errno(OP, root, e))?;
    let mut file_path = PathBuf::new();
    match FileType::from_raw_mode(st.stx_mode.into()) {
        FileType::Directory => {}
        FileType::RegularFile => {
            let name = CString::new(root.as_os_str().as_bytes()).map_err(|_| {
                Error::invalid_arguments(OP, format!("{} contains a NUL byte", root.display()))
            })?;
            file_path.push(root);
            let found = FoundFile {
                dir: CWD,
                name: &name,
                path: &mut file_path,
                dir_dev: None,
            };
            let flow = on_file(found);
            let stopped = flow.is_break();
            record(log, flow, &file_path);
            return Ok(stopped);
        }
        _ => {
            return Err(Error::invalid_arguments(
                OP,
                format!(
                    "{} is neither a regular file nor a directory",
                    root.display()
                ),
            ))
        }
    }
    let mut buf = vec![MaybeUninit::<u8>::uninit(); DIR_BUFFER];
    let mut stack = vec![(root.to_path_buf(), place(&st))];
    while let Some((dir_path, here)) = stack.pop() {
        let dir = match rustix::fs::open(
            &dir_path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(dir) => dir,
            Err(e) => {
                log.errors.push(Error::from_errno(OP, &dir_path, e));
                continue;
            }
        };
        let mut entries = RawDir::new(dir.as_fd(), &mut buf);
        while let Some(entry) = entries.next() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    // The listing cannot go on past an error.
                    log.errors.push(Error::from_errno(OP, &dir_path, e));
                    break;
                }
            };
            let name = entry.file_name();
            if matches!(name.to_bytes(), b"." | b"..") {
                continue;
            }
            let mut kind = entry.file_type();
            if kind == FileType::Unknown {
                // Filesystems without d_type: ask the inode.
                match rustix::fs::statx(
                    dir.as_fd(),
                    name,
                    AtFlags::SYMLINK_NOFOLLOW,
                    StatxFlags::TYPE,
                ) {
                    Ok(st) => kind = FileType::from_raw_mode(st.stx_mode.into()),
                    Err(e) => {
                        log.errors.push(Error::from_errno(
                            OP,
                            dir_path.join(OsStr::from_bytes(name.to_bytes())),
                            e,
                        ));
                        continue;
                    }
                }
            }
            match kind {
                FileType::Directory => {
                    let path = dir_path.join(OsStr::from_bytes(name.to_bytes()));
                    let st = match rustix::fs::statx(
                        dir.as_fd(),
                        name,
                        AtFlags::SYMLINK_NOFOLLOW,
                        StatxFlags::MNT_ID,
                    ) {
                        Ok(st) => st,
                        Err(e) => {
                            log.errors.push(Error::from_errno(OP, path, e));
                            continue;
                        }
                    };
                    let there = place(&st);
                    match boundary(here, there, &path, options) {
                        Some(kind) => log.boundaries.push(Boundary { path, kind }),
                        None => stack.push((path, there)),
                    }
                }
                FileType::RegularFile => {
                    file_path.clear();
                    file_path.push(&dir_path);
                    file_path.push(OsStr::from_bytes(name.to_bytes()));
                    let found = FoundFile {
                        dir: dir.as_fd(),
                        name,
                        path: &mut file_path,
                        dir_dev: Some(here.dev),
                    };
                    let flow = on_file(found);
                    let stopped = flow.is_break();
                    record(log, flow, &file_path);
                    if stopped {
                        return Ok(true);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(false)
}

/// Records what the caller made of a file in `log`.
fn record(log: &mut WalkLog, flow: ControlFlow<(), Seen>, path: &Path) {
    match flow {
        ControlFlow::Continue(Seen::Mounted) => log.boundaries.push(Boundary {
            path: path.into(),
            kind: BoundaryKind::Mount,
        }),
        ControlFlow::Continue(Seen::Unreadable(e)) => log.errors.push(e),
        ControlFlow::Continue(Seen::File) | ControlFlow::Break(()) => {}
    }
}

/// Whether the directory at `path`, living at `there`, is a boundary the walk from a directory
/// at `here` must not cross.
fn boundary(here: Place, there: Place, path: &Path, options: &WalkOptions) -> Option<BoundaryKind> {
    let (cross, kind) = if there.mnt_id != here.mnt_id {
        (options.cross_mounts, BoundaryKind::Mount)
    } else if there.dev != here.dev {
        // Same mount, another device: on btrfs, a nested subvolume.
        (options.cross_subvolumes, BoundaryKind::Subvolume)
    } else {
        return None;
    };
    if !is_btrfs(path) {
        Some(BoundaryKind::NotBtrfs)
    } else if !cross {
        Some(kind)
    } else {
        None
    }
}
