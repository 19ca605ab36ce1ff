//! The [`LayerMap`] of containerd's image store with its btrfs snapshotter (Docker with
//! `containerd-snapshotter`), from containerd's two databases:
//!
//! * the snapshotter's `metadata.db`: each snapshot's backend key, kind and subvolume id
//!   ([`snapshotter::records`]), so `snapshots/<id>`, `active/<id>`, `view/<id>`;
//! * containerd's `meta.db`: per namespace the snapshot keys and parents, the images (their
//!   target digest, Docker's image id, and through the content labels their top snapshot, the
//!   layers below it by parent) and the containers' snapshots (moby holds a container's
//!   `<id>` and `<id>-init` snapshots by a lease named by the container id) —
//!   [`meta::owners`] decides who owns each subvolume, as doctor's orphan check does.
//!
//! While containerd runs it holds both files' locks; they are then read from point-in-time
//! reflink copies ([`Db::open_or_copy`]), and the report says so.

use super::graphdriver::container_info;
use super::{Container, Image, Layer, LayerMap, Role, Store};
use crate::docker::containerd::bolt::{BoltError, Db, ReadFrom};
use crate::docker::containerd::meta::{self, Namespace, Owner, MOBY_NAMESPACE};
use crate::docker::containerd::snapshotter::{self, LayoutError, Record, METADATA_DB};
use crate::docker::containerd::BTRFS;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Why containerd's store could not be mapped.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// One of the databases.
    #[error(transparent)]
    Bolt(#[from] BoltError),
    /// The snapshotter's directories.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// The layer map, and how the databases were read (the snapshotter's, then meta.db).
#[derive(Debug, Clone)]
pub struct ContainerdMap {
    /// The map.
    pub map: LayerMap,
    /// How each database was read: (file, how).
    pub read: Vec<(PathBuf, ReadFrom)>,
}

/// A subvolume's name in the map: its path below the snapshotter root (`snapshots/12`).
fn name_of(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The keys from `key` down to the bottom layer (parents), stopping at a cycle; bottom first.
fn bottom_up<'a>(ns: &'a Namespace, key: &'a str) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    let mut next = Some(key);
    while let Some(k) = next {
        if out.contains(&k) {
            break;
        }
        out.push(k);
        next = ns.snapshots.get(k).and_then(|s| s.parent.as_deref());
    }
    out.reverse();
    out
}

/// A normalised image name as `docker images` shows it (the distribution reference's
/// "familiar" form): `docker.io/library/busybox:1` is `busybox:1`, `docker.io/me/app:2`
/// is `me/app:2`; other registries stay.
fn familiar(name: &str) -> &str {
    name.strip_prefix("docker.io/library/")
        .filter(|rest| !rest.contains('/'))
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name)
}

/// An image's display name in a namespace: Docker's own (`moby`) in the familiar form
/// Docker shows, others prefixed with their namespace (`k8s.io/…`); moby's placeholder names
/// of dangling images are no tags.
fn tag(ns: &str, name: &str) -> Option<String> {
    if name.starts_with("moby-dangling@") {
        None
    } else if ns == MOBY_NAMESPACE {
        Some(familiar(name).to_string())
    } else {
        Some(format!("{ns}/{name}"))
    }
}

/// Maps the snapshotter at `root` (its `metadata.db` and subvolumes) with containerd's
/// `meta_db`; `data_root` (Docker's) gives the containers' names and images.
pub fn layer_map(root: &Path, meta_db: &Path, data_root: &Path) -> Result<ContainerdMap, MapError> {
    let snap_db_path = root.join(METADATA_DB);
    let (snap_db, snap_read) = Db::open_or_copy(&snap_db_path)?;
    let records = snapshotter::records(&snap_db)?;
    let (meta, meta_read) = Db::open_or_copy(meta_db)?;
    let namespaces = meta::all_namespaces(&meta, BTRFS)?;
    let paths: Vec<PathBuf> = snapshotter::entries(root)?
        .iter()
        .map(snapshotter::Entry::path)
        .collect();
    let owners = meta::owners(&paths, &records, &namespaces);
    let map = build(root, data_root, &records, &namespaces, &owners);
    Ok(ContainerdMap {
        map,
        read: vec![(snap_db_path, snap_read), (meta_db.into(), meta_read)],
    })
}

