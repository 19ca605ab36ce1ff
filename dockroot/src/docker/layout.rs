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
//!   and init layers (64 hex digits, `init-id` with `-init`), and `parent`, the chain id of the
//!   image layer below (`sha256:<hex>`). moby loads a mount only when its mount-id is valid and
//!   its init-id and parent, if present, are valid too (`loadMount` in `layer_store.go`); it
//!   skips any other mount, so neither of its layers is referenced. moby writes the three files
//!   one after the other, not atomically: a `docker run` that fails on a full disk leaves an
//!   empty mount-id, or an empty parent after two good files.
//!
//! A mount record is named after its container, and the daemon restores a container from
//! `containers/<id>/config.v2.json`: a record whose container is gone is **stale**. Docker never
//! releases it (seen: a SIGKILL of dockerd during `docker rm`, then a second `docker rm -f`
//! that removes the container but fails to release its half-deleted layer), so its layers are
//! garbage, and it keeps the image layer below it referenced.
//!
//! An **orphan** is a subvolume under `btrfs/subvolumes/` named like a layer-store layer (64
//! hex digits, maybe `-init`) that no loadable reference names, or that only a stale record
//! names: Docker will never use or delete it, and `docker system prune` cannot free it.
//! Entries named otherwise are not the layer store's: BuildKit's build cache creates graph
//! driver subvolumes named by its own ids (25 characters) and keeps them in
//! `buildkit/snapshots.db`. Those are **foreign**: counted, never judged, never deleted.

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

/// A mount record whose container does not exist (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleMount {
    /// The record's directory, `layerdb/mounts/<name>`.
    pub dir: PathBuf,
    /// The subvolumes it names (its read-write layer, and its init layer if any).
    pub layers: Vec<String>,
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
    /// Loadable mount records whose container is gone.
    pub stale: Vec<StaleMount>,
}

/// The analysis of one data root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerReport {
    /// Whether `btrfs/subvolumes` exists (no: Docker has not run with the btrfs driver here).
    pub driver_dir: bool,
    /// Entries under `btrfs/subvolumes`.
    pub subvolumes: usize,
    /// Subvolumes named like layers that nothing loadable references, or only a stale mount
    /// record, by name.
    pub orphans: Vec<String>,
    /// Subvolumes not named like layer-store layers that nothing references (BuildKit's build
    /// cache, or not Docker's): left alone.
    pub foreign: Vec<String>,
    /// Mount records whose container is gone.
    pub stale_mounts: Vec<StaleMount>,
    /// Subvolumes Docker itself will remove at its next clean shutdown.
    pub pending_removal: Vec<String>,
    /// Live references whose subvolume does not exist: (subvolume name, who needs it).
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
        let init = match read_id(&init_file, true) {
            Ok(init) => init,
            // moby fails the whole mount on a bad init-id: its layers are unreferenced.
            Err(reason) => {
                refs.unloadable.push(Unloadable {
                    path: init_file,
                    reason,
                });
                continue;
            }
        };
        let parent_file = dir.join("parent");
        match std::fs::read(&parent_file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                refs.unloadable.push(Unloadable {
                    path: parent_file,
                    reason: e.to_string(),
                });
                continue;
            }
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).trim().to_string();
                if !is_digest(&text) {
                    // moby fails the whole mount on a parent that does not parse.
                    let reason = if text.is_empty() {
                        "empty".to_string()
                    } else {
                        format!("{text:?} is not a digest")
                    };
                    refs.unloadable.push(Unloadable {
                        path: parent_file,
                        reason,
                    });
                    continue;
                }
            }
        }
        if !container_exists(data_root, &container) {
            refs.stale.push(StaleMount {
                dir,
                layers: std::iter::once(mount_id).chain(init).collect(),
            });
            continue;
        }
        if let Some(init) = init {
            refs.live
                .entry(init)
                .or_default()
                .push(Reference::InitLayer {
                    container: container.clone(),
                });
        }
        refs.live
            .entry(mount_id)
            .or_default()
            .push(Reference::ContainerLayer { container });
    }
    Ok(refs)
}

/// Whether the daemon has a container `id` to restore: `containers/<id>/config.v2.json`.
fn container_exists(data_root: &Path, id: &str) -> bool {
    data_root
        .join("containers")
        .join(id)
        .join("config.v2.json")
        .is_file()
}

