//! Self-check of a single-device image through this crate's own parser: the accounting
//! invariants `btrfs check` enforces. Works on fresh images and on cleanly unmounted ones the
//! kernel has written (multi-level trees, bitmaps); not on images needing log replay.
//!
//! * every block reads back with a good checksum, its own address, and identical copies;
//! * every chunk has a block group (same range and flags) and a device extent per stripe;
//! * block group `used` is the sum of the extents inside it;
//! * superblock `bytes_used` is the sum of block group `used`;
//! * device `bytes_used` (chunk tree and superblock) is the sum of its device extents;
//! * device extents do not overlap and keep clear of the first MiB;
//! * every tree block reached from the roots has an extent item, every tree block extent item
//!   is a reachable block, and an inline tree reference names a tree that reaches it;
//! * the free-space tree (extents or bitmaps) is the exact complement of allocated space in
//!   each block group, and each group's extent count is right;
//! * the top-level subvolume and the data relocation tree have their root directory.

use crate::format::consts::{key, objectid, RESERVED_START};
use crate::format::image::{Image, ImageError};
use crate::format::items::{
    free_space_info_count, BlockGroupItem, DevExtent, DevItem, EXTENT_ITEM_SIZE,
    TREE_BLOCK_INFO_SIZE,
};
use crate::format::Key;
use crate::le::{u64_at, u8_at};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek};

/// Why a self-check failed.
#[derive(Debug, thiserror::Error)]
pub enum SelfCheckError {
    /// The image could not be read at all.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// It was read, and these invariants do not hold.
    #[error("{} invariant(s) violated: {}", .0.len(), .0.join("; "))]
    Violations(Vec<String>),
}

/// What a passing self-check counted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    /// Chunks.
    pub chunks: usize,
    /// Tree blocks.
    pub tree_blocks: usize,
    /// Sum of block group `used`.
    pub bytes_used: u64,
    /// Sum of device extents.
    pub dev_bytes_used: u64,
}

/// Checks the image read from `dev` (see the module documentation for what is checked).
pub fn self_check<R: Read + Seek>(dev: R) -> Result<CheckReport, SelfCheckError> {
    let mut img = Image::open(dev)?;
    let mut bad = Vec::new();
    let sb = img.sb.clone();
    let trees = walk_trees(&mut img, &mut bad)?;
    let extent_tree = read_extent_tree(&trees, sb.nodesize as u64, &mut bad);
    check_tree_block_extents(&trees, &extent_tree, &mut bad);
    let bytes_used = check_block_group_usage(&extent_tree, sb.bytes_used, &mut bad);
    let dev_extents = read_dev_extents(&trees, &mut bad);
    let dev_bytes_used = check_chunks(&img, &trees, &extent_tree, &dev_extents, &mut bad);
    check_device_extents(&dev_extents, sb.total_bytes, &mut bad);
    check_free_space(&trees, &extent_tree, sb.sectorsize as u64, &mut bad);
    check_root_dirs(&trees, &mut bad);
    if !bad.is_empty() {
        return Err(SelfCheckError::Violations(bad));
    }
    Ok(CheckReport {
        chunks: img.chunks.len(),
        tree_blocks: trees.blocks.len(),
        bytes_used,
        dev_bytes_used,
    })
}

/// Every tree read from its root: the items of each, and which trees reach each block.
struct Trees {
    /// Block address -> trees reaching it (several when shared by snapshots).
    blocks: BTreeMap<u64, BTreeSet<u64>>,
    /// Tree id -> its items, in key order.
    items: BTreeMap<u64, crate::format::block::LeafItems>,
}

impl Trees {
    /// The items of tree `id` (none when the image has no such tree).
    fn tree(&self, id: u64) -> &[(Key, Vec<u8>)] {
        self.items.get(&id).map(Vec::as_slice).unwrap_or(&[])
    }
}

