//! containerd's metadata database (`<root>/io.containerd.metadata.v1.bolt/meta.db`,
//! `core/metadata/buckets.go`), as far as attributing snapshots needs it, per namespace
//! (Docker's is `moby`):
//!
//! * `v1/<ns>/snapshots/<snapshotter>/<key>`: `name`, the backend's key
//!   (`<ns>/<n>/<key>`), and `parent`, the parent's key in the namespace;
//! * `v1/<ns>/images/<name>/target/digest`: the image's manifest (or index);
//! * `v1/<ns>/content/blob/<digest>/labels`: the garbage collector's references,
//!   `containerd.io/gc.ref.content.*` to other blobs (index → manifest → config and layers) and
//!   `containerd.io/gc.ref.snapshot.<snapshotter>[/…]` to a snapshot key (the unpacked image's
//!   top layer, its chain id);
//! * `v1/<ns>/containers/<id>`: `snapshotter`, `snapshotKey`, `image`;
//! * `v1/<ns>/leases/<id>/snapshots/<snapshotter>/<key>`: snapshots a lease holds (a pull or
//!   a build in progress; and, seen with Docker 28, every container's `<id>` and `<id>-init`
//!   snapshots under a lease named by the container id, from `docker create` on: the
//!   containerd container exists only while it runs).

use super::bolt::{BoltError, Bucket, Db};
use super::snapshotter::Record;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Docker's containerd namespace.
pub const MOBY_NAMESPACE: &str = "moby";

/// A snapshot key in a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotKey {
    /// The backend's key (the snapshotter's metadata.db names it so).
    pub name: String,
    /// The parent's key in the namespace.
    pub parent: Option<String>,
}

/// A container's snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerRef {
    /// The container id.
    pub id: String,
    /// Its image's name.
    pub image: String,
    /// The snapshotter.
    pub snapshotter: String,
    /// Its snapshot's key.
    pub snapshot_key: String,
}

/// One namespace's objects.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Namespace {
    /// Its name.
    pub name: String,
    /// Snapshot keys of the snapshotter asked for.
    pub snapshots: BTreeMap<String, SnapshotKey>,
    /// Image names and the snapshot keys their content references (their top layers).
    pub images: BTreeMap<String, BTreeSet<String>>,
    /// Image names and their target's digest (the manifest or index: Docker's image id with
    /// the containerd store).
    pub targets: BTreeMap<String, String>,
    /// Containers.
    pub containers: Vec<ContainerRef>,
    /// Leases and the snapshot keys they hold.
    pub leases: BTreeMap<String, BTreeSet<String>>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn string(bucket: &Bucket, key: &[u8]) -> Result<Option<String>, BoltError> {
    Ok(bucket.value(key)?.filter(|v| !v.is_empty()).map(text))
}

/// Every namespace's name (`v1/<ns>` buckets).
pub fn namespaces(db: &Db) -> Result<Vec<String>, BoltError> {
    let Some(v1) = db.bucket(&[b"v1"])? else {
        return Ok(Vec::new());
    };
    Ok(v1.bucket_names()?.into_iter().map(text).collect())
}

