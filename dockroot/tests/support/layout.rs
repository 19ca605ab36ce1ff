//! Docker's btrfs layout built by hand from the files moby writes (no daemon involved):
//! subvolumes under `btrfs/subvolumes/`, `image/btrfs/layerdb/sha256/<chain>/cache-id`,
//! `image/btrfs/layerdb/mounts/<container>/{mount-id,init-id}`, `containers/<id>/config.v2.json`,
//! files without a newline. The
//! real-daemon tier asserts the same checks against dockerd's own layout.

use std::path::{Path, PathBuf};
use testkit::harness::Failed;

/// A moby-style 64-hex id from a number.
pub fn id(n: u32) -> String {
    format!("{n:064x}")
}

/// The data root's layer subvolume directory.
pub fn subvolumes(root: &Path) -> PathBuf {
    root.join("btrfs/subvolumes")
}

/// Writes `content` (no trailing newline, as moby writes it) to `root/rel`.
pub fn put(root: &Path, rel: &str, content: &str) -> Result<(), Failed> {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
    std::fs::write(path, content)?;
    Ok(())
}

/// An image layer: subvolume `cache` (a snapshot of `parent`'s, as the driver makes them, or a
/// new subvolume) referenced by chain id `chain`.
pub fn image_layer(root: &Path, chain: u32, cache: u32, parent: Option<u32>) -> Result<(), Failed> {
    let dir = subvolumes(root);
    std::fs::create_dir_all(&dir)?;
    let target = dir.join(id(cache));
    match parent {
        Some(p) => btrfs_kit::subvolume::snapshot(
            dir.join(id(p)),
            &target,
            &btrfs_kit::subvolume::SnapshotOptions::writable(),
        )?,
        None => btrfs_kit::subvolume::create(&target)?,
    }
    put(
        root,
        &format!("image/btrfs/layerdb/sha256/{}/cache-id", id(chain)),
        &id(cache),
    )
}

/// A container: its init and read-write layers snapshot the image layer `image_cache`; the
/// daemon's record of it (`containers/<id>/config.v2.json`, which makes its layers live).
pub fn container(root: &Path, container: u32, layer: u32, image_cache: u32) -> Result<(), Failed> {
    put(
        root,
        &format!("containers/{}/config.v2.json", id(container)),
        "{}",
    )?;
    let dir = subvolumes(root);
    let init = format!("{}-init", id(layer));
    let opts = btrfs_kit::subvolume::SnapshotOptions::writable;
    btrfs_kit::subvolume::snapshot(dir.join(id(image_cache)), dir.join(&init), &opts())?;
    btrfs_kit::subvolume::snapshot(dir.join(&init), dir.join(id(layer)), &opts())?;
    let mounts = format!("image/btrfs/layerdb/mounts/{}", id(container));
    put(root, &format!("{mounts}/mount-id"), &id(layer))?;
    put(root, &format!("{mounts}/init-id"), &init)
}
