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
//! `docker run` on a full filesystem leaves). A mount record counts only as moby loads it (a
//! non-empty mount-id, and a `parent` that is a digest when present) and only while its
//! container exists (`containers/<id>/config.v2.json`, what the daemon restores): the record of
//! a container that is gone is never released by Docker.
//!
//! A subvolume named like a layer (64 hex digits, maybe `-init`) that nothing live references
//! is an orphan: Docker will never use or remove it. [`expected_orphans`] is the expectation the
//! operator tool's orphan check must meet on the same data root.

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
    /// The `mount-id` and `init-id` of records whose container is gone.
    pub stale_layers: BTreeSet<String>,
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
            stale_layers: BTreeSet::new(),
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
            let Some(mount) = reference(&dir.join("mount-id"))? else {
                continue;
            };
            let parent = std::fs::read_to_string(dir.join("parent")).ok();
            if parent.is_some_and(|p| !is_sha256_digest(p.trim())) {
                continue;
            }
            let container = dir.file_name().unwrap_or_default();
            let live = data_root
                .join("containers")
                .join(container)
                .join("config.v2.json")
                .is_file();
            let set = if live {
                &mut layout.container_layers
            } else {
                &mut layout.stale_layers
            };
            set.insert(mount);
            set.extend(reference(&dir.join("init-id"))?);
        }
        Ok(layout)
    }

    /// Every name the layer store references (live or being removed; not stale records).
    pub fn referenced(&self) -> BTreeSet<String> {
        self.image_layers
            .iter()
            .chain(&self.container_layers)
            .chain(&self.being_removed)
            .cloned()
            .collect()
    }

    /// Subvolumes named like layers that nothing live references.
    pub fn orphans(&self) -> BTreeSet<String> {
        let referenced = self.referenced();
        self.subvolumes
            .keys()
            .filter(|n| !referenced.contains(*n) && is_layer_name(n))
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

/// The orphan subvolumes of `data_root`: layer names under `btrfs/subvolumes/` that no
/// `cache-id`, and no `mount-id` or `init-id` of an existing container, references. What the
/// operator tool's orphan check must report there, no more and no less.
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

/// Whether `name` is a layer-store layer's name: 64 lower-case hex digits, maybe `-init`.
fn is_layer_name(name: &str) -> bool {
    is_hex(name.strip_suffix("-init").unwrap_or(name), 64)
}

/// `sha256:` and 64 lower-case hex digits.
fn is_sha256_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|h| is_hex(h, 64))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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
