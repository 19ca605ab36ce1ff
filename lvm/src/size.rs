//! Byte sizes: the typed unit for every size in this crate, and the parser for lvm2-style sizes.
//!
//! Both live in the workspace's support crate, opskit: [`Bytes`] is its `ByteSize` (the type
//! btrfs-kit uses too, so sizes pass between the crates without conversion), and
//! [`Bytes::parse_lvm2`] its lvm2 adapter (`opskit::lvm2`).

pub(crate) use opskit::lvm2::{parse_signed, Sign};
pub use opskit::lvm2::{SizeParseError, SECTOR};
/// A size in bytes.
///
/// Every size the crate reports or accepts is a `Bytes`, never a raw integer, so a count of
/// extents or sectors cannot be mistaken for a byte count. It is the same type as btrfs-kit's
/// `ByteSize`.
pub use opskit::ByteSize as Bytes;

/// One KiB.
pub const KIB: u64 = 1024;
/// One MiB.
pub const MIB: u64 = KIB * 1024;
/// One GiB.
pub const GIB: u64 = MIB * 1024;