/// A digest as moby's `digest.Parse` accepts it for the layer store: `sha256:` and 64 hex
/// digits (or sha384/sha512 with 96/128), lower case.
fn is_digest(text: &str) -> bool {
    let Some((algorithm, hex)) = text.split_once(':') else {
        return false;
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
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
    let in_stale: BTreeSet<&String> = refs.stale.iter().flat_map(|m| &m.layers).collect();
    let (orphans, foreign): (Vec<String>, Vec<String>) = names
        .iter()
        .filter(|n| !refs.live.contains_key(*n) && !refs.removing.contains_key(*n))
        .cloned()
        .partition(|n| is_valid_id(n) || in_stale.contains(n));
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
        foreign,
        stale_mounts: refs.stale,
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
            id(11),
            format!("{}-init", id(11)),
            format!("{}-init", id(12)),
            // BuildKit's build cache: not named like a layer, not the layer store's.
            "ulzs4d6o7y8i4p3uq0nnf5e9o".to_string(),
        ] {
            std::fs::create_dir_all(root.join(SUBVOLUMES_DIR).join(name)).unwrap();
        }
        let db = LAYERDB_DIR;
        // Two image layers; one whose subvolume is gone.
        put(root, &format!("{db}/sha256/{}/cache-id", id(101)), &id(1));
        put(root, &format!("{db}/sha256/{}/cache-id", id(102)), &id(2));
        put(root, &format!("{db}/sha256/{}/cache-id", id(103)), &id(4));
        // A container with its init layer (and the container the daemon restores).
        put(
            root,
            &format!("containers/{}/config.v2.json", id(201)),
            "{}",
        );
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
        // Full disk after two good files: an empty parent, the whole mount skipped.
        put(root, &format!("{db}/mounts/{}/mount-id", id(203)), &id(11));
        put(
            root,
            &format!("{db}/mounts/{}/init-id", id(203)),
            &format!("{}-init", id(11)),
        );
        put(root, &format!("{db}/mounts/{}/parent", id(203)), "");
        // A good parent keeps the mount.
        put(
            root,
            &format!("{db}/mounts/{}/parent", id(201)),
            &format!("sha256:{}", id(101)),
        );
        // A stale record (its container is gone): its init layer is an orphan, its missing
        // read-write layer is not a missing layer.
        put(root, &format!("{db}/mounts/{}/mount-id", id(204)), &id(12));
        put(
            root,
            &format!("{db}/mounts/{}/init-id", id(204)),
            &format!("{}-init", id(12)),
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
        assert_eq!(r.subvolumes, 13);
        assert_eq!(
            r.orphans,
            [
                id(8),
                id(9),
                format!("{}-init", id(9)),
                id(11),
                format!("{}-init", id(11)),
                format!("{}-init", id(12)),
            ]
        );
        assert_eq!(r.foreign, ["ulzs4d6o7y8i4p3uq0nnf5e9o"]);
        assert_eq!(r.stale_mounts.len(), 1);
        assert_eq!(
            r.stale_mounts[0].layers,
            [id(12), format!("{}-init", id(12))]
        );
        assert_eq!(r.pending_removal, [id(7)]);
        assert_eq!(
            r.missing,
            [(id(4), Reference::ImageLayer { chain_id: id(103) })]
        );
        assert_eq!(r.unloadable.len(), 2);
        assert!(r
            .unloadable
            .iter()
            .any(|u| u.path.ends_with("mount-id") && u.reason == "empty"));
        assert!(r
            .unloadable
            .iter()
            .any(|u| u.path.ends_with("parent") && u.reason == "empty"));
    }

    #[test]
    fn an_unused_data_root_has_no_driver_directory() {
        let dir = tempfile::tempdir().unwrap();
        let r = analyse(dir.path()).unwrap();
        assert!(!r.driver_dir && r.orphans.is_empty() && r.missing.is_empty());
        assert!(r.foreign.is_empty() && r.stale_mounts.is_empty());
    }

    #[test]
    fn ids_follow_moby() {
        assert!(is_valid_id(&id(5)));
        assert!(is_valid_id(&format!("{}-init", id(5))));
        assert!(is_digest(&format!("sha256:{}", id(5))));
        assert!(!is_digest(&id(5)) && !is_digest("sha256:abc") && !is_digest(""));
        assert!(!is_valid_id(&id(5).to_uppercase().replace('0', "A")));
        assert!(!is_valid_id("abc"));
        assert!(!is_valid_id(""));
    }
}
