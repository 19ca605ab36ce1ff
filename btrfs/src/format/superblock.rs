//! The superblock (4096 bytes) and its backup roots (168 bytes each).
//!
//! The superblock sits at 64 KiB, with copies at 64 MiB and 256 GiB when the device is large
//! enough. Each copy stores its own offset in `bytenr` and so has its own checksum. It embeds
//! the device item of the device it is on and the system chunk array, which maps the chunks
//! holding the chunk tree.

use super::consts::{SUPER_MAGIC, SUPER_SIZE};
use super::csum::CSUM_SIZE;
use super::items::DevItem;
use crate::info::ChecksumType;
use crate::le::{
    bytes_at, put_bytes, put_u16, put_u32, put_u64, put_u8, u16_at, u32_at, u64_at, u8_at, uuid_at,
};
use uuid::Uuid;

/// Offsets of the superblock's fields.
mod off {
    pub const FSID: usize = 0x20;
    pub const BYTENR: usize = 0x30;
    pub const FLAGS: usize = 0x38;
    pub const MAGIC: usize = 0x40;
    pub const GENERATION: usize = 0x48;
    pub const ROOT: usize = 0x50;
    pub const CHUNK_ROOT: usize = 0x58;
    pub const TOTAL_BYTES: usize = 0x70;
    pub const BYTES_USED: usize = 0x78;
    pub const ROOT_DIR_OBJECTID: usize = 0x80;
    pub const NUM_DEVICES: usize = 0x88;
    pub const SECTORSIZE: usize = 0x90;
    pub const NODESIZE: usize = 0x94;
    pub const LEAFSIZE: usize = 0x98;
    pub const STRIPESIZE: usize = 0x9c;
    pub const SYS_CHUNK_ARRAY_SIZE: usize = 0xa0;
    pub const CHUNK_ROOT_GENERATION: usize = 0xa4;
    pub const COMPAT_FLAGS: usize = 0xac;
    pub const COMPAT_RO_FLAGS: usize = 0xb4;
    pub const INCOMPAT_FLAGS: usize = 0xbc;
    pub const CSUM_TYPE: usize = 0xc4;
    pub const ROOT_LEVEL: usize = 0xc6;
    pub const CHUNK_ROOT_LEVEL: usize = 0xc7;
    pub const DEV_ITEM: usize = 0xc9;
    pub const LABEL: usize = 0x12b;
    pub const CACHE_GENERATION: usize = 0x22b;
    pub const UUID_TREE_GENERATION: usize = 0x233;
    pub const METADATA_UUID: usize = 0x23b;
    pub const RESERVED: usize = 0x253;
    pub const SYS_CHUNK_ARRAY: usize = 0x32b;
    pub const SUPER_ROOTS: usize = 0xb2b;
}

/// Bytes of the label field, NUL terminator included.
pub const LABEL_SIZE: usize = 256;
/// Bytes of the system chunk array.
pub const SYS_CHUNK_ARRAY_SIZE: usize = 2048;
/// Number of backup root slots.
pub const NUM_BACKUP_ROOTS: usize = 4;

// The layout adds up: dev item and label follow the fixed fields; 27 reserved u64s precede the
// system chunk array; four backup roots and 565 bytes of padding end the block.
const _: () = assert!(off::DEV_ITEM + DevItem::SIZE == off::LABEL);
const _: () = assert!(off::LABEL + LABEL_SIZE == off::CACHE_GENERATION);
const _: () = assert!(off::METADATA_UUID + 16 + 8 == off::RESERVED);
const _: () = assert!(off::RESERVED + 27 * 8 == off::SYS_CHUNK_ARRAY);
const _: () = assert!(off::SYS_CHUNK_ARRAY + SYS_CHUNK_ARRAY_SIZE == off::SUPER_ROOTS);
const _: () = assert!(off::SUPER_ROOTS + NUM_BACKUP_ROOTS * BackupRoot::SIZE + 565 == SUPER_SIZE);
const _: () = assert!(SUPER_SIZE == 4096);