/// An image being gathered from its names: its tags, its top snapshot keys, its namespace.
type Gathered<'a> = (Vec<String>, BTreeSet<&'a str>, &'a Namespace);

/// The map from what was read (pure: unit-tested).
fn build(
    root: &Path,
    data_root: &Path,
    records: &[Record],
    namespaces: &[Namespace],
    owners: &BTreeMap<PathBuf, Owner>,
) -> LayerMap {
    // Image name → image id (its target digest), per namespace.
    let ids: BTreeMap<(&str, &str), &str> = namespaces
        .iter()
        .flat_map(|ns| {
            ns.targets
                .iter()
                .map(move |(n, d)| ((ns.name.as_str(), n.as_str()), d.as_str()))
        })
        .collect();
    let mut layers: BTreeMap<String, Layer> = BTreeMap::new();
    let mut containers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, owner) in owners {
        let name = name_of(path);
        let role = match owner {
            Owner::Image {
                namespace,
                key,
                images,
            } => {
                let mut images: Vec<String> = images
                    .iter()
                    .map(|n| {
                        ids.get(&(namespace.as_str(), n.as_str()))
                            .map_or_else(|| n.clone(), |d| d.to_string())
                    })
                    .collect();
                images.sort();
                images.dedup();
                Role::ImageLayer {
                    chain_id: key.clone(),
                    images,
                }
            }
            Owner::Container { key, id, .. } => {
                containers
                    .entry(id.clone())
                    .or_default()
                    .insert(name.clone());
                if key.ends_with("-init") {
                    Role::InitLayer {
                        container: id.clone(),
                    }
                } else {
                    Role::ContainerLayer {
                        container: id.clone(),
                    }
                }
            }
            Owner::Lease { .. } => Role::Foreign,
            Owner::Unreferenced { .. } => Role::PendingRemoval,
            Owner::Orphan => Role::Orphan,
        };
        layers.insert(
            name.clone(),
            Layer {
                name,
                path: root.join(path),
                roles: vec![role],
            },
        );
    }
    // Backend key → subvolume name, for the images' layer lists.
    let by_backend: BTreeMap<&str, String> = records
        .iter()
        .map(|r| (r.key.as_str(), name_of(&r.subvolume())))
        .collect();
    // Image id (target digest, per namespace) → its names and its top snapshot keys.
    let mut images: BTreeMap<(String, String), Gathered> = BTreeMap::new();
    for ns in namespaces {
        for (name, tops) in &ns.images {
            let id = ns
                .targets
                .get(name)
                .cloned()
                .unwrap_or_else(|| name.clone());
            let entry = images
                .entry((ns.name.clone(), id))
                .or_insert_with(|| (Vec::new(), BTreeSet::new(), ns));
            entry.0.extend(tag(&ns.name, name));
            entry.1.extend(tops.iter().map(String::as_str));
        }
    }
    let images = images
        .into_iter()
        .map(|((_, id), (mut tags, tops, ns))| {
            tags.sort();
            let mut image = Image {
                id,
                tags,
                layers: Vec::new(),
                missing_layers: Vec::new(),
            };
            for top in tops {
                for key in bottom_up(ns, top) {
                    let subvolume = ns
                        .snapshots
                        .get(key)
                        .and_then(|s| by_backend.get(s.name.as_str()))
                        .filter(|n| layers.contains_key(*n));
                    match subvolume {
                        Some(n) if !image.layers.contains(n) => image.layers.push(n.clone()),
                        Some(_) => {}
                        None => image.missing_layers.push(key.to_string()),
                    }
                }
            }
            image
        })
        .collect();
    let containers = containers
        .into_iter()
        .map(|(id, layers)| {
            let (name, image) = container_info(data_root, &id);
            Container {
                id,
                name,
                image,
                layers: layers.into_iter().collect(),
            }
        })
        .collect();
    LayerMap {
        store: Store::Containerd,
        root: root.to_path_buf(),
        layers,
        images,
        containers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::containerd::meta::SnapshotKey;
    use crate::docker::containerd::snapshotter::Kind;

    fn record(key: &str, id: u64, kind: Kind) -> Record {
        Record {
            key: key.into(),
            id,
            kind,
            parent: None,
        }
    }

    fn snapshot(name: &str, parent: Option<&str>) -> SnapshotKey {
        SnapshotKey {
            name: name.into(),
            parent: parent.map(str::to_string),
        }
    }

    /// Two layers of one image (two names, one dangling placeholder), a container's init and
    /// read-write snapshots on top, an `rm-*` leftover: each subvolume gets its role, the
    /// image lists its layers bottom first, the container its two.
    #[test]
    fn familiar_names_as_docker_shows_them() {
        assert_eq!(familiar("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(familiar("docker.io/me/app:2"), "me/app:2");
        assert_eq!(familiar("docker.io/library/a/b:3"), "library/a/b:3");
        assert_eq!(familiar("quay.io/x/y:4"), "quay.io/x/y:4");
        assert_eq!(
            tag("k8s.io", "quay.io/x/y:4").as_deref(),
            Some("k8s.io/quay.io/x/y:4")
        );
        assert_eq!(tag(MOBY_NAMESPACE, "moby-dangling@sha256:0"), None);
    }

    #[test]
    fn images_and_containers_from_the_databases() {
        let c = "c".repeat(64);
        let records = vec![
            record("moby/1/sha256:base", 1, Kind::Committed),
            record("moby/2/sha256:top", 2, Kind::Committed),
            record(&format!("moby/3/{c}-init"), 3, Kind::Committed),
            record(&format!("moby/4/{c}"), 4, Kind::Active),
        ];
        let mut ns = Namespace {
            name: MOBY_NAMESPACE.into(),
            ..Default::default()
        };
        ns.snapshots
            .insert("sha256:base".into(), snapshot("moby/1/sha256:base", None));
        ns.snapshots.insert(
            "sha256:top".into(),
            snapshot("moby/2/sha256:top", Some("sha256:base")),
        );
        ns.snapshots.insert(
            format!("{c}-init"),
            snapshot(&format!("moby/3/{c}-init"), Some("sha256:top")),
        );
        ns.snapshots.insert(
            c.clone(),
            snapshot(&format!("moby/4/{c}"), Some(&format!("{c}-init"))),
        );
        for name in ["docker.io/library/busybox:latest", "moby-dangling@sha256:m"] {
            ns.images
                .insert(name.into(), BTreeSet::from(["sha256:top".to_string()]));
            ns.targets.insert(name.into(), "sha256:m".into());
        }
        ns.leases
            .insert(c.clone(), BTreeSet::from([c.clone(), format!("{c}-init")]));
        let paths: Vec<PathBuf> = [
            "snapshots/1",
            "snapshots/2",
            "snapshots/3",
            "active/4",
            "snapshots/rm-9",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let namespaces = vec![ns];
        let owners = meta::owners(&paths, &records, &namespaces);
        let root = Path::new("/srv/snap");
        let map = build(
            root,
            Path::new("/nonexistent"),
            &records,
            &namespaces,
            &owners,
        );
        assert_eq!(map.store, Store::Containerd);
        assert_eq!(map.layers.len(), 5);
        assert_eq!(map.layers["snapshots/1"].path, root.join("snapshots/1"));
        assert_eq!(map.images.len(), 1, "two names of one target are one image");
        let image = &map.images[0];
        assert_eq!(image.id, "sha256:m");
        assert_eq!(image.tags, vec!["busybox:latest".to_string()]);
        assert_eq!(image.layers, vec!["snapshots/1", "snapshots/2"]);
        assert!(image.missing_layers.is_empty());
        assert_eq!(map.containers.len(), 1);
        assert_eq!(map.containers[0].id, c);
        assert_eq!(map.containers[0].layers, vec!["active/4", "snapshots/3"]);
        assert_eq!(
            map.layers["snapshots/3"].roles,
            vec![Role::InitLayer {
                container: c.clone()
            }]
        );
        assert_eq!(
            map.layers["active/4"].roles,
            vec![Role::ContainerLayer {
                container: c.clone()
            }]
        );
        assert_eq!(map.layers["snapshots/rm-9"].roles, vec![Role::Orphan]);
        assert!(matches!(
            &map.layers["snapshots/2"].roles[..],
            [Role::ImageLayer { chain_id, images }]
                if chain_id == "sha256:top" && images == &["sha256:m".to_string()]
        ));
    }
}