/// Reads namespace `ns` for `snapshotter`.
pub fn namespace(db: &Db, ns: &str, snapshotter: &str) -> Result<Namespace, BoltError> {
    let mut out = Namespace {
        name: ns.into(),
        ..Default::default()
    };
    let Some(root) = db.bucket(&[b"v1", ns.as_bytes()])? else {
        return Ok(out);
    };
    if let Some(snaps) = root
        .bucket(b"snapshots")?
        .map(|b| b.bucket(snapshotter.as_bytes()))
        .transpose()?
        .flatten()
    {
        for (key, v) in snaps.entries()? {
            let Some(b) = v.bucket() else { continue };
            let Some(name) = string(&b, b"name")? else {
                continue;
            };
            out.snapshots.insert(
                text(key),
                SnapshotKey {
                    name,
                    parent: string(&b, b"parent")?,
                },
            );
        }
    }
    // Blob labels: the garbage collector's reference graph.
    let mut refs: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    if let Some(blobs) = db.bucket(&[b"v1", ns.as_bytes(), b"content", b"blob"])? {
        for (digest, v) in blobs.entries()? {
            let Some(labels) = v
                .bucket()
                .map(|b| b.bucket(b"labels"))
                .transpose()?
                .flatten()
            else {
                continue;
            };
            let list = labels
                .entries()?
                .into_iter()
                .filter_map(|(k, v)| Some((text(k), text(v.data()?))))
                .collect();
            refs.insert(text(digest), list);
        }
    }
    let snapshot_label = format!("containerd.io/gc.ref.snapshot.{snapshotter}");
    let is_snapshot_ref =
        |k: &str| k == snapshot_label || k.starts_with(&format!("{snapshot_label}/"));
    if let Some(images) = root.bucket(b"images")? {
        for (name, v) in images.entries()? {
            let Some(image) = v.bucket() else { continue };
            let mut keys = BTreeSet::new();
            let mut queue: Vec<String> = Vec::new();
            if let Some(target) = image.bucket(b"target")? {
                if let Some(digest) = string(&target, b"digest")? {
                    out.targets.insert(text(name), digest.clone());
                    queue.push(digest);
                }
            }
            // The image's own labels may reference content and snapshots too.
            if let Some(labels) = image.bucket(b"labels")? {
                for (k, v) in labels.entries()? {
                    let (k, v) = (text(k), v.data().map(text).unwrap_or_default());
                    if is_snapshot_ref(&k) {
                        keys.insert(v);
                    } else if k.starts_with("containerd.io/gc.ref.content") {
                        queue.push(v);
                    }
                }
            }
            let mut seen = BTreeSet::new();
            while let Some(digest) = queue.pop() {
                if !seen.insert(digest.clone()) {
                    continue;
                }
                for (k, v) in refs.get(&digest).into_iter().flatten() {
                    if is_snapshot_ref(k) {
                        keys.insert(v.clone());
                    } else if k.starts_with("containerd.io/gc.ref.content") {
                        queue.push(v.clone());
                    }
                }
            }
            out.images.insert(text(name), keys);
        }
    }
    if let Some(containers) = root.bucket(b"containers")? {
        for (id, v) in containers.entries()? {
            let Some(c) = v.bucket() else { continue };
            out.containers.push(ContainerRef {
                id: text(id),
                image: string(&c, b"image")?.unwrap_or_default(),
                snapshotter: string(&c, b"snapshotter")?.unwrap_or_default(),
                snapshot_key: string(&c, b"snapshotKey")?.unwrap_or_default(),
            });
        }
    }
    if let Some(leases) = root.bucket(b"leases")? {
        for (id, v) in leases.entries()? {
            let Some(l) = v.bucket() else { continue };
            let keys = match l
                .bucket(b"snapshots")?
                .map(|s| s.bucket(snapshotter.as_bytes()))
                .transpose()?
                .flatten()
            {
                Some(s) => s.entries()?.into_iter().map(|(k, _)| text(k)).collect(),
                None => BTreeSet::new(),
            };
            out.leases.insert(text(id), keys);
        }
    }
    Ok(out)
}

/// Who owns a snapshot subvolume.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Owner {
    /// Image layers: the images whose layers include it, and the layer's key (its chain id).
    Image {
        /// The namespace.
        namespace: String,
        /// The key (`sha256:<chain id>` for an image layer).
        key: String,
        /// The images' names.
        images: Vec<String>,
    },
    /// A container's layer (its read-write snapshot and its `-init` layer).
    Container {
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
        /// The container id.
        id: String,
    },
    /// Held by a lease only (a pull or build in progress).
    Lease {
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
        /// The lease ids.
        leases: Vec<String>,
    },
    /// Known to containerd but referenced by nothing: its garbage collector removes it.
    Unreferenced {
        /// The namespace, when the metadata names it.
        namespace: Option<String>,
        /// The key (the backend key when no namespace names it).
        key: String,
    },
    /// No record of the snapshotter names it (or an `rm-*` leftover): containerd never
    /// deletes it.
    Orphan,
}

/// The ancestors of `key` in `ns`, `key` first (stopping at a cycle).
fn chain<'a>(ns: &'a Namespace, key: &'a str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut next = Some(key);
    while let Some(k) = next {
        if out.contains(&k) {
            break;
        }
        out.push(k);
        next = ns.snapshots.get(k).and_then(|s| s.parent.as_deref());
    }
    out
}

