//! Docker's btrfs layout under the data root, and which layer subvolumes nothing references.
//!
//! As moby's btrfs graph driver and layer store write it (the same rules moby applies when it
//! loads them, `daemon/internal/layer/filestore.go`):
//!
//! * `btrfs/subvolumes/<id>`: one subvolume per layer; a container has `<id>` and `<id>-init`;
//! * `image/btrfs/layerdb/sha256/<chain-id>/cache-id`: the subvolume of an image layer (a
//!   directory named by a 64-hex digest; the file has no trailing newline, whitespace is
//!   trimmed, empty is invalid);
//! * `image/btrfs/layerdb/sha256/<chain-id>-<random>-removing/`: a layer Docker was deleting;
//!   its cache-id subvolume is removed by Docker itself at its next clean shutdown;
//! * `image/btrfs/layerdb/mounts/<container>/mount-id` and `init-id`: a container's read-write
//!   and init layers (64 hex digits, `init-id` with `-init`; moby skips a mount whose mount-id is
//!   invalid, e.g. empty after a `docker run` that failed on a full disk).
//!
//! An **orphan** is a subvolume under `btrfs/subvolumes/` that no loadable reference names:
//! Docker will never use or delete it, and `docker system prune` cannot free it.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where the graph driver keeps its subvolumes, below the data root.
pub const SUBVOLUMES_DIR: &str = "btrfs/subvolumes";
/// Where the layer store keeps its metadata, below the data root.
pub const LAYERDB_DIR: &str = "image/btrfs/layerdb";

/// Who references a layer subvolume.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reference {
    /// An image layer, by chain id (`layerdb/sha256/<chain-id>/cache-id`).
    ImageLayer {
        /// The chain id (hex).
        chain_id: String,
    },
    /// A container's read-write layer (`layerdb/mounts/<container>/mount-id`).
    ContainerLayer {
        /// The container id.
        container: String,
    },
    /// A container's init layer (`layerdb/mounts/<container>/init-id`).
    InitLayer {
        /// The container id.
        container: String,
    },
    /// An image layer Docker was removing (`layerdb/sha256/<chain-id>-…-removing/cache-id`).
    PendingRemoval {
        /// The directory name.
        entry: String,
    },
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::ImageLayer { chain_id } => write!(f, "image layer sha256:{chain_id}"),
            Reference::ContainerLayer { container } => write!(f, "container {container}"),
            Reference::InitLayer { container } => write!(f, "init layer of container {container}"),
            Reference::PendingRemoval { entry } => write!(f, "layer being removed ({entry})"),
        }
    }
}

/// A reference file Docker would not load, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unloadable {
    /// The file (or directory).
    pub path: PathBuf,
    /// Why moby skips it.
    pub reason: String,
}

/// The references found in the layer store.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct References {
    /// Live references by subvolume name.
    pub live: BTreeMap<String, Vec<Reference>>,
    /// Subvolumes referenced only by layers being removed.
    pub removing: BTreeMap<String, Vec<Reference>>,
    /// Reference files Docker skips.
    pub unloadable: Vec<Unloadable>,
}

/// The analysis of one data root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerReport {
    /// Whether `btrfs/subvolumes` exists (no: Docker has not run with the btrfs driver here).
    pub driver_dir: bool,
    /// Entries under `btrfs/subvolumes`.
    pub subvolumes: usize,
    /// Subvolumes nothing loadable references, by name.
    pub orphans: Vec<String>,
    /// Subvolumes Docker itself will remove at its next clean shutdown.
    pub pending_removal: Vec<String>,
    /// References whose subvolume does not exist: (subvolume name, who needs it).
    pub missing: Vec<(String, Reference)>,
    /// Reference files Docker skips (their subvolumes count as orphans).
    pub unloadable: Vec<Unloadable>,
}

