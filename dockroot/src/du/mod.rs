//! `dockroot du`: how much space each image, container and layer subvolume takes, and what
//! deleting it would give back, exact from btrfs metadata ([`btrfs_kit::space_share`]), without
//! quotas and without walking files.
//!
//! Two pieces, kept apart:
//!
//! * a [`LayerMap`]: which layer subvolumes exist and who owns them (images, containers,
//!   nobody). It depends on the image store: [`graphdriver::layer_map`] reads the btrfs graph
//!   driver's layer store, [`containerd::layer_map`] containerd's btrfs snapshotter;
//! * [`measure`]: the space of a [`LayerMap`], which knows nothing of Docker.
//!
//! Definitions (data bytes of disk extents, logical: a raid1 copy is not counted twice; tree
//! blocks and inline file data are metadata and not counted, while qgroups add them):
//!
//! * a subvolume's **referenced** bytes: its distinct disk extents; **exclusive**: those no
//!   other subvolume of the filesystem references (what deleting it frees); **shared** the
//!   rest; **logical**: the file bytes its extents map;
//! * an **image**: referenced = the union over its layers; **frees** = what `docker rmi` would
//!   give back: the extents referenced only by its layers that no other image uses (a layer
//!   shared with another image stays, and so does what it references; a container's layers
//!   snapshot the image, so what they still see is shared and not counted);
//! * a **container**: its read-write and init layers together: referenced, and frees (what
//!   `docker rm` gives back);
//! * **orphans**: each one's exclusive bytes, and what removing all of them frees.

pub mod containerd;
pub mod graphdriver;
mod render;

use btrfs_kit::space_share::{GroupSpace, Scope, SubvolumeSpace};
use btrfs_kit::{ByteSize, Filesystem};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use render::render;

/// Which image store a [`LayerMap`] describes (the store provision and doctor name).
pub use crate::docker::ImageStore as Store;

/// What a layer subvolume is to Docker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Role {
    /// An image layer (by chain id), used by these images (none: a layer no image lists, e.g.
    /// of an intermediate build step).
    ImageLayer {
        /// The chain id (hex, or the snapshot key for containerd).
        chain_id: String,
        /// The ids of the images whose layers include it.
        images: Vec<String>,
    },
    /// A container's read-write layer.
    ContainerLayer {
        /// The container id.
        container: String,
    },
    /// A container's init layer.
    InitLayer {
        /// The container id.
        container: String,
    },
    /// Referenced by nothing Docker loads: Docker will never use or delete it.
    Orphan,
    /// A layer Docker is deleting (it goes at Docker's next clean shutdown).
    PendingRemoval,
    /// Not the layer store's (e.g. BuildKit's build cache): measured, not judged.
    Foreign,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::ImageLayer { images, .. } if images.is_empty() => f.write_str("layer, no image"),
            Role::ImageLayer { images, .. } => write!(f, "layer of {} image(s)", images.len()),
            Role::ContainerLayer { container } => write!(f, "container {}", short(container)),
            Role::InitLayer { container } => write!(f, "init of {}", short(container)),
            Role::Orphan => f.write_str("orphan"),
            Role::PendingRemoval => f.write_str("being removed"),
            Role::Foreign => f.write_str("foreign"),
        }
    }
}

/// A layer subvolume and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layer {
    /// Its name (the graph driver's cache id / mount id).
    pub name: String,
    /// Its path.
    pub path: PathBuf,
    /// Who owns it; several roles are possible (an image layer and a container's).
    pub roles: Vec<Role>,
}

/// An image: its layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    /// The image id (`sha256:…`).
    pub id: String,
    /// Its tags and digests (`busybox:latest`).
    pub tags: Vec<String>,
    /// The names of its layer subvolumes, bottom first.
    pub layers: Vec<String>,
    /// Layers the image lists that the store does not have, by chain id.
    pub missing_layers: Vec<String>,
}

/// A container: its layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    /// The container id.
    pub id: String,
    /// Its name, when the daemon's record gives one.
    pub name: Option<String>,
    /// Its image id, when known.
    pub image: Option<String>,
    /// The names of its read-write and init layer subvolumes.
    pub layers: Vec<String>,
}