/// The owner of every subvolume below the snapshotter root: `subvolumes` (paths below the
/// root, e.g. `snapshots/12`), the snapshotter's `records`, and the namespaces read from
/// meta.db for the same snapshotter.
pub fn owners(
    subvolumes: &[PathBuf],
    records: &[Record],
    namespaces: &[Namespace],
) -> BTreeMap<PathBuf, Owner> {
    // (namespace index, key) per backend key.
    let mut by_backend: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    // Owner per (namespace index, key).
    let mut owned: BTreeMap<(usize, String), Owner> = BTreeMap::new();
    for (i, ns) in namespaces.iter().enumerate() {
        for (key, s) in &ns.snapshots {
            by_backend.insert(&s.name, (i, key));
        }
        let mut images: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (name, tops) in &ns.images {
            for top in tops {
                for k in chain(ns, top) {
                    images.entry(k).or_default().push(name.clone());
                }
            }
        }
        for (k, mut names) in images {
            names.sort();
            names.dedup();
            owned.insert(
                (i, k.to_string()),
                Owner::Image {
                    namespace: ns.name.clone(),
                    key: k.into(),
                    images: names,
                },
            );
        }
        // moby holds a container's snapshots (`<id>`, `<id>-init`) with a lease named by the
        // container id from `docker create` on; a containerd container exists only while it
        // runs.
        let moby_leases = ns
            .leases
            .iter()
            .filter(|(id, _)| crate::docker::layout::is_valid_id(id))
            .flat_map(|(id, keys)| keys.iter().map(move |k| (id.clone(), k.clone())));
        let containers: Vec<(String, String)> = ns
            .containers
            .iter()
            .map(|c| (c.id.clone(), c.snapshot_key.clone()))
            .chain(moby_leases)
            .collect();
        for (id, key) in &containers {
            for k in chain(ns, key) {
                if owned.contains_key(&(i, k.to_string())) {
                    break;
                }
                owned.insert(
                    (i, k.to_string()),
                    Owner::Container {
                        namespace: ns.name.clone(),
                        key: k.into(),
                        id: id.clone(),
                    },
                );
            }
        }
        let mut leased: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (lease, keys) in &ns.leases {
            for top in keys {
                for k in chain(ns, top) {
                    leased.entry(k).or_default().push(lease.clone());
                }
            }
        }
        for (k, leases) in leased {
            owned
                .entry((i, k.to_string()))
                .or_insert_with(|| Owner::Lease {
                    namespace: ns.name.clone(),
                    key: k.into(),
                    leases,
                });
        }
    }
    let by_path: BTreeMap<PathBuf, &Record> = records.iter().map(|r| (r.subvolume(), r)).collect();
    subvolumes
        .iter()
        .map(|path| {
            let owner =
                match by_path.get(path) {
                    None => Owner::Orphan,
                    Some(r) => match by_backend.get(r.key.as_str()) {
                        None => Owner::Unreferenced {
                            namespace: None,
                            key: r.key.clone(),
                        },
                        Some(&(i, key)) => owned
                            .get(&(i, key.to_string()))
                            .cloned()
                            .unwrap_or_else(|| Owner::Unreferenced {
                                namespace: Some(namespaces[i].name.clone()),
                                key: key.into(),
                            }),
                    },
                };
            (path.clone(), owner)
        })
        .collect()
}

/// Reads every namespace of `db` for `snapshotter`.
pub fn all_namespaces(db: &Db, snapshotter: &str) -> Result<Vec<Namespace>, BoltError> {
    namespaces(db)?
        .iter()
        .map(|ns| namespace(db, ns, snapshotter))
        .collect()
}

/// Why the owners of the snapshots could not be told.
#[derive(Debug, thiserror::Error)]
pub enum OwnersError {
    /// The snapshotter's layout or database.
    #[error(transparent)]
    Layout(#[from] super::snapshotter::LayoutError),
    /// meta.db.
    #[error(transparent)]
    Bolt(#[from] BoltError),
}

/// The owner of every subvolume under the btrfs snapshotter root `root` (paths below it, e.g.
/// `snapshots/12`; `rm-*` leftovers and subvolumes no record names are [`Owner::Orphan`]),
/// from its metadata.db and containerd's `meta_db`, for the snapshotter `snapshotter`
/// (`btrfs`). Refuses while containerd holds either database ([`BoltError::InUse`]).
pub fn snapshot_owners(
    root: &std::path::Path,
    meta_db: &std::path::Path,
    snapshotter: &str,
) -> Result<BTreeMap<PathBuf, Owner>, OwnersError> {
    let (records, _) = super::snapshotter::analyse(root)?;
    let paths: Vec<PathBuf> = super::snapshotter::entries(root)?
        .iter()
        .map(super::snapshotter::Entry::path)
        .collect();
    let db = Db::open(meta_db)?;
    let namespaces = all_namespaces(&db, snapshotter)?;
    Ok(owners(&paths, &records, &namespaces))
}
