//! Checksums of tree blocks and superblocks: crc32c, xxhash64, sha256 and blake2b-256.
//!
//! A tree block's checksum covers its bytes from offset 32 to its end; a superblock's covers
//! bytes 32 to 4096. The result is stored at offset 0, zero-padded to 32 bytes.

use crate::info::ChecksumType;
use std::str::FromStr;

/// Bytes at the start of a block reserved for its checksum.
pub const CSUM_SIZE: usize = 32;

impl ChecksumType {
    /// The on-disk number (`csum_type` in the superblock), `None` for [`ChecksumType::Unknown`].
    pub fn to_raw(self) -> Option<u16> {
        match self {
            ChecksumType::Crc32c => Some(0),
            ChecksumType::Xxhash64 => Some(1),
            ChecksumType::Sha256 => Some(2),
            ChecksumType::Blake2b => Some(3),
            ChecksumType::Unknown(_) => None,
        }
    }

    /// Bytes of checksum this algorithm produces (4, 8, 32 or 32); 0 for unknown types.
    pub fn size(self) -> usize {
        match self {
            ChecksumType::Crc32c => 4,
            ChecksumType::Xxhash64 => 8,
            ChecksumType::Sha256 | ChecksumType::Blake2b => 32,
            ChecksumType::Unknown(_) => 0,
        }
    }

    /// The checksum of `data`, zero-padded to [`CSUM_SIZE`] bytes as stored on disk; `None` for
    /// unknown types.
    pub fn checksum(self, data: &[u8]) -> Option<[u8; CSUM_SIZE]> {
        use sha2::Digest as _;
        let mut out = [0u8; CSUM_SIZE];
        match self {
            ChecksumType::Crc32c => out[..4].copy_from_slice(&crc32c::crc32c(data).to_le_bytes()),
            ChecksumType::Xxhash64 => {
                out[..8].copy_from_slice(&xxhash_rust::xxh64::xxh64(data, 0).to_le_bytes())
            }
            ChecksumType::Sha256 => out.copy_from_slice(&sha2::Sha256::digest(data)),
            ChecksumType::Blake2b => out.copy_from_slice(&blake2::Blake2b::<
                blake2::digest::consts::U32,
            >::digest(data)),
            ChecksumType::Unknown(_) => return None,
        }
        Some(out)
    }

    /// Every algorithm this crate can compute, in on-disk number order.
    pub const ALL: [ChecksumType; 4] = [
        ChecksumType::Crc32c,
        ChecksumType::Xxhash64,
        ChecksumType::Sha256,
        ChecksumType::Blake2b,
    ];
}

/// The name given is not a checksum algorithm this crate knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown checksum algorithm {0:?}: use crc32c, xxhash64, sha256 or blake2b")]
pub struct UnknownChecksum(pub String);

impl FromStr for ChecksumType {
    type Err = UnknownChecksum;

    /// Parses `crc32c`, `xxhash64` (or `xxhash`), `sha256`, `blake2b` (or `blake2`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "crc32c" | "crc32" => Ok(ChecksumType::Crc32c),
            "xxhash64" | "xxhash" => Ok(ChecksumType::Xxhash64),
            "sha256" => Ok(ChecksumType::Sha256),
            "blake2b" | "blake2" => Ok(ChecksumType::Blake2b),
            _ => Err(UnknownChecksum(s.to_string())),
        }
    }
}

/// The btrfs name hash of directory entries: crc32c seeded with `!1`, without the final
/// inversion (the kernel's `btrfs_name_hash`).
pub fn name_hash(name: &[u8]) -> u32 {
    // crc32c_append(c, d) = !raw(!c, d); the kernel's hash is raw(!1, d).
    !crc32c::crc32c_append(1, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // Standard check values of "123456789".
        let d = b"123456789";
        let c = ChecksumType::Crc32c.checksum(d).unwrap();
        assert_eq!(u32::from_le_bytes(c[..4].try_into().unwrap()), 0xE306_9283);
        let x = ChecksumType::Xxhash64.checksum(d).unwrap();
        assert_eq!(
            u64::from_le_bytes(x[..8].try_into().unwrap()),
            0x8CB8_41DB_40E6_AE83
        );
        let s = ChecksumType::Sha256.checksum(b"abc").unwrap();
        assert_eq!(s[..4], [0xba, 0x78, 0x16, 0xbf]);
        let b = ChecksumType::Blake2b.checksum(b"").unwrap();
        assert_eq!(b[..4], [0x0e, 0x57, 0x51, 0xc0]);
        assert!(ChecksumType::Unknown(9).checksum(d).is_none());
    }

    #[test]
    fn name_hash_of_default_matches_mkfs_btrfs() {
        // The DIR_ITEM key offset mkfs.btrfs writes for "default" in the root tree directory.
        assert_eq!(name_hash(b"default"), 2_378_154_706);
    }

    #[test]
    fn parses_names_and_raw_numbers() {
        for c in ChecksumType::ALL {
            assert_eq!(c.to_string().parse::<ChecksumType>(), Ok(c));
            assert_eq!(ChecksumType::from_raw(c.to_raw().unwrap()), c);
        }
        assert!("md5".parse::<ChecksumType>().is_err());
    }
}