/// Which layer subvolumes exist and who owns them: the input of [`measure`], built per image
/// store ([`graphdriver::layer_map`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerMap {
    /// The image store it describes.
    pub store: Store,
    /// The directory holding its layer subvolumes (the graph driver's `btrfs/subvolumes`, the
    /// snapshotter's root): the filesystem measured.
    pub root: PathBuf,
    /// Every layer subvolume, by name.
    pub layers: BTreeMap<String, Layer>,
    /// The images.
    pub images: Vec<Image>,
    /// The containers.
    pub containers: Vec<Container>,
}

/// A row of figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Space {
    /// Distinct disk extents referenced.
    pub referenced: ByteSize,
    /// What deleting it frees.
    pub frees: ByteSize,
    /// `referenced − frees`: kept by others.
    pub shared: ByteSize,
    /// File bytes mapped (per reference, uncompressed).
    pub logical: ByteSize,
}

impl From<GroupSpace> for Space {
    fn from(g: GroupSpace) -> Self {
        Space {
            referenced: g.referenced,
            frees: g.exclusive,
            shared: g.shared(),
            logical: g.logical,
        }
    }
}

impl From<&SubvolumeSpace> for Space {
    fn from(s: &SubvolumeSpace) -> Self {
        Space {
            referenced: s.referenced,
            frees: s.exclusive,
            shared: s.shared(),
            logical: s.logical,
        }
    }
}

/// An image's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRow {
    /// The image.
    #[serde(flatten)]
    pub image: Image,
    /// Of its layers, those no other image uses (what `docker rmi` deletes).
    pub own_layers: usize,
    /// Referenced over all its layers; frees: what deleting its own layers gives back.
    #[serde(flatten)]
    pub space: Space,
}

/// A container's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerRow {
    /// The container.
    #[serde(flatten)]
    pub container: Container,
    /// Its layers together.
    #[serde(flatten)]
    pub space: Space,
}

/// A layer subvolume's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubvolumeRow {
    /// Its name.
    pub name: String,
    /// Its subvolume id.
    pub id: u64,
    /// Its roles.
    pub roles: Vec<Role>,
    /// Its figures (frees = its exclusive bytes).
    #[serde(flatten)]
    pub space: Space,
    /// Of `referenced`, bytes in compressed extents (compressed size).
    pub compressed: ByteSize,
    /// Inline file data (in the tree's leaves, metadata: not in the figures).
    pub inline: ByteSize,
}

/// A layer entry that could not be measured (not a subvolume, or unreadable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmeasured {
    /// Its name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// The whole answer of `dockroot du`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuReport {
    /// The data root.
    pub path: PathBuf,
    /// The image store.
    pub store: Store,
    /// The directory holding the layer subvolumes.
    pub layers_root: PathBuf,
    /// What the figures count.
    pub counts: &'static str,
    /// Every layer subvolume together (frees: what deleting all of them would give back).
    pub total: Space,
    /// Per image, largest `frees` first.
    pub images: Vec<ImageRow>,
    /// Per container, largest `frees` first.
    pub containers: Vec<ContainerRow>,
    /// The orphans together: what removing them frees (`dockroot doctor --fix-orphans`).
    pub orphans: Space,
    /// Per subvolume, largest `frees` first.
    pub subvolumes: Vec<SubvolumeRow>,
    /// Layer entries not measured.
    pub unmeasured: Vec<Unmeasured>,
    /// What the reader should know about how the figures were found (e.g. containerd's
    /// databases read from point-in-time copies; another store also holding layers).
    pub notes: Vec<String>,
}

/// What the figures count, said in every report.
pub const COUNTS: &str = "data extents (logical bytes, once per extent whatever the profile's copies); tree blocks and inline file data are metadata and not counted";

/// The first 12 characters of an id, as `docker ps` shows it.
pub fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// What [`measure`] does with file data not yet written back (in the page cache: extents are
/// allocated, and so visible to TREE_SEARCH, only at writeback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// Write it back and commit first (`Filesystem::sync`): the figures include every write
    /// made before `du` started. Costs what a `sync` costs on a busy filesystem.
    Flush,
    /// Measure what is on disk now: recent writes may be missing.
    AsIs,
}