/// One backup root slot: where the main trees were at some generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackupRoot {
    /// Root tree block and generation.
    pub tree_root: (u64, u64),
    /// Chunk tree block and generation.
    pub chunk_root: (u64, u64),
    /// Extent tree block and generation.
    pub extent_root: (u64, u64),
    /// FS tree block and generation.
    pub fs_root: (u64, u64),
    /// Device tree block and generation.
    pub dev_root: (u64, u64),
    /// Checksum tree block and generation.
    pub csum_root: (u64, u64),
    /// Filesystem size.
    pub total_bytes: u64,
    /// Bytes used.
    pub bytes_used: u64,
    /// Number of devices.
    pub num_devices: u64,
}

impl BackupRoot {
    /// Encoded size: 6 (block, generation) pairs, 3 counters, 4 unused u64s, 6 levels and 10
    /// unused bytes.
    pub const SIZE: usize = 6 * 16 + 3 * 8 + 4 * 8 + 6 + 10;

    /// Writes the slot at `off`; every level is 0 (single-leaf trees).
    pub fn encode(&self, buf: &mut [u8], off: usize) {
        let pairs = [
            self.tree_root,
            self.chunk_root,
            self.extent_root,
            self.fs_root,
            self.dev_root,
            self.csum_root,
        ];
        for (i, (block, gen)) in pairs.iter().enumerate() {
            put_u64(buf, off + i * 16, *block);
            put_u64(buf, off + i * 16 + 8, *gen);
        }
        put_u64(buf, off + 96, self.total_bytes);
        put_u64(buf, off + 104, self.bytes_used);
        put_u64(buf, off + 112, self.num_devices);
    }
}
const _: () = assert!(BackupRoot::SIZE == 168);

/// The superblock's fields this crate writes and reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// Filesystem uuid.
    pub fsid: Uuid,
    /// Offset of this copy.
    pub bytenr: u64,
    /// Superblock flags.
    pub flags: u64,
    /// Transaction id.
    pub generation: u64,
    /// Logical address of the root tree.
    pub root: u64,
    /// Logical address of the chunk tree.
    pub chunk_root: u64,
    /// Filesystem size.
    pub total_bytes: u64,
    /// Bytes allocated to extents.
    pub bytes_used: u64,
    /// Object id of the root tree directory (6).
    pub root_dir_objectid: u64,
    /// Number of devices.
    pub num_devices: u64,
    /// Sector size.
    pub sectorsize: u32,
    /// Tree block size.
    pub nodesize: u32,
    /// Stripe size.
    pub stripesize: u32,
    /// Generation of the chunk tree.
    pub chunk_root_generation: u64,
    /// Compatible features.
    pub compat_flags: u64,
    /// Read-only-compatible features.
    pub compat_ro_flags: u64,
    /// Incompatible features.
    pub incompat_flags: u64,
    /// Checksum algorithm.
    pub csum_type: ChecksumType,
    /// Root tree level.
    pub root_level: u8,
    /// Chunk tree level.
    pub chunk_root_level: u8,
    /// This device.
    pub dev_item: DevItem,
    /// Label (at most 255 bytes).
    pub label: String,
    /// Space cache generation (0 with the free-space tree).
    pub cache_generation: u64,
    /// UUID tree generation.
    pub uuid_tree_generation: u64,
    /// The system chunk array: (key, chunk) pairs, encoded.
    pub sys_chunk_array: Vec<u8>,
    /// Backup roots.
    pub backup_roots: [BackupRoot; NUM_BACKUP_ROOTS],
}

/// A superblock that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSuperblock {
    /// No btrfs magic.
    #[error("no btrfs magic")]
    NoMagic,
    /// Unknown checksum algorithm.
    #[error("unknown checksum type {0}")]
    UnknownChecksum(u16),
    /// The checksum does not match.
    #[error("checksum mismatch")]
    Checksum,
    /// A field is out of range.
    #[error("{0}")]
    Field(&'static str),
}

