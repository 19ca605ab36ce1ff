//! Builds the final state of a new filesystem: every tree a single leaf at generation 1, plus
//! the superblock copies, as a list of (physical offset, bytes) writes. Nothing here touches a
//! device, so images can be built and checked in memory.

mod trees;

use super::layout::{Layout, PlannedChunk};
use super::options::MkfsOptions;
use crate::format::block::{build_leaf, BlockId};
use crate::format::consts::{
    compat_ro, incompat, key, objectid, super_mirror_offset, HEADER_FLAG_WRITTEN, STRIPE_LEN,
    SUPER_MIRRORS, SUPER_SIZE,
};
use crate::format::items::{Chunk, DevItem, Stripe};
use crate::format::{BackupRoot, Key, Superblock};
use trees::Ctx;
use uuid::Uuid;

/// The generation every block of a new filesystem is written in.
pub const GENERATION: u64 = 1;
/// Device id of the only device.
pub(super) const DEVID: u64 = 1;

/// The identities of a new filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Filesystem uuid.
    pub fsid: Uuid,
    /// Device uuid.
    pub device_uuid: Uuid,
    /// Chunk tree uuid.
    pub chunk_tree_uuid: Uuid,
    /// Uuid of the top-level subvolume.
    pub subvol_uuid: Uuid,
    /// Timestamp of the root directories.
    pub time: u64,
}

/// One write of a built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Physical offset.
    pub offset: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A built image: its writes and a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// Tree blocks (every copy), then superblock copies with the primary last.
    pub writes: Vec<Write>,
    /// The superblock written.
    pub superblock: Superblock,
    /// Tree blocks by owner: (tree id, logical address).
    pub tree_blocks: Vec<(u64, u64)>,
}

/// Something that cannot happen with validated options: items overflowing a leaf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

/// Where each tree's single leaf goes.
pub(super) struct Trees {
    pub nodesize: u64,
    /// (tree id, logical address).
    pub blocks: Vec<(u64, u64)>,
}

impl Trees {
    pub fn addr(&self, owner: u64) -> u64 {
        self.blocks
            .iter()
            .find(|(o, _)| *o == owner)
            .map(|(_, a)| *a)
            .expect("tree planned")
    }
}

/// The trees in the metadata chunk, in placement order.
fn metadata_trees(opts: &MkfsOptions) -> Vec<u64> {
    let mut t = vec![
        objectid::ROOT_TREE,
        objectid::EXTENT_TREE,
        objectid::DEV_TREE,
        objectid::FS_TREE,
        objectid::CSUM_TREE,
        objectid::UUID_TREE,
    ];
    if opts.features.free_space_tree {
        t.push(objectid::FREE_SPACE_TREE);
    }
    t.push(objectid::DATA_RELOC_TREE);
    t
}

/// Builds every block and superblock of a new filesystem laid out as `layout`.
pub fn build(opts: &MkfsOptions, layout: &Layout, id: &Identity) -> Result<BuiltImage, BuildError> {
    let nodesize = opts.nodesize as u64;
    let mut blocks = vec![(objectid::CHUNK_TREE, layout.system.logical)];
    for (i, t) in metadata_trees(opts).into_iter().enumerate() {
        blocks.push((t, layout.metadata.logical + i as u64 * nodesize));
    }
    let trees = Trees { nodesize, blocks };
    let chunks: Vec<(&PlannedChunk, Chunk)> = layout
        .chunks()
        .into_iter()
        .map(|c| (c, chunk_item(c, id, opts.sectorsize)))
        .collect();
    let dev_item = DevItem {
        devid: DEVID,
        total_bytes: layout.total_bytes,
        bytes_used: layout.dev_bytes_used(),
        sector_size: opts.sectorsize,
        uuid: id.device_uuid,
        fsid: id.fsid,
    };

    let contents = trees::contents(&Ctx {
        opts,
        id,
        trees: &trees,
        chunks: &chunks,
        dev_item: &dev_item,
    });

    // Encode every leaf and write it to every copy of its chunk.
    let mut writes = Vec::new();
    for (owner, mut items) in contents {
        let bytenr = trees.addr(owner);
        let bid = BlockId {
            fsid: id.fsid,
            chunk_tree_uuid: id.chunk_tree_uuid,
            bytenr,
            owner,
            generation: GENERATION,
        };
        let leaf = build_leaf(&bid, &mut items, nodesize as usize, opts.checksum)
            .map_err(|e| BuildError(e.to_string()))?;
        let chunk = layout
            .chunks()
            .into_iter()
            .find(|c| bytenr >= c.logical && bytenr < c.logical + c.length)
            .expect("block in a chunk");
        for &phys in &chunk.stripes {
            writes.push(Write {
                offset: phys + (bytenr - chunk.logical),
                bytes: leaf.clone(),
            });
        }
    }
    writes.sort_by_key(|w| w.offset);

    let superblock = superblock(opts, layout, id, &trees, dev_item, &chunks[0].1);
    for mirror in (0..SUPER_MIRRORS).rev() {
        let offset = super_mirror_offset(mirror);
        if offset + SUPER_SIZE as u64 <= layout.total_bytes {
            let sb = Superblock {
                bytenr: offset,
                ..superblock.clone()
            };
            writes.push(Write {
                offset,
                bytes: sb.to_bytes(),
            });
        }
    }
    Ok(BuiltImage {
        writes,
        superblock,
        tree_blocks: trees.blocks,
    })
}

