//! The btrfs on-disk format, for writing a new filesystem and reading one back.
//!
//! The uapi header `linux/btrfs_tree.h` lacks the superblock, tree block header, item, key
//! pointer and backup root; they are defined here. Every structure is encoded by writing
//! little-endian fields at fixed offsets (no `unsafe`), with compile-time size assertions, and
//! checked against the uapi structs where those exist.
//!
//! * [`superblock`]: [`Superblock`] and [`BackupRoot`];
//! * [`block`]: tree block [`Header`], leaf [`Item`], building and parsing blocks;
//! * [`key`]: [`Key`] and [`KeyPtr`];
//! * [`items`]: item payloads (root, inode, device, chunk, extent, block group...);
//! * [`csum`]: the four checksum algorithms;
//! * [`image`]: reading a whole single-device image back, for self-checks.
//!
//! Decoders read with checked field reads: bytes too short for a field are a [`ShortRead`]
//! (or `None`, for item decoders documented so), never a panic.

pub mod block;
pub mod consts;
pub mod csum;
pub mod image;
pub mod items;
pub mod key;
pub mod superblock;

pub use crate::le::ShortRead;
pub use block::{BlockContents, BlockId, Header, Item, LeafItems};
pub use key::{Key, KeyPtr};
pub use superblock::{BackupRoot, Superblock};
