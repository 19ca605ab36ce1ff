//! What Docker's btrfs driver keeps under a data root, read independently of Docker: the layer
//! subvolumes under `btrfs/subvolumes/` and the references to them in the layer store.
//!
//! * image layers: `image/btrfs/layerdb/sha256/<chain id>/cache-id`;
//! * container layers: `image/btrfs/layerdb/mounts/<container id>/mount-id` and `init-id`;
//! * layers Docker is deleting: `image/btrfs/layerdb/sha256/<chain id>-<random>-removing/cache-id`
//!   (it renames the directory before removing the subvolume, and removes such leftovers itself
//!   at its next shutdown).
//!
//! The files hold the subvolume's name without a newline (an empty `mount-id` is what a failed
//! `docker run` on a full filesystem leaves). A subvolume nothing references is an orphan:
//! Docker will never use or remove it. [`expected_orphans`] is the expectation the operator
//! tool's orphan check must meet on the same data root.

use btrfs_kit::subvolume::Entry;
use btrfs_kit::Filesystem;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use testkit::harness::Failed;

/// The layer subvolumes and the layer store's references of one data root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Subvolumes directly under `btrfs/subvolumes/`: name → subvolume id.
    pub subvolumes: BTreeMap<String, u64>,
    /// The `cache-id` of every image layer.
    pub image_layers: BTreeSet<String>,
    /// The `mount-id` and `init-id` of every container.
    pub container_layers: BTreeSet<String>,
    /// The `cache-id` of layers Docker is deleting (`*-removing` directories).
    pub being_removed: BTreeSet<String>,
}

/// `<data-root>/btrfs/subvolumes`.
pub fn subvolumes_dir(data_root: &Path) -> PathBuf {
    data_root.join("btrfs/subvolumes")
}

fn layerdb(data_root: &Path) -> PathBuf {
    data_root.join("image/btrfs/layerdb")
}

impl Layout {
    /// Reads the layer store and lists the subvolumes with our library.
    pub fn read(data_root: &Path) -> Result<Self, Failed> {
        Self::with_subvolumes(data_root, our_listing(data_root)?)
    }

    /// Reads the layer store; the subvolumes come from the caller (e.g. btrfs-progs' listing).
    pub fn with_subvolumes(
        data_root: &Path,
        subvolumes: BTreeMap<String, u64>,
    ) -> Result<Self, Failed> {
        let mut layout = Layout {
            subvolumes,
            image_layers: BTreeSet::new(),
            container_layers: BTreeSet::new(),
            being_removed: BTreeSet::new(),
        };
        let db = layerdb(data_root);
        for dir in read_dirs(&db.join("sha256"))? {
            let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let set = if name.ends_with("-removing") {
                &mut layout.being_removed
            } else {
                &mut layout.image_layers
            };
            set.extend(reference(&dir.join("cache-id"))?);
        }
        for dir in read_dirs(&db.join("mounts"))? {
            for file in ["mount-id", "init-id"] {
                layout.container_layers.extend(reference(&dir.join(file))?);
            }
        }
        Ok(layout)
    }

    /// Every name the layer store references (live or being removed).
    pub fn referenced(&self) -> BTreeSet<String> {
        self.image_layers
            .iter()
            .chain(&self.container_layers)
            .chain(&self.being_removed)
            .cloned()
            .collect()
    }

    /// Subvolumes nothing references.
    pub fn orphans(&self) -> BTreeSet<String> {
        let referenced = self.referenced();
        self.subvolumes
            .keys()
            .filter(|n| !referenced.contains(*n))
            .cloned()
            .collect()
    }

    /// References naming no subvolume (e.g. a `mount-id` whose subvolume was deleted when the
    /// daemon died before it removed the container's records).
    pub fn dangling(&self) -> BTreeSet<String> {
        self.referenced()
            .into_iter()
            .filter(|n| !self.subvolumes.contains_key(n))
            .collect()
    }
}

/// The orphan subvolumes of `data_root`: names under `btrfs/subvolumes/` that no `cache-id`,
/// `mount-id` or `init-id` references. What the operator tool's orphan check must report there,
/// no more and no less.
pub fn expected_orphans(data_root: &Path) -> Result<BTreeSet<String>, Failed> {
    Ok(Layout::read(data_root)?.orphans())
}

/// Our library's listing of the subvolumes directly under `btrfs/subvolumes/`: name → id.
/// (Subvolumes a container made inside its layer sit deeper and are not layers.)
pub fn our_listing(data_root: &Path) -> Result<BTreeMap<String, u64>, Failed> {
    let dir = subvolumes_dir(data_root);
    let fs = Filesystem::open(&dir)?;
    let mut out = BTreeMap::new();
    for entry in fs.subvolumes().iter()? {
        match entry? {
            Entry::Subvolume(s) if s.depth == 1 => {
                out.insert(s.path.to_string_lossy().into_owned(), s.info.id);
            }
            Entry::Subvolume(_) => {}
            Entry::Unreachable(u) => {
                return Err(
                    format!("subvolume {} under {}: {}", u.id, dir.display(), u.reason).into(),
                )
            }
        }
    }
    Ok(out)
}

/// The subdirectories of `dir` (none if it does not exist yet).
fn read_dirs(dir: &Path) -> Result<Vec<PathBuf>, Failed> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", dir.display()).into()),
        Ok(entries) => {
            let mut out = Vec::new();
            for e in entries {
                let e = e?;
                if e.file_type()?.is_dir() {
                    out.push(e.path());
                }
            }
            out.sort();
            Ok(out)
        }
    }
}

/// The name a reference file holds; `None` if it is missing or empty.
fn reference(file: &Path) -> Result<Option<String>, Failed> {
    match std::fs::read_to_string(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", file.display()).into()),
        Ok(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
    }
}