/// Measures the layers of `map` on the filesystem holding them (`map.root`, or `data_root`
/// when that does not exist yet), as root (TREE_SEARCH). A layer on another filesystem is
/// [`Unmeasured`].
pub fn measure(
    data_root: &Path,
    map: &LayerMap,
    pending: Pending,
) -> Result<DuReport, btrfs_kit::Error> {
    let at = if map.root.exists() {
        &map.root
    } else {
        data_root
    };
    let fs = Filesystem::open(at)?;
    if pending == Pending::Flush {
        fs.sync()?;
    }
    let fsid = fs.info()?.fsid;
    let mut ids: BTreeMap<&str, u64> = BTreeMap::new();
    let mut unmeasured = Vec::new();
    for layer in map.layers.values() {
        match Filesystem::open(&layer.path).and_then(|f| f.info()) {
            Ok(info) if info.fsid != fsid => {
                unmeasured.push(Unmeasured {
                    name: layer.name.clone(),
                    reason: format!("on another filesystem than {}", at.display()),
                });
                continue;
            }
            _ => {}
        }
        let id = match btrfs_kit::subvolume::is_subvolume(&layer.path) {
            Ok(true) => btrfs_kit::subvolume::subvolume_id(&layer.path),
            Ok(false) => {
                unmeasured.push(Unmeasured {
                    name: layer.name.clone(),
                    reason: "not a subvolume".into(),
                });
                continue;
            }
            Err(e) => Err(e),
        };
        match id {
            Ok(id) => {
                ids.insert(&layer.name, id);
            }
            Err(e) => unmeasured.push(Unmeasured {
                name: layer.name.clone(),
                reason: e.to_string(),
            }),
        }
    }
    let share = fs.space_share(&Scope::Subvolumes(ids.values().copied().collect()))?;
    let ids_of = |names: &mut dyn Iterator<Item = &String>| -> Vec<u64> {
        names.filter_map(|n| ids.get(n.as_str()).copied()).collect()
    };
    let group = |names: Vec<u64>| -> Space { share.group(&names).unwrap_or_default().into() };

    let mut users: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for image in &map.images {
        for l in &image.layers {
            users.entry(l).or_default().insert(&image.id);
        }
    }
    let mut images: Vec<ImageRow> = map
        .images
        .iter()
        .map(|image| {
            let own: Vec<&String> = image
                .layers
                .iter()
                .filter(|l| users.get(l.as_str()).is_some_and(|u| u.len() == 1))
                .collect();
            let all = group(ids_of(&mut image.layers.iter()));
            let freed = group(ids_of(&mut own.iter().copied()));
            ImageRow {
                image: image.clone(),
                own_layers: own.len(),
                space: Space {
                    frees: freed.frees,
                    shared: all.referenced.saturating_sub(freed.frees),
                    ..all
                },
            }
        })
        .collect();
    images.sort_by(|a, b| {
        b.space
            .frees
            .cmp(&a.space.frees)
            .then(a.image.id.cmp(&b.image.id))
    });
    let mut containers: Vec<ContainerRow> = map
        .containers
        .iter()
        .map(|c| ContainerRow {
            container: c.clone(),
            space: group(ids_of(&mut c.layers.iter())),
        })
        .collect();
    containers.sort_by(|a, b| {
        b.space
            .frees
            .cmp(&a.space.frees)
            .then(a.container.id.cmp(&b.container.id))
    });
    let orphans = group(ids_of(
        &mut map
            .layers
            .values()
            .filter(|l| l.roles.contains(&Role::Orphan))
            .map(|l| &l.name),
    ));
    let mut subvolumes: Vec<SubvolumeRow> = map
        .layers
        .values()
        .filter_map(|l| {
            let id = *ids.get(l.name.as_str())?;
            let s = share.subvolume(id)?;
            Some(SubvolumeRow {
                name: l.name.clone(),
                id,
                roles: l.roles.clone(),
                space: s.into(),
                compressed: s.compressed,
                inline: s.inline.stored,
            })
        })
        .collect();
    subvolumes.sort_by(|a, b| b.space.frees.cmp(&a.space.frees).then(a.name.cmp(&b.name)));
    Ok(DuReport {
        path: data_root.to_path_buf(),
        store: map.store,
        layers_root: map.root.clone(),
        counts: COUNTS,
        total: share.total().into(),
        images,
        containers,
        orphans,
        subvolumes,
        unmeasured,
        notes: Vec::new(),
    })
}
