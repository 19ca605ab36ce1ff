//! Builds the final state of a new filesystem: every tree a single leaf at generation 1, plus
//! the superblock copies, as a list of (physical offset, bytes) writes. Nothing here touches a
//! device, so images can be built and checked in memory.

use super::layout::{Layout, PlannedChunk};
use super::options::MkfsOptions;
use crate::format::block::{build_leaf, BlockId, LeafItems};
use crate::format::consts::{
    compat_ro, incompat, key, objectid, super_mirror_offset, HEADER_FLAG_WRITTEN, STRIPE_LEN,
    SUPER_MIRRORS, SUPER_SIZE,
};
use crate::format::csum::name_hash;
use crate::format::items::{
    dir_item, free_space_info, inode_ref, tree_block_extent, BlockGroupItem, Chunk, DevExtent,
    DevItem, InodeItem, RootItem, Stripe, Timespec,
};
use crate::format::{BackupRoot, Key, Superblock};
use uuid::Uuid;

/// The generation every block of a new filesystem is written in.
pub const GENERATION: u64 = 1;
/// Device id of the only device.
const DEVID: u64 = 1;

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

struct Trees {
    nodesize: u64,
    blocks: Vec<(u64, u64)>,
}

impl Trees {
    fn addr(&self, owner: u64) -> u64 {
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
    let used_in = |c: &PlannedChunk| {
        trees
            .blocks
            .iter()
            .filter(|(_, a)| *a >= c.logical && *a < c.logical + c.length)
            .count() as u64
            * nodesize
    };

    let mut contents: Vec<(u64, LeafItems)> = Vec::new();
    // Chunk tree: the device and every chunk.
    let mut items = vec![(
        Key::new(objectid::DEV_ITEMS, key::DEV_ITEM, DEVID),
        dev_item.to_bytes(),
    )];
    for (c, chunk) in &chunks {
        items.push((
            Key::new(objectid::FIRST_CHUNK_TREE, key::CHUNK_ITEM, c.logical),
            chunk.to_bytes(),
        ));
    }
    contents.push((objectid::CHUNK_TREE, items));
    // Device tree: one extent per copy of each chunk.
    let mut items = Vec::new();
    for (c, _) in &chunks {
        for &phys in &c.stripes {
            let de = DevExtent {
                chunk_offset: c.logical,
                length: c.length,
                chunk_tree_uuid: id.chunk_tree_uuid,
            };
            items.push((Key::new(DEVID, key::DEV_EXTENT, phys), de.to_bytes()));
        }
    }
    contents.push((objectid::DEV_TREE, items));
    // FS and data relocation trees: an empty root directory each.
    let time = Timespec {
        sec: id.time,
        nsec: 0,
    };
    let root_dir = |nbytes| InodeItem {
        generation: GENERATION,
        size: 0,
        nbytes,
        nlink: 1,
        mode: 0o40755,
        time,
        otime: time,
    };
    for (tree, nbytes) in [
        (objectid::FS_TREE, nodesize),
        (objectid::DATA_RELOC_TREE, 0),
    ] {
        contents.push((
            tree,
            vec![
                (
                    Key::new(objectid::FIRST_FREE, key::INODE_ITEM, 0),
                    root_dir(nbytes).to_bytes(),
                ),
                (
                    Key::new(objectid::FIRST_FREE, key::INODE_REF, objectid::FIRST_FREE),
                    inode_ref(0, b".."),
                ),
            ],
        ));
    }
    contents.push((objectid::CSUM_TREE, Vec::new()));
    // UUID tree: the top-level subvolume's uuid.
    let u = id.subvol_uuid.as_bytes();
    let uuid_key = Key::new(
        u64::from_le_bytes(u[..8].try_into().expect("8")),
        key::UUID_KEY_SUBVOL,
        u64::from_le_bytes(u[8..].try_into().expect("8")),
    );
    contents.push((
        objectid::UUID_TREE,
        vec![(uuid_key, objectid::FS_TREE.to_le_bytes().to_vec())],
    ));
    // Extent tree: block groups and one extent item per tree block.
    let mut items = Vec::new();
    for (c, _) in &chunks {
        let bgi = BlockGroupItem {
            used: used_in(c),
            flags: c.flags,
        };
        items.push((
            Key::new(c.logical, key::BLOCK_GROUP_ITEM, c.length),
            bgi.to_bytes(),
        ));
    }
    for &(owner, addr) in &trees.blocks {
        let first_key = Key::default();
        items.push(tree_block_extent(
            addr,
            nodesize,
            GENERATION,
            owner,
            first_key,
            opts.features.skinny_metadata,
        ));
    }
    contents.push((objectid::EXTENT_TREE, items));
    // Free-space tree: the complement of the tree blocks in each block group.
    if opts.features.free_space_tree {
        let mut items = Vec::new();
        for (c, _) in &chunks {
            let mut used: Vec<u64> = trees
                .blocks
                .iter()
                .map(|(_, a)| *a)
                .filter(|a| *a >= c.logical && *a < c.logical + c.length)
                .collect();
            used.sort_unstable();
            let mut free = Vec::new();
            let mut cursor = c.logical;
            for a in used {
                if a > cursor {
                    free.push((cursor, a - cursor));
                }
                cursor = a + nodesize;
            }
            if cursor < c.logical + c.length {
                free.push((cursor, c.logical + c.length - cursor));
            }
            items.push((
                Key::new(c.logical, key::FREE_SPACE_INFO, c.length),
                free_space_info(free.len() as u32),
            ));
            for (s, l) in free {
                items.push((Key::new(s, key::FREE_SPACE_EXTENT, l), Vec::new()));
            }
        }
        contents.push((objectid::FREE_SPACE_TREE, items));
    }
    // Root tree: a root item per tree but itself and the chunk tree, and the root directory
    // with its "default" entry pointing at the top-level subvolume.
    let mut items = Vec::new();
    for &(owner, addr) in &trees.blocks {
        if owner == objectid::ROOT_TREE || owner == objectid::CHUNK_TREE {
            continue;
        }
        let subvol = owner == objectid::FS_TREE || owner == objectid::DATA_RELOC_TREE;
        let ri = RootItem {
            inode: InodeItem {
                generation: GENERATION,
                size: 3,
                nbytes: nodesize,
                nlink: 1,
                mode: 0o40755,
                ..Default::default()
            },
            generation: GENERATION,
            root_dirid: if subvol { objectid::FIRST_FREE } else { 0 },
            bytenr: addr,
            bytes_used: nodesize,
            refs: 1,
            level: 0,
            uuid: if owner == objectid::FS_TREE {
                id.subvol_uuid
            } else {
                Uuid::nil()
            },
            time: if owner == objectid::FS_TREE {
                time
            } else {
                Timespec::default()
            },
        };
        items.push((Key::new(owner, key::ROOT_ITEM, 0), ri.to_bytes()));
    }
    let dir = objectid::ROOT_TREE_DIR;
    items.push((
        Key::new(dir, key::INODE_ITEM, 0),
        root_dir(nodesize).to_bytes(),
    ));
    items.push((Key::new(dir, key::INODE_REF, dir), inode_ref(0, b"..")));
    items.push((
        Key::new(dir, key::DIR_ITEM, name_hash(b"default") as u64),
        dir_item(
            Key::new(objectid::FS_TREE, key::ROOT_ITEM, u64::MAX),
            b"default",
        ),
    ));
    items.push((
        Key::new(objectid::FS_TREE, key::INODE_REF, dir),
        inode_ref(0, b"default"),
    ));
    contents.push((objectid::ROOT_TREE, items));

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