// Walk every tree from its root, collecting blocks with their owners.
fn walk_trees<R: Read + Seek>(
    img: &mut Image<R>,
    bad: &mut Vec<String>,
) -> Result<Trees, ImageError> {
    let sb = img.sb.clone();
    let root_items = img.tree_at(sb.root)?;
    let mut roots = vec![
        (objectid::ROOT_TREE, sb.root),
        (objectid::CHUNK_TREE, sb.chunk_root),
    ];
    for (k, d) in &root_items {
        if k.item_type == key::ROOT_ITEM {
            match crate::format::items::RootItem::decode_location(d) {
                Some((bytenr, _)) => roots.push((k.objectid, bytenr)),
                None => bad.push(format!("short root item for tree {}", k.objectid)),
            }
        }
    }
    let mut trees = Trees {
        blocks: BTreeMap::new(),
        items: BTreeMap::new(),
    };
    for &(tree, at) in &roots {
        let mut items = Vec::new();
        let mut seen = Vec::new();
        img.walk(at, &mut items, &mut |h| seen.push(h.bytenr))?;
        for bytenr in seen {
            trees.blocks.entry(bytenr).or_default().insert(tree);
        }
        trees.items.insert(tree, items);
    }
    Ok(trees)
}

/// What the extent tree records: block groups, extents, and the tree blocks among them.
struct ExtentTree {
    /// Block group start -> (length, item).
    groups: BTreeMap<u64, (u64, BlockGroupItem)>,
    /// Every extent (data or tree block) as (start, length).
    extents: Vec<(u64, u64)>,
    /// Tree block start -> the tree its first inline reference names, if it names one.
    tree_blocks: BTreeMap<u64, Option<u64>>,
}

// Block groups and extents.
fn read_extent_tree(trees: &Trees, nodesize: u64, bad: &mut Vec<String>) -> ExtentTree {
    let mut groups = BTreeMap::new();
    let mut tree_blocks = BTreeMap::new();
    let mut extents = Vec::new();
    for (k, d) in trees.tree(objectid::EXTENT_TREE) {
        match k.item_type {
            key::BLOCK_GROUP_ITEM => match BlockGroupItem::decode(d) {
                Some(b) => {
                    groups.insert(k.objectid, (k.offset, b));
                }
                None => bad.push(format!("short block group item at {}", k.objectid)),
            },
            key::METADATA_ITEM | key::EXTENT_ITEM => {
                let len = if k.item_type == key::METADATA_ITEM {
                    nodesize
                } else {
                    k.offset
                };
                extents.push((k.objectid, len));
                let info = if k.item_type == key::EXTENT_ITEM {
                    TREE_BLOCK_INFO_SIZE
                } else {
                    0
                };
                let is_tree = u64_at(d, 16).is_ok_and(|flags| flags & 2 != 0);
                if is_tree {
                    let ref_at = EXTENT_ITEM_SIZE + info;
                    // The first inline reference, when it names a tree, must be a tree that
                    // reaches the block (others may be shared or keyed references).
                    let owner = (u8_at(d, ref_at) == Ok(key::TREE_BLOCK_REF))
                        .then(|| u64_at(d, ref_at + 1).ok())
                        .flatten();
                    tree_blocks.insert(k.objectid, owner);
                }
            }
            _ => {}
        }
    }
    ExtentTree {
        groups,
        extents,
        tree_blocks,
    }
}

// Tree block extent items against the blocks the walk reached, and their owners.
fn check_tree_block_extents(trees: &Trees, extent_tree: &ExtentTree, bad: &mut Vec<String>) {
    let extent_set: BTreeSet<u64> = extent_tree.tree_blocks.keys().copied().collect();
    let reachable: BTreeSet<u64> = trees.blocks.keys().copied().collect();
    if extent_set != reachable {
        bad.push(format!(
            "tree block extents without a block: {:?}; blocks without an extent item: {:?}",
            extent_set.difference(&reachable).collect::<Vec<_>>(),
            reachable.difference(&extent_set).collect::<Vec<_>>()
        ));
    }
    for (bytenr, owner) in &extent_tree.tree_blocks {
        if let (Some(owner), Some(reached_by)) = (owner, trees.blocks.get(bytenr)) {
            if !reached_by.contains(owner) {
                bad.push(format!(
                    "block {bytenr}: its extent names tree {owner}, reached from {reached_by:?}"
                ));
            }
        }
    }
}