fn chunk_item(c: &PlannedChunk, id: &Identity, sectorsize: u32) -> Chunk {
    Chunk {
        length: c.length,
        stripe_len: STRIPE_LEN,
        flags: c.flags,
        sector_size: sectorsize,
        // Single and DUP only: one stripe per mirror group.
        sub_stripes: 1,
        stripes: c
            .stripes
            .iter()
            .map(|&offset| Stripe {
                devid: DEVID,
                offset,
                dev_uuid: id.device_uuid,
            })
            .collect(),
    }
}

fn superblock(
    opts: &MkfsOptions,
    layout: &Layout,
    id: &Identity,
    trees: &Trees,
    dev_item: DevItem,
    system: &Chunk,
) -> Superblock {
    let f = opts.features;
    let mut incompat_flags = incompat::MIXED_BACKREF;
    for (on, bit) in [
        (f.extref, incompat::EXTENDED_IREF),
        (f.skinny_metadata, incompat::SKINNY_METADATA),
        (f.no_holes, incompat::NO_HOLES),
    ] {
        if on {
            incompat_flags |= bit;
        }
    }
    let compat_ro_flags = if f.free_space_tree {
        compat_ro::FREE_SPACE_TREE | compat_ro::FREE_SPACE_TREE_VALID
    } else {
        0
    };
    let mut sys_chunk_array = vec![0u8; Key::SIZE];
    Key::new(
        objectid::FIRST_CHUNK_TREE,
        key::CHUNK_ITEM,
        layout.system.logical,
    )
    .encode(&mut sys_chunk_array, 0);
    sys_chunk_array.extend(system.to_bytes());
    let bytes_used = trees.blocks.len() as u64 * trees.nodesize;
    let at = |t| (trees.addr(t), GENERATION);
    let backup = BackupRoot {
        tree_root: at(objectid::ROOT_TREE),
        chunk_root: at(objectid::CHUNK_TREE),
        extent_root: at(objectid::EXTENT_TREE),
        fs_root: at(objectid::FS_TREE),
        dev_root: at(objectid::DEV_TREE),
        csum_root: at(objectid::CSUM_TREE),
        total_bytes: layout.total_bytes,
        bytes_used,
        num_devices: 1,
    };
    Superblock {
        fsid: id.fsid,
        bytenr: super_mirror_offset(0),
        flags: HEADER_FLAG_WRITTEN,
        generation: GENERATION,
        root: trees.addr(objectid::ROOT_TREE),
        chunk_root: trees.addr(objectid::CHUNK_TREE),
        total_bytes: layout.total_bytes,
        bytes_used,
        root_dir_objectid: objectid::ROOT_TREE_DIR,
        num_devices: 1,
        sectorsize: opts.sectorsize,
        nodesize: opts.nodesize,
        stripesize: opts.sectorsize,
        chunk_root_generation: GENERATION,
        compat_flags: 0,
        compat_ro_flags,
        incompat_flags,
        csum_type: opts.checksum,
        root_level: 0,
        chunk_root_level: 0,
        dev_item,
        label: opts.label.clone(),
        cache_generation: 0,
        uuid_tree_generation: GENERATION,
        sys_chunk_array,
        backup_roots: [
            backup,
            BackupRoot::default(),
            BackupRoot::default(),
            BackupRoot::default(),
        ],
    }
}
