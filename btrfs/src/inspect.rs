//! Which files hold a logical address: `BTRFS_IOC_LOGICAL_INO_V2` finds the inodes (per
//! subvolume) whose extents reference it, `BTRFS_IOC_INO_PATHS` names them.
//!
//! A file shared by snapshots (every Docker image layer above the first is a snapshot of the
//! one below) appears once per subvolume holding it, so the answer says which layers, and
//! thus which images and containers, are affected. Paths are absolute when the subvolume can
//! be reached below this handle's mount, else relative to the subvolume's root (the
//! subvolume's own path from the top level is given too). Everything here needs
//! CAP_SYS_ADMIN.
//!
//! ```no_run
//! # fn main() -> Result<(), btrfs_kit::Error> {
//! let fs = btrfs_kit::Filesystem::open("/var/lib/docker")?;
//! for file in fs.files_at_logical(298_844_160)? {
//!     println!("subvolume {} ({:?}): {:?}", file.subvolume_id, file.subvolume_path, file.paths);
//! }
//! # Ok(())
//! # }
//! ```

use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::ioctl;
use crate::subvolume::{containing_root, top_path, TOP_LEVEL_ID};
use rustix::io::Errno;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// First LOGICAL_INO_V2 buffer; grown to what the kernel says it missed, up to its 16 MiB cap.
const FIRST_BUFFER: usize = 64 << 10;
const MAX_BUFFER: usize = 16 << 20;
/// INO_PATHS buffer: room for many hard links of long paths.
const PATHS_BUFFER: usize = 64 << 10;

/// One reference to a logical address: inode `inode` of subvolume `root` maps it at byte
/// `offset` of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct InodeRef {
    /// The subvolume (tree) id.
    pub root: u64,
    /// The inode number inside it.
    pub inode: u64,
    /// The byte offset in the file at which the logical address is mapped.
    pub offset: u64,
}

/// A file that holds one or more given logical addresses (e.g. damaged ones), in one
/// subvolume.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DamagedFile {
    /// The subvolume id (5 for the top level).
    pub subvolume_id: u64,
    /// The subvolume's path from the top level (empty for the top level); `None` when it
    /// cannot be resolved (e.g. deleted, not yet cleaned up).
    pub subvolume_path: Option<PathBuf>,
    /// The inode number.
    pub inode: u64,
    /// Byte offsets in the file where the addresses are mapped, ascending.
    pub offsets: Vec<u64>,
    /// The file's paths (every hard link): absolute when `reachable`, else relative to the
    /// subvolume's root. Empty when no path could be found.
    pub paths: Vec<PathBuf>,
    /// Whether the subvolume is reachable below this handle's mount (then `paths` are
    /// absolute and can be opened).
    pub reachable: bool,
}

impl Filesystem {
    /// Every (subvolume, inode, file offset) that references logical address `logical`; empty
    /// when no data extent holds it (free space, or a tree block). Needs CAP_SYS_ADMIN.
    pub fn inodes_at_logical(&self, logical: u64) -> Result<Vec<InodeRef>> {
        const OP: &str = "logical to inode";
        let mut size = FIRST_BUFFER;
        loop {
            let container = match ioctl::logical_ino_v2(self.fd(), logical, size) {
                Ok(c) => c,
                Err(Errno::NOENT) => return Ok(Vec::new()),
                Err(errno) => return Err(self.err(OP, errno)),
            };
            let missed = container.bytes_missing > 0 || container.elem_missed > 0;
            if missed && size < MAX_BUFFER {
                size = (size + container.bytes_missing as usize + 4096).min(MAX_BUFFER);
                continue;
            }
            let mut refs: Vec<InodeRef> = container
                .values()
                .chunks_exact(3)
                .map(|t| InodeRef {
                    inode: t[0],
                    offset: t[1],
                    root: t[2],
                })
                .collect();
            refs.sort_unstable();
            refs.dedup();
            return Ok(refs);
        }
    }

    /// The files that hold logical address `logical`, once per subvolume, with their paths.
    pub fn files_at_logical(&self, logical: u64) -> Result<Vec<DamagedFile>> {
        FileResolver::new(self).resolve(&self.inodes_at_logical(logical)?)
    }

    /// Every path (hard link) of inode `inode` in the subvolume holding this handle's path,
    /// relative to that subvolume's root (`BTRFS_IOC_INO_PATHS`, CAP_SYS_ADMIN).
    pub fn inode_paths(&self, inode: u64) -> Result<Vec<PathBuf>> {
        ino_paths(self.fd(), inode).map_err(|e| self.err("inode paths", e))
    }
}