// Block group `used` against the extents inside each group, and the superblock's
// `bytes_used` against their sum; returns that sum.
fn check_block_group_usage(
    extent_tree: &ExtentTree,
    sb_bytes_used: u64,
    bad: &mut Vec<String>,
) -> u64 {
    let groups = &extent_tree.groups;
    let mut counted: BTreeMap<u64, u64> = groups.keys().map(|&start| (start, 0)).collect();
    for &(start, len) in &extent_tree.extents {
        let owner = groups
            .range(..=start)
            .next_back()
            .filter(|(s, (l, _))| start + len <= *s + *l);
        match owner {
            Some((s, _)) => *counted.entry(*s).or_default() += len,
            None => bad.push(format!("extent {start}+{len} lies in no block group")),
        }
    }
    let mut sum_used = 0;
    for (start, (_, bgi)) in groups {
        let counted = counted[start];
        if bgi.used != counted {
            bad.push(format!(
                "block group {start}: used {} but its extents add up to {counted}",
                bgi.used
            ));
        }
        sum_used += bgi.used;
    }
    if sb_bytes_used != sum_used {
        bad.push(format!(
            "superblock bytes_used {sb_bytes_used} but block groups add up to {sum_used}"
        ));
    }
    sum_used
}

/// The device extents, by physical start.
fn read_dev_extents(trees: &Trees, bad: &mut Vec<String>) -> BTreeMap<u64, DevExtent> {
    let mut dev_extents = BTreeMap::new();
    for (k, d) in trees.tree(objectid::DEV_TREE) {
        if k.item_type == key::DEV_EXTENT {
            match DevExtent::decode(d) {
                Some(de) => {
                    dev_extents.insert(k.offset, de);
                }
                None => bad.push(format!("short dev extent at {}", k.offset)),
            }
        }
    }
    dev_extents
}

// Chunks against block groups and device extents, and the device's `bytes_used` (chunk tree
// and superblock) against the device extents; returns their sum.
fn check_chunks<R: Read + Seek>(
    img: &Image<R>,
    trees: &Trees,
    extent_tree: &ExtentTree,
    dev_extents: &BTreeMap<u64, DevExtent>,
    bad: &mut Vec<String>,
) -> u64 {
    let groups = &extent_tree.groups;
    let mut matched = BTreeSet::new();
    for (logical, c) in &img.chunks {
        match groups.get(logical) {
            Some((len, bgi)) if *len == c.length && bgi.flags == c.flags => {}
            _ => bad.push(format!("chunk {logical} has no matching block group")),
        }
        for s in &c.stripes {
            match dev_extents.get(&s.offset) {
                Some(de) if de.chunk_offset == *logical && de.length == c.length => {
                    matched.insert(s.offset);
                }
                _ => bad.push(format!(
                    "chunk {logical} stripe at {} has no dev extent",
                    s.offset
                )),
            }
        }
    }
    if groups.len() != img.chunks.len() {
        bad.push(format!(
            "{} block groups for {} chunks",
            groups.len(),
            img.chunks.len()
        ));
    }
    if matched.len() != dev_extents.len() {
        bad.push("dev extents without a chunk".into());
    }
    let dev_sum: u64 = dev_extents.values().map(|d| d.length).sum();
    let chunk_dev = trees
        .tree(objectid::CHUNK_TREE)
        .iter()
        .find(|(k, _)| k.item_type == key::DEV_ITEM)
        .and_then(|(_, d)| DevItem::decode(d, 0).ok());
    for (what, used) in [
        ("chunk tree", chunk_dev.map(|d| d.bytes_used)),
        ("superblock", Some(img.sb.dev_item.bytes_used)),
    ] {
        if used != Some(dev_sum) {
            bad.push(format!(
                "{what} device bytes_used {used:?} but dev extents add up to {dev_sum}"
            ));
        }
    }
    dev_sum
}

