//! The items of each tree of a new filesystem, one function per tree.

use super::{Identity, Trees, DEVID, GENERATION};
use crate::format::block::LeafItems;
use crate::format::consts::{key, objectid};
use crate::format::csum::name_hash;
use crate::format::items::{
    dir_item, free_space_info, inode_ref, tree_block_extent, BlockGroupItem, Chunk, DevExtent,
    DevItem, InodeItem, RootItem, Timespec,
};
use crate::format::Key;
use crate::mkfs::layout::PlannedChunk;
use crate::mkfs::options::MkfsOptions;
use uuid::Uuid;

/// Everything the tree builders need.
pub(super) struct Ctx<'a> {
    pub opts: &'a MkfsOptions,
    pub id: &'a Identity,
    pub trees: &'a Trees,
    pub chunks: &'a [(&'a PlannedChunk, Chunk)],
    pub dev_item: &'a DevItem,
}

impl Ctx<'_> {
    fn nodesize(&self) -> u64 {
        self.trees.nodesize
    }

    /// Addresses of the tree blocks inside chunk `c`, ascending.
    fn blocks_in(&self, c: &PlannedChunk) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .trees
            .blocks
            .iter()
            .map(|(_, a)| *a)
            .filter(|a| *a >= c.logical && *a < c.logical + c.length)
            .collect();
        v.sort_unstable();
        v
    }

    fn time(&self) -> Timespec {
        Timespec {
            sec: self.id.time,
            nsec: 0,
        }
    }

    /// An empty root directory inode (mode 040755, one link).
    fn root_dir(&self, nbytes: u64) -> InodeItem {
        InodeItem {
            generation: GENERATION,
            size: 0,
            nbytes,
            nlink: 1,
            mode: 0o40755,
            time: self.time(),
            otime: self.time(),
        }
    }
}

/// Every tree's items, by tree id.
pub(super) fn contents(ctx: &Ctx) -> Vec<(u64, LeafItems)> {
    let nodesize = ctx.nodesize();
    let mut out = vec![
        (objectid::CHUNK_TREE, chunk_tree(ctx)),
        (objectid::DEV_TREE, dev_tree(ctx)),
        (objectid::FS_TREE, subvolume_tree(ctx, nodesize)),
        (objectid::DATA_RELOC_TREE, subvolume_tree(ctx, 0)),
        (objectid::CSUM_TREE, Vec::new()),
        (objectid::UUID_TREE, uuid_tree(ctx)),
        (objectid::EXTENT_TREE, extent_tree(ctx)),
    ];
    if ctx.opts.features.free_space_tree {
        out.push((objectid::FREE_SPACE_TREE, free_space_tree(ctx)));
    }
    out.push((objectid::ROOT_TREE, root_tree(ctx)));
    out
}

/// The device and every chunk.
fn chunk_tree(ctx: &Ctx) -> LeafItems {
    let mut items = vec![(
        Key::new(objectid::DEV_ITEMS, key::DEV_ITEM, DEVID),
        ctx.dev_item.to_bytes(),
    )];
    for (c, chunk) in ctx.chunks {
        items.push((
            Key::new(objectid::FIRST_CHUNK_TREE, key::CHUNK_ITEM, c.logical),
            chunk.to_bytes(),
        ));
    }
    items
}

/// One device extent per copy of each chunk.
fn dev_tree(ctx: &Ctx) -> LeafItems {
    let mut items = Vec::new();
    for (c, _) in ctx.chunks {
        for &phys in &c.stripes {
            let de = DevExtent {
                chunk_offset: c.logical,
                length: c.length,
                chunk_tree_uuid: ctx.id.chunk_tree_uuid,
            };
            items.push((Key::new(DEVID, key::DEV_EXTENT, phys), de.to_bytes()));
        }
    }
    items
}

/// The fs tree or the data relocation tree: an empty root directory, inode 256.
fn subvolume_tree(ctx: &Ctx, nbytes: u64) -> LeafItems {
    vec![
        (
            Key::new(objectid::FIRST_FREE, key::INODE_ITEM, 0),
            ctx.root_dir(nbytes).to_bytes(),
        ),
        (
            Key::new(objectid::FIRST_FREE, key::INODE_REF, objectid::FIRST_FREE),
            inode_ref(0, b".."),
        ),
    ]
}

/// The top-level subvolume's uuid.
fn uuid_tree(ctx: &Ctx) -> LeafItems {
    let u = ctx.id.subvol_uuid.as_bytes();
    let uuid_key = Key::new(
        u64::from_le_bytes(u[..8].try_into().expect("8")),
        key::UUID_KEY_SUBVOL,
        u64::from_le_bytes(u[8..].try_into().expect("8")),
    );
    vec![(uuid_key, objectid::FS_TREE.to_le_bytes().to_vec())]
}

/// A block group per chunk and an extent item per tree block.
fn extent_tree(ctx: &Ctx) -> LeafItems {
    let nodesize = ctx.nodesize();
    let mut items = Vec::new();
    for (c, _) in ctx.chunks {
        let bgi = BlockGroupItem {
            used: ctx.blocks_in(c).len() as u64 * nodesize,
            flags: c.flags,
        };
        items.push((
            Key::new(c.logical, key::BLOCK_GROUP_ITEM, c.length),
            bgi.to_bytes(),
        ));
    }
    for &(owner, addr) in &ctx.trees.blocks {
        items.push(tree_block_extent(
            addr,
            nodesize,
            GENERATION,
            owner,
            Key::default(),
            ctx.opts.features.skinny_metadata,
        ));
    }
    items
}

/// Per block group: its info and the complement of its tree blocks as free extents.
fn free_space_tree(ctx: &Ctx) -> LeafItems {
    let nodesize = ctx.nodesize();
    let mut items = Vec::new();
    for (c, _) in ctx.chunks {
        let mut free = Vec::new();
        let mut cursor = c.logical;
        for a in ctx.blocks_in(c) {
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
    items
}

/// A root item per tree but the root and chunk trees, and the root directory (object 6)
/// whose "default" entry points at the top-level subvolume.
fn root_tree(ctx: &Ctx) -> LeafItems {
    let nodesize = ctx.nodesize();
    let mut items = Vec::new();
    for &(owner, addr) in &ctx.trees.blocks {
        if owner == objectid::ROOT_TREE || owner == objectid::CHUNK_TREE {
            continue;
        }
        let subvol = owner == objectid::FS_TREE || owner == objectid::DATA_RELOC_TREE;
        let top = owner == objectid::FS_TREE;
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
            uuid: if top { ctx.id.subvol_uuid } else { Uuid::nil() },
            time: if top { ctx.time() } else { Timespec::default() },
        };
        items.push((Key::new(owner, key::ROOT_ITEM, 0), ri.to_bytes()));
    }
    let dir = objectid::ROOT_TREE_DIR;
    items.push((
        Key::new(dir, key::INODE_ITEM, 0),
        ctx.root_dir(nodesize).to_bytes(),
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
    items
}
