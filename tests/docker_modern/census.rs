//! What each way keeps on the filesystem, read independently of Docker with our library and
//! compared with what Docker or containerd says it has.
//!
//! * Legacy graphdriver: the layer subvolumes and the layer store's references (the 20.10
//!   tier's [`Layout`]).
//! * containerd image store: every snapshot of containerd's btrfs snapshotter is a subvolume
//!   `<snapshotter root>/{snapshots,active,view}/<n>`; our listing of the whole filesystem must
//!   hold exactly those (and the `@containerd` subvolume of the system-style way), as many as
//!   `ctr snapshots ls` lists.

use crate::containerd::ctr;
use crate::layout::Layout;
use crate::rig::{Rig, Store};
use btrfs_kit::subvolume::{self, Entry};
use btrfs_kit::Filesystem;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use testkit::ensure;
use testkit::harness::Failed;

/// The inode number of a subvolume's root directory.
const SUBVOLUME_ROOT_INODE: u64 = 256;
/// The kinds of snapshot directory of containerd's btrfs snapshotter.
const KINDS: [&str; 3] = ["snapshots", "active", "view"];

/// The subvolumes of a way's store against what Docker or containerd references.
#[derive(Debug, Clone)]
pub struct Census {
    /// Subvolumes holding images or containers (layers, or snapshots).
    pub subvolumes: usize,
    /// Of them, those nothing references (the graphdriver's orphans, or snapshot subvolumes
    /// containerd does not list).
    pub orphans: BTreeSet<String>,
    /// What was counted, in words.
    pub text: String,
}

/// Takes the census of `rig`'s store.
pub fn take(rig: &Rig) -> Result<Census, Failed> {
    match rig.store() {
        None => legacy(rig.root()),
        Some(store) => snapshots(rig, &store),
    }
}

fn legacy(root: &Path) -> Result<Census, Failed> {
    let layout = Layout::read(root)?;
    ensure!(
        layout.dangling().is_empty(),
        "references to missing layers: {:?}",
        layout.dangling()
    );
    let orphans = layout.orphans();
    let counted = layout.image_layers.len() + layout.container_layers.len() + orphans.len();
    ensure!(
        counted == layout.subvolumes.len(),
        "{} layer subvolumes, {counted} accounted for: {layout:?}",
        layout.subvolumes.len(),
    );
    Ok(Census {
        subvolumes: layout.subvolumes.len(),
        text: format!(
            "{} subvolumes under btrfs/subvolumes = {} image layers + {} container layers + {} orphans",
            layout.subvolumes.len(),
            layout.image_layers.len(),
            layout.container_layers.len(),
            orphans.len()
        ),
        orphans,
    })
}

/// The snapshot directories of the btrfs snapshotter: path → subvolume id, each checked to be
/// a subvolume's root.
fn snapshot_dirs(store: &Store) -> Result<BTreeMap<PathBuf, u64>, Failed> {
    let mut out = BTreeMap::new();
    for kind in KINDS {
        let dir = store.snapshotter().join(kind);
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry?.path();
            let ino = std::fs::metadata(&path)?.ino();
            ensure!(
                ino == SUBVOLUME_ROOT_INODE,
                "{} is not a subvolume (inode {ino})",
                path.display()
            );
            out.insert(path.clone(), subvolume::info(&path)?.id);
        }
    }
    Ok(out)
}

fn snapshots(rig: &Rig, store: &Store) -> Result<Census, Failed> {
    let dirs = snapshot_dirs(store)?;
    let ours: BTreeSet<u64> = dirs.values().copied().collect();
    // Every subvolume of the filesystem: the snapshots, and the system-style way's root.
    let fs = Filesystem::open(rig.root())?;
    let mut all = BTreeMap::new();
    for entry in fs.subvolumes().iter()? {
        match entry? {
            Entry::Subvolume(s) => {
                all.insert(s.info.id, s.path);
            }
            Entry::Unreachable(u) => return Err(format!("unreachable subvolume: {u:?}").into()),
        }
    }
    let others: BTreeMap<u64, PathBuf> = all
        .iter()
        .filter(|(id, _)| !ours.contains(id))
        .map(|(id, p)| (*id, p.clone()))
        .collect();
    let allowed: BTreeSet<PathBuf> = match rig.containerd {
        Some(_) => BTreeSet::from([PathBuf::from(crate::trap::SUBVOLUME)]),
        None => BTreeSet::new(),
    };
    ensure!(
        others.values().all(|p| allowed.contains(p)),
        "subvolumes that are no snapshot of containerd's: {others:?}"
    );
    let listed = ctr(
        &rig.userland,
        &store.socket,
        &store.bind,
        &["-n", "moby", "snapshots", "--snapshotter", "btrfs", "ls"],
    )?;
    let keys: Vec<&str> = listed
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let by_kind: Vec<String> = KINDS
        .iter()
        .map(|k| {
            let n = dirs
                .keys()
                .filter(|p| p.parent().is_some_and(|d| d.ends_with(k)))
                .count();
            format!("{n} {k}")
        })
        .collect();
    let orphans: BTreeSet<String> = if keys.len() < dirs.len() {
        // Which ones containerd forgot cannot be told from `ctr` (it lists keys, not ids):
        // name the surplus by count.
        (0..dirs.len() - keys.len())
            .map(|i| format!("unlisted-{i}"))
            .collect()
    } else {
        BTreeSet::new()
    };
    ensure!(
        keys.len() <= dirs.len(),
        "ctr lists {} snapshots, only {} subvolumes exist:\n{listed}",
        keys.len(),
        dirs.len()
    );
    Ok(Census {
        subvolumes: dirs.len(),
        text: format!(
            "{} snapshots = {} subvolumes ({}) of fs {}, ctr lists {}",
            dirs.len(),
            dirs.len(),
            by_kind.join(", "),
            short_fsid(&fs.info()?.fsid.to_string()),
            keys.len()
        ),
        orphans,
    })
}

/// The first 8 hex digits of a filesystem id, as shown in messages.
pub fn short_fsid(fsid: &str) -> String {
    fsid.chars().take(8).collect()
}

/// Checks that each of `paths` is on the btrfs of `root` (same fsid); the fsid.
pub fn all_on(root: &Path, paths: &[&Path]) -> Result<String, Failed> {
    let fsid = Filesystem::open(root)?.info()?.fsid;
    for path in paths {
        let theirs = Filesystem::open(path)
            .map_err(|e| format!("{} is not on our btrfs: {e}", path.display()))?
            .info()?
            .fsid;
        ensure!(
            theirs == fsid,
            "{} is on btrfs {theirs}, not on ours ({fsid})",
            path.display()
        );
    }
    Ok(fsid.to_string())
}

/// The number of blobs in a content store.
pub fn blobs(store: &Store) -> Result<usize, Failed> {
    let dir = store.content().join("blobs/sha256");
    Ok(std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .count())
}