/// moby's `isValidID`: 64 lower-case hex digits, optionally followed by `-init`.
pub fn is_valid_id(id: &str) -> bool {
    let id = id.strip_suffix("-init").unwrap_or(id);
    is_hex64(id)
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Reads a reference file as moby does: trimmed; `None` with the reason when unusable.
fn read_id(path: &Path, strict: bool) -> Result<Option<String>, String> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            if text.is_empty() {
                Err("empty".into())
            } else if strict && !is_valid_id(&text) {
                Err(format!("{text:?} is not a valid layer id"))
            } else {
                Ok(Some(text))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn entries(dir: &Path) -> std::io::Result<Vec<(String, bool)>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| {
                let e = e?;
                let is_dir = e.file_type()?.is_dir();
                Ok((e.file_name().to_string_lossy().into_owned(), is_dir))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Reads every reference in `data_root`'s layer store.
pub fn references(data_root: &Path) -> std::io::Result<References> {
    let layerdb = data_root.join(LAYERDB_DIR);
    let mut refs = References::default();
    let sha256 = layerdb.join("sha256");
    for (name, is_dir) in entries(&sha256)? {
        if !is_dir {
            continue;
        }
        let removing = name.ends_with("-removing");
        let digest = name.split('-').next().unwrap_or("");
        if !is_hex64(digest) || (!removing && digest != name) {
            // moby ignores directories that are not digests.
            continue;
        }
        let file = sha256.join(&name).join("cache-id");
        match read_id(&file, false) {
            Ok(Some(id)) if removing => refs
                .removing
                .entry(id)
                .or_default()
                .push(Reference::PendingRemoval { entry: name }),
            Ok(Some(id)) => refs
                .live
                .entry(id)
                .or_default()
                .push(Reference::ImageLayer { chain_id: name }),
            Ok(None) if removing => {}
            Ok(None) => refs.unloadable.push(Unloadable {
                path: file,
                reason: "missing".into(),
            }),
            Err(reason) => refs.unloadable.push(Unloadable { path: file, reason }),
        }
    }
    let mounts = layerdb.join("mounts");
    for (container, is_dir) in entries(&mounts)? {
        if !is_dir {
            continue;
        }
        let dir = mounts.join(&container);
        let mount_file = dir.join("mount-id");
        let mount_id = match read_id(&mount_file, true) {
            Ok(Some(id)) => id,
            Ok(None) => {
                refs.unloadable.push(Unloadable {
                    path: mount_file,
                    reason: "missing".into(),
                });
                continue;
            }
            Err(reason) => {
                refs.unloadable.push(Unloadable {
                    path: mount_file,
                    reason,
                });
                continue;
            }
        };
        let init_file = dir.join("init-id");
        match read_id(&init_file, true) {
            Ok(Some(init)) => refs
                .live
                .entry(init)
                .or_default()
                .push(Reference::InitLayer {
                    container: container.clone(),
                }),
            Ok(None) => {}
            // moby fails the whole mount on a bad init-id: its layers are unreferenced.
            Err(reason) => {
                refs.unloadable.push(Unloadable {
                    path: init_file,
                    reason,
                });
                continue;
            }
        }
        refs.live
            .entry(mount_id)
            .or_default()
            .push(Reference::ContainerLayer { container });
    }
    Ok(refs)
}

/// The names under `btrfs/subvolumes`, or `None` when the directory does not exist.
pub fn subvolume_names(data_root: &Path) -> std::io::Result<Option<BTreeSet<String>>> {
    match std::fs::read_dir(data_root.join(SUBVOLUMES_DIR)) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<BTreeSet<String>>>()
            .map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Compares the subvolumes with the references.
pub fn analyse(data_root: &Path) -> std::io::Result<LayerReport> {
    let names = subvolume_names(data_root)?;
    let refs = references(data_root)?;
    let driver_dir = names.is_some();
    let names = names.unwrap_or_default();
    let orphans = names
        .iter()
        .filter(|n| !refs.live.contains_key(*n) && !refs.removing.contains_key(*n))
        .cloned()
        .collect();
    let pending_removal = names
        .iter()
        .filter(|n| !refs.live.contains_key(*n) && refs.removing.contains_key(*n))
        .cloned()
        .collect();
    let missing = refs
        .live
        .iter()
        .filter(|(id, _)| !names.contains(*id))
        .flat_map(|(id, who)| who.iter().map(move |r| (id.clone(), r.clone())))
        .collect();
    Ok(LayerReport {
        driver_dir,
        subvolumes: names.len(),
        orphans,
        pending_removal,
        missing,
        unloadable: refs.unloadable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layer id like moby's (64 hex digits) from a small number.
    pub fn id(n: u32) -> String {
        format!("{n:064x}")
    }

    /// Writes `content` to `root/rel` like moby (no trailing newline).
    pub fn put(root: &Path, rel: &str, content: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn finds_orphans_missing_layers_and_what_docker_skips() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Subvolumes (plain directories are enough for the analysis).
        for name in [
            id(1),
            id(2),
            id(3),
            format!("{}-init", id(3)),
            id(7),
            id(8),
            id(9),
            format!("{}-init", id(9)),
            id(10),
        ] {
            std::fs::create_dir_all(root.join(SUBVOLUMES_DIR).join(name)).unwrap();
        }
        let db = LAYERDB_DIR;
        // Two image layers; one whose subvolume is gone.
        put(root, &format!("{db}/sha256/{}/cache-id", id(101)), &id(1));
        put(root, &format!("{db}/sha256/{}/cache-id", id(102)), &id(2));
        put(root, &format!("{db}/sha256/{}/cache-id", id(103)), &id(4));
        // A container with its init layer.
        put(root, &format!("{db}/mounts/{}/mount-id", id(201)), &id(3));
        put(
            root,
            &format!("{db}/mounts/{}/init-id", id(201)),
            &format!("{}-init", id(3)),
        );
        // A layer being removed.
        put(
            root,
            &format!("{db}/sha256/{}-{}-removing/cache-id", id(104), id(999)),
            &id(7),
        );
        // A failed `docker run` on a full disk: empty mount-id, its subvolumes orphaned.
        put(root, &format!("{db}/mounts/{}/mount-id", id(202)), "");
        put(
            root,
            &format!("{db}/mounts/{}/init-id", id(202)),
            &format!("{}-init", id(9)),
        );
        // Not a digest: moby ignores the directory.
        put(root, &format!("{db}/sha256/not-a-digest/cache-id"), &id(8));
        // A trailing newline is trimmed, as moby does.
        put(
            root,
            &format!("{db}/sha256/{}/cache-id", id(105)),
            &format!("{}\n", id(10)),
        );

        let r = analyse(root).unwrap();
        assert!(r.driver_dir);
        assert_eq!(r.subvolumes, 9);
        assert_eq!(r.orphans, [id(8), id(9), format!("{}-init", id(9))]);
        assert_eq!(r.pending_removal, [id(7)]);
        assert_eq!(
            r.missing,
            [(id(4), Reference::ImageLayer { chain_id: id(103) })]
        );
        assert_eq!(r.unloadable.len(), 1);
        assert!(r.unloadable[0].path.ends_with("mount-id") && r.unloadable[0].reason == "empty");
    }

    #[test]
    fn an_unused_data_root_has_no_driver_directory() {
        let dir = tempfile::tempdir().unwrap();
        let r = analyse(dir.path()).unwrap();
        assert!(!r.driver_dir && r.orphans.is_empty() && r.missing.is_empty());
    }

    #[test]
    fn ids_follow_moby() {
        assert!(is_valid_id(&id(5)));
        assert!(is_valid_id(&format!("{}-init", id(5))));
        assert!(!is_valid_id(&id(5).to_uppercase().replace('0', "A")));
        assert!(!is_valid_id("abc"));
        assert!(!is_valid_id(""));
    }
}