impl Superblock {
    /// Encodes and checksums the superblock.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; SUPER_SIZE];
        put_bytes(&mut b, off::FSID, self.fsid.as_bytes());
        put_u64(&mut b, off::BYTENR, self.bytenr);
        put_u64(&mut b, off::FLAGS, self.flags);
        put_u64(&mut b, off::MAGIC, SUPER_MAGIC);
        put_u64(&mut b, off::GENERATION, self.generation);
        put_u64(&mut b, off::ROOT, self.root);
        put_u64(&mut b, off::CHUNK_ROOT, self.chunk_root);
        put_u64(&mut b, off::TOTAL_BYTES, self.total_bytes);
        put_u64(&mut b, off::BYTES_USED, self.bytes_used);
        put_u64(&mut b, off::ROOT_DIR_OBJECTID, self.root_dir_objectid);
        put_u64(&mut b, off::NUM_DEVICES, self.num_devices);
        put_u32(&mut b, off::SECTORSIZE, self.sectorsize);
        put_u32(&mut b, off::NODESIZE, self.nodesize);
        put_u32(&mut b, off::LEAFSIZE, self.nodesize);
        put_u32(&mut b, off::STRIPESIZE, self.stripesize);
        put_u32(
            &mut b,
            off::SYS_CHUNK_ARRAY_SIZE,
            self.sys_chunk_array.len() as u32,
        );
        put_u64(
            &mut b,
            off::CHUNK_ROOT_GENERATION,
            self.chunk_root_generation,
        );
        put_u64(&mut b, off::COMPAT_FLAGS, self.compat_flags);
        put_u64(&mut b, off::COMPAT_RO_FLAGS, self.compat_ro_flags);
        put_u64(&mut b, off::INCOMPAT_FLAGS, self.incompat_flags);
        put_u16(
            &mut b,
            off::CSUM_TYPE,
            self.csum_type.to_raw().expect("known checksum"),
        );
        put_u8(&mut b, off::ROOT_LEVEL, self.root_level);
        put_u8(&mut b, off::CHUNK_ROOT_LEVEL, self.chunk_root_level);
        self.dev_item.encode(&mut b, off::DEV_ITEM);
        let label = self.label.as_bytes();
        put_bytes(
            &mut b,
            off::LABEL,
            &label[..label.len().min(LABEL_SIZE - 1)],
        );
        put_u64(&mut b, off::CACHE_GENERATION, self.cache_generation);
        put_u64(&mut b, off::UUID_TREE_GENERATION, self.uuid_tree_generation);
        put_bytes(&mut b, off::SYS_CHUNK_ARRAY, &self.sys_chunk_array);
        for (i, r) in self.backup_roots.iter().enumerate() {
            r.encode(&mut b, off::SUPER_ROOTS + i * BackupRoot::SIZE);
        }
        let sum = self
            .csum_type
            .checksum(&b[CSUM_SIZE..])
            .expect("known checksum");
        b[..CSUM_SIZE].copy_from_slice(&sum);
        b
    }

    /// Decodes a superblock, verifying magic and checksum. Backup roots are not decoded.
    pub fn decode(b: &[u8]) -> Result<Self, BadSuperblock> {
        let short = |_| BadSuperblock::Field("short superblock");
        // Every field lies inside these SUPER_SIZE bytes (the layout is asserted above).
        let b = bytes_at(b, 0, SUPER_SIZE).map_err(short)?;
        if u64_at(b, off::MAGIC).map_err(short)? != SUPER_MAGIC {
            return Err(BadSuperblock::NoMagic);
        }
        let raw = u16_at(b, off::CSUM_TYPE).map_err(short)?;
        let csum_type = ChecksumType::from_raw(raw);
        let sum = csum_type
            .checksum(&b[CSUM_SIZE..])
            .ok_or(BadSuperblock::UnknownChecksum(raw))?;
        if b[..CSUM_SIZE] != sum {
            return Err(BadSuperblock::Checksum);
        }
        let array_size = u32_at(b, off::SYS_CHUNK_ARRAY_SIZE).map_err(short)? as usize;
        if array_size > SYS_CHUNK_ARRAY_SIZE {
            return Err(BadSuperblock::Field("sys_chunk_array_size too large"));
        }
        let label = bytes_at(b, off::LABEL, LABEL_SIZE).map_err(short)?;
        let label_len = label.iter().position(|&c| c == 0).unwrap_or(LABEL_SIZE);
        let u64_field = |at: usize| u64_at(b, at).map_err(short);
        let u32_field = |at: usize| u32_at(b, at).map_err(short);
        Ok(Superblock {
            fsid: uuid_at(b, off::FSID).map_err(short)?,
            bytenr: u64_field(off::BYTENR)?,
            flags: u64_field(off::FLAGS)?,
            generation: u64_field(off::GENERATION)?,
            root: u64_field(off::ROOT)?,
            chunk_root: u64_field(off::CHUNK_ROOT)?,
            total_bytes: u64_field(off::TOTAL_BYTES)?,
            bytes_used: u64_field(off::BYTES_USED)?,
            root_dir_objectid: u64_field(off::ROOT_DIR_OBJECTID)?,
            num_devices: u64_field(off::NUM_DEVICES)?,
            sectorsize: u32_field(off::SECTORSIZE)?,
            nodesize: u32_field(off::NODESIZE)?,
            stripesize: u32_field(off::STRIPESIZE)?,
            chunk_root_generation: u64_field(off::CHUNK_ROOT_GENERATION)?,
            compat_flags: u64_field(off::COMPAT_FLAGS)?,
            compat_ro_flags: u64_field(off::COMPAT_RO_FLAGS)?,
            incompat_flags: u64_field(off::INCOMPAT_FLAGS)?,
            csum_type,
            root_level: u8_at(b, off::ROOT_LEVEL).map_err(short)?,
            chunk_root_level: u8_at(b, off::CHUNK_ROOT_LEVEL).map_err(short)?,
            dev_item: DevItem::decode(b, off::DEV_ITEM).map_err(short)?,
            label: String::from_utf8_lossy(&label[..label_len]).into_owned(),
            cache_generation: u64_field(off::CACHE_GENERATION)?,
            uuid_tree_generation: u64_field(off::UUID_TREE_GENERATION)?,
            sys_chunk_array: bytes_at(b, off::SYS_CHUNK_ARRAY, array_size)
                .map_err(short)?
                .to_vec(),
            backup_roots: Default::default(),
        })
    }

    /// Whether `b` (at least 72 bytes from a superblock offset) carries the btrfs magic.
    pub fn has_magic(b: &[u8]) -> bool {
        u64_at(b, off::MAGIC) == Ok(SUPER_MAGIC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_corruption() {
        let sb = Superblock {
            fsid: Uuid::from_u128(42),
            bytenr: 65536,
            flags: 1,
            generation: 1,
            root: 1 << 22,
            chunk_root: 1 << 20,
            total_bytes: 1 << 30,
            bytes_used: 9 * 16384,
            root_dir_objectid: 6,
            num_devices: 1,
            sectorsize: 4096,
            nodesize: 16384,
            stripesize: 4096,
            chunk_root_generation: 1,
            compat_flags: 0,
            compat_ro_flags: 3,
            incompat_flags: 0x341,
            csum_type: ChecksumType::Sha256,
            root_level: 0,
            chunk_root_level: 0,
            dev_item: DevItem {
                devid: 1,
                total_bytes: 1 << 30,
                bytes_used: 1 << 25,
                sector_size: 4096,
                uuid: Uuid::from_u128(5),
                fsid: Uuid::from_u128(42),
            },
            label: "hello".into(),
            cache_generation: 0,
            uuid_tree_generation: 1,
            sys_chunk_array: vec![1, 2, 3],
            backup_roots: Default::default(),
        };
        let mut b = sb.to_bytes();
        assert_eq!(b.len(), 4096);
        assert_eq!(&b[0x40..0x48], b"_BHRfS_M");
        assert_eq!(Superblock::decode(&b), Ok(sb));
        b[0x12b] = b'j';
        assert_eq!(Superblock::decode(&b), Err(BadSuperblock::Checksum));
    }
}
