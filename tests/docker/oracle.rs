//! Oracle tier: our subvolume listing of a Docker data root against `btrfs subvolume list`, and
//! the orphan expectation computed from either listing.

use crate::data::MIB;
use crate::image;
use crate::layout::{expected_orphans, our_listing, subvolumes_dir, Layout};
use crate::progs::Progs;
use crate::scenario::{Rig, APP, BASE};
use btrfs_kit::subvolume::Entry;
use btrfs_kit::{subvolume, Filesystem};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use testkit::ensure;
use testkit::harness::Failed;

/// `btrfs subvolume list PATH`: path → id, for every subvolume of the filesystem.
fn progs_listing(oracle: Progs, root: &Path) -> Result<BTreeMap<String, u64>, Failed> {
    let text = oracle.run(&["subvolume", "list"], root)?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        // ID 257 gen 12 top level 5 path btrfs/subvolumes/<name>
        let (head, path) = line
            .split_once(" path ")
            .ok_or_else(|| format!("unexpected line: {line}"))?;
        let id = head
            .split_whitespace()
            .nth(1)
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| format!("no id in: {line}"))?;
        out.insert(path.to_string(), id);
    }
    Ok(out)
}

testkit::register!(prefix "docker"; oracle: layer_listing_and_orphans_match_btrfs_progs);
fn layer_listing_and_orphans_match_btrfs_progs() -> Result<(), Failed> {
    let (rig, _) = Rig::new(512 * MIB)?;
    let d = &rig.docker;
    let root = rig.root();
    image::import_busybox(d, BASE)?;
    image::build_app(d, BASE, APP)?;
    d.ok(&["create", "--network", "none", APP, "true"])?;
    let orphan = "0".repeat(63) + "1";
    subvolume::create(subvolumes_dir(root).join(&orphan))?;

    // The whole filesystem, by path from the top level.
    let fs = Filesystem::open(root)?;
    let mut ours = BTreeMap::new();
    for entry in fs.subvolumes().iter()? {
        match entry? {
            Entry::Subvolume(s) => {
                ours.insert(s.path.to_string_lossy().into_owned(), s.info.id);
            }
            Entry::Unreachable(u) => return Err(format!("unreachable: {u:?}").into()),
        }
    }
    let [theirs, sid] = Progs::BOTH.map(|oracle| progs_listing(oracle, root));
    let (theirs, sid) = (theirs?, sid?);
    ensure!(
        ours == theirs && ours == sid,
        "listings differ:\nours  {ours:?}\n6.2   {theirs:?}\n7.3   {sid:?}"
    );

    // The layer directory, and the orphans computed from each listing.
    let layers: BTreeMap<String, u64> = theirs
        .iter()
        .filter_map(|(p, id)| {
            let name = p.strip_prefix("btrfs/subvolumes/")?;
            (!name.contains('/')).then(|| (name.to_string(), *id))
        })
        .collect();
    ensure!(
        our_listing(root)? == layers,
        "layer listing differs from btrfs-progs'"
    );
    ensure!(
        layers.len() == 5 + 2 + 1,
        "{} layer subvolumes, expected 5 image + 2 container + 1 orphan",
        layers.len(),
    );
    let from_progs = Layout::with_subvolumes(root, layers)?.orphans();
    let from_ours = expected_orphans(root)?;
    ensure!(
        from_progs == from_ours && from_ours == BTreeSet::from([orphan]),
        "orphans from progs' listing {from_progs:?}, from ours {from_ours:?}",
    );
    Ok(())
}