fn ino_paths(
    fd: std::os::fd::BorrowedFd<'_>,
    inode: u64,
) -> std::result::Result<Vec<PathBuf>, Errno> {
    let container = ioctl::ino_paths(fd, inode, PATHS_BUFFER)?;
    Ok(container
        .strings()
        .into_iter()
        .map(|p| PathBuf::from(OsStr::from_bytes(&p)))
        .collect())
}

/// Where a subvolume is, as seen from this handle.
enum Place {
    /// Its root directory, opened, below the mount.
    Open(PathBuf, File),
    /// Not reachable below the mount.
    Elsewhere,
}

/// Resolves inode references to files, caching each subvolume's location.
pub(crate) struct FileResolver<'a> {
    fs: &'a Filesystem,
    /// The root directory of the subvolume this handle is in, and that subvolume's path from
    /// the top level (`None` when it could not be found).
    base: Option<(PathBuf, PathBuf)>,
    places: BTreeMap<u64, (Option<PathBuf>, Place)>,
}

impl<'a> FileResolver<'a> {
    pub(crate) fn new(fs: &'a Filesystem) -> Self {
        let base = containing_root("resolve files", fs.path())
            .ok()
            .and_then(|(root_dir, _)| {
                let id = crate::subvolume::subvolume_id(&root_dir).ok()?;
                let top = if id == TOP_LEVEL_ID {
                    PathBuf::new()
                } else {
                    top_path(fs, id).ok()?
                };
                Some((root_dir, top))
            });
        FileResolver {
            fs,
            base,
            places: BTreeMap::new(),
        }
    }

    /// Groups `refs` by (subvolume, inode) and names each file.
    pub(crate) fn resolve(&mut self, refs: &[InodeRef]) -> Result<Vec<DamagedFile>> {
        let mut files: BTreeMap<(u64, u64), Vec<u64>> = BTreeMap::new();
        for r in refs {
            files.entry((r.root, r.inode)).or_default().push(r.offset);
        }
        let mut out = Vec::with_capacity(files.len());
        for ((root, inode), mut offsets) in files {
            offsets.sort_unstable();
            offsets.dedup();
            let (subvolume_path, reachable, paths) = self.paths_of(root, inode)?;
            out.push(DamagedFile {
                subvolume_id: root,
                subvolume_path,
                inode,
                offsets,
                paths,
                reachable,
            });
        }
        Ok(out)
    }

    fn paths_of(&mut self, root: u64, inode: u64) -> Result<(Option<PathBuf>, bool, Vec<PathBuf>)> {
        if !self.places.contains_key(&root) {
            let place = self.locate(root);
            self.places.insert(root, place);
        }
        let (subvolume_path, place) = &self.places[&root];
        match place {
            Place::Open(dir, file) => {
                let rel = ino_paths(file.as_fd(), inode)
                    .map_err(|e| Error::from_errno("inode paths", dir, e))?;
                Ok((
                    subvolume_path.clone(),
                    true,
                    rel.iter().map(|p| dir.join(p)).collect(),
                ))
            }
            Place::Elsewhere => {
                // One path through the privileged lookup (no fd in that subvolume needed).
                let paths = match ioctl::ino_lookup(self.fs.fd(), root, inode) {
                    Ok((_, p)) => {
                        let p = p.strip_suffix(b"/").unwrap_or(&p).to_vec();
                        vec![PathBuf::from(OsStr::from_bytes(&p))]
                    }
                    Err(Errno::NOENT) => Vec::new(),
                    Err(e) => return Err(self.fs.err("inode path lookup", e)),
                };
                Ok((subvolume_path.clone(), false, paths))
            }
        }
    }

    /// Finds subvolume `root` below the mount: its path from the top level, made relative to
    /// the subvolume this handle is in, opened and checked to be that subvolume.
    fn locate(&self, root: u64) -> (Option<PathBuf>, Place) {
        let top = if root == TOP_LEVEL_ID {
            Some(PathBuf::new())
        } else {
            top_path(self.fs, root).ok()
        };
        let place = (|| {
            let (base_dir, base_top) = self.base.as_ref()?;
            let rel = top.as_ref()?.strip_prefix(base_top).ok()?;
            let dir = if rel.as_os_str().is_empty() {
                base_dir.clone()
            } else {
                base_dir.join(rel)
            };
            let file = File::open(&dir).ok()?;
            let meta = file.metadata().ok()?;
            let same = meta.is_dir()
                && meta.ino() == crate::subvolume::ROOT_DIR_INO
                && crate::subvolume::subvolume_id(&dir).ok()? == root;
            same.then_some(Place::Open(dir, file))
        })()
        .unwrap_or(Place::Elsewhere);
        (top, place)
    }
}