// Device extents do not overlap, keep clear of the first MiB and end within the device.
fn check_device_extents(
    dev_extents: &BTreeMap<u64, DevExtent>,
    total_bytes: u64,
    bad: &mut Vec<String>,
) {
    let mut prev_end = RESERVED_START;
    for (start, de) in dev_extents {
        let end = start + de.length;
        if *start < prev_end || end > total_bytes {
            bad.push(format!(
                "dev extent {start}+{} overlaps another, the first MiB or the end",
                de.length
            ));
        }
        prev_end = end;
    }
}

// Free-space tree: exact complement of extents per block group.
fn check_free_space(
    trees: &Trees,
    extent_tree: &ExtentTree,
    sectorsize: u64,
    bad: &mut Vec<String>,
) {
    if !trees.items.contains_key(&objectid::FREE_SPACE_TREE) {
        return;
    }
    let mut free: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for (k, d) in trees.tree(objectid::FREE_SPACE_TREE) {
        match k.item_type {
            key::FREE_SPACE_INFO => {
                counts.insert(k.objectid, free_space_info_count(d).unwrap_or(u32::MAX));
                free.entry(k.objectid).or_default();
            }
            key::FREE_SPACE_EXTENT => match free.range_mut(..=k.objectid).next_back() {
                Some((_, v)) => v.push((k.objectid, k.offset)),
                None => bad.push(format!(
                    "free extent {} before any free space info",
                    k.objectid
                )),
            },
            key::FREE_SPACE_BITMAP => match free.range_mut(..=k.objectid).next_back() {
                Some((_, v)) => v.extend(bitmap_runs(k.objectid, sectorsize, d)),
                None => bad.push(format!(
                    "free bitmap {} before any free space info",
                    k.objectid
                )),
            },
            _ => {}
        }
    }
    let groups = &extent_tree.groups;
    for (start, (len, _)) in groups {
        let Some(f) = free.get(start) else {
            bad.push(format!("block group {start} has no free space info"));
            continue;
        };
        if counts.get(start).copied() != Some(merged_count(f)) {
            bad.push(format!(
                "block group {start}: free space info count differs from its {} extents",
                f.len()
            ));
        }
        let mut pieces: Vec<(u64, u64)> = f.clone();
        pieces.extend(
            extent_tree
                .extents
                .iter()
                .copied()
                .filter(|(s, _)| s >= start && *s < start + len),
        );
        pieces.sort_unstable();
        let mut cursor = *start;
        for (s, l) in pieces {
            if s != cursor {
                bad.push(format!(
                    "block group {start}: free and used space leave a gap or overlap at {s}"
                ));
                break;
            }
            cursor = s + l;
        }
        if cursor != start + len {
            bad.push(format!(
                "block group {start}: free and used space end at {cursor}, not {}",
                start + len
            ));
        }
    }
    if free.len() != groups.len() {
        bad.push("free space info for a missing block group".into());
    }
}

// Root directories.
fn check_root_dirs(trees: &Trees, bad: &mut Vec<String>) {
    for t in [objectid::FS_TREE, objectid::DATA_RELOC_TREE] {
        let has_dir = trees
            .tree(t)
            .iter()
            .any(|(k, _)| *k == Key::new(objectid::FIRST_FREE, key::INODE_ITEM, 0));
        if !has_dir {
            bad.push(format!("tree {t} lacks root directory inode 256"));
        }
    }
}

/// The free runs of a free-space bitmap starting at `start`: one bit per sector, set = free.
fn bitmap_runs(start: u64, sectorsize: u64, bits: &[u8]) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for i in 0..bits.len() as u64 * 8 {
        if bits[(i / 8) as usize] & (1 << (i % 8)) != 0 {
            let at = start + i * sectorsize;
            match runs.last_mut() {
                Some((s, l)) if *s + *l == at => *l += sectorsize,
                _ => runs.push((at, sectorsize)),
            }
        }
    }
    runs
}

/// The number of free extents after merging adjacent pieces (what `extent_count` counts).
fn merged_count(pieces: &[(u64, u64)]) -> u32 {
    let mut sorted = pieces.to_vec();
    sorted.sort_unstable();
    let mut n = 0;
    let mut end = None;
    for (s, l) in sorted {
        if end != Some(s) {
            n += 1;
        }
        end = Some(s + l);
    }
    n
}
