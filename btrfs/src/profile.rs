//! Block group kinds and RAID profiles, decoded from the kernel's block group flags.

use btrfs_sys as sys;
use std::fmt;
use std::str::FromStr;

/// What a block group (chunk) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "kebab-case")
)]
pub enum BlockGroupKind {
    /// File data.
    Data,
    /// Metadata (trees).
    Metadata,
    /// The chunk tree.
    System,
    /// Data and metadata in the same block groups (small filesystems).
    Mixed,
    /// The global block reserve: metadata space kept back for emergencies.
    GlobalReserve,
}

impl BlockGroupKind {
    /// Decodes the type bits of block group flags (`GLOBAL_RSV` takes precedence).
    pub(crate) fn from_flags(flags: u64) -> Option<Self> {
        if flags & sys::BTRFS_SPACE_INFO_GLOBAL_RSV != 0 {
            return Some(BlockGroupKind::GlobalReserve);
        }
        let data = flags & sys::BTRFS_BLOCK_GROUP_DATA as u64 != 0;
        let meta = flags & sys::BTRFS_BLOCK_GROUP_METADATA as u64 != 0;
        let system = flags & sys::BTRFS_BLOCK_GROUP_SYSTEM as u64 != 0;
        match (data, meta, system) {
            (true, true, _) => Some(BlockGroupKind::Mixed),
            (true, false, _) => Some(BlockGroupKind::Data),
            (false, true, _) => Some(BlockGroupKind::Metadata),
            (false, false, true) => Some(BlockGroupKind::System),
            _ => None,
        }
    }

    /// Whether this kind holds file data (data or mixed).
    pub fn holds_data(self) -> bool {
        matches!(self, BlockGroupKind::Data | BlockGroupKind::Mixed)
    }
}

impl fmt::Display for BlockGroupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlockGroupKind::Data => "Data",
            BlockGroupKind::Metadata => "Metadata",
            BlockGroupKind::System => "System",
            BlockGroupKind::Mixed => "Data+Metadata",
            BlockGroupKind::GlobalReserve => "GlobalReserve",
        })
    }
}

/// A block group profile: how many copies or stripes a chunk has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum Profile {
    /// One copy.
    Single,
    /// Two copies on the same device.
    Dup,
    /// Striped, no redundancy.
    Raid0,
    /// Two copies on different devices.
    Raid1,
    /// Three copies on different devices.
    Raid1c3,
    /// Four copies on different devices.
    Raid1c4,
    /// Striped mirrors.
    Raid10,
    /// Striped with one parity.
    Raid5,
    /// Striped with two parities.
    Raid6,
}

impl Profile {
    /// Every profile, in the order btrfs-progs lists them.
    pub const ALL: [Profile; 9] = [
        Profile::Single,
        Profile::Dup,
        Profile::Raid0,
        Profile::Raid1,
        Profile::Raid1c3,
        Profile::Raid1c4,
        Profile::Raid10,
        Profile::Raid5,
        Profile::Raid6,
    ];

    /// Decodes the profile bits of block group flags (no bit set means single).
    pub(crate) fn from_flags(flags: u64) -> Self {
        let p = flags & sys::BTRFS_BLOCK_GROUP_PROFILE_MASK as u64;
        Profile::ALL
            .into_iter()
            .find(|profile| profile.block_group_bit() != 0 && p & profile.block_group_bit() != 0)
            .unwrap_or(Profile::Single)
    }

    /// The profile's bit in block group flags (0 for single, which has none).
    pub(crate) fn block_group_bit(self) -> u64 {
        (match self {
            Profile::Single => 0,
            Profile::Dup => sys::BTRFS_BLOCK_GROUP_DUP,
            Profile::Raid0 => sys::BTRFS_BLOCK_GROUP_RAID0,
            Profile::Raid1 => sys::BTRFS_BLOCK_GROUP_RAID1,
            Profile::Raid1c3 => sys::BTRFS_BLOCK_GROUP_RAID1C3,
            Profile::Raid1c4 => sys::BTRFS_BLOCK_GROUP_RAID1C4,
            Profile::Raid10 => sys::BTRFS_BLOCK_GROUP_RAID10,
            Profile::Raid5 => sys::BTRFS_BLOCK_GROUP_RAID5,
            Profile::Raid6 => sys::BTRFS_BLOCK_GROUP_RAID6,
        }) as u64
    }

    /// The profile's bit in balance filters (`profiles=`, `convert=`): single has its own
    /// "available allocation" bit there.
    pub(crate) fn balance_bit(self) -> u64 {
        match self {
            Profile::Single => sys::BTRFS_AVAIL_ALLOC_BIT_SINGLE,
            other => other.block_group_bit(),
        }
    }

    /// Decodes a balance filter profile mask.
    pub(crate) fn from_balance_mask(mask: u64) -> Vec<Profile> {
        Profile::ALL
            .into_iter()
            .filter(|p| mask & p.balance_bit() != 0)
            .collect()
    }

    /// How many full copies of the data the profile keeps (1 for RAID0/5/6, whose parity is
    /// accounted separately).
    pub fn copies(self) -> u64 {
        match self {
            Profile::Dup | Profile::Raid1 | Profile::Raid10 => 2,
            Profile::Raid1c3 => 3,
            Profile::Raid1c4 => 4,
            _ => 1,
        }
    }

    /// Parity stripes per chunk.
    pub fn parity(self) -> u64 {
        match self {
            Profile::Raid5 => 1,
            Profile::Raid6 => 2,
            _ => 0,
        }
    }

    /// How many device failures the profile tolerates.
    pub fn tolerated_failures(self) -> u64 {
        match self {
            Profile::Single | Profile::Raid0 | Profile::Dup => 0,
            Profile::Raid5 => 1,
            other => other.copies().max(other.parity() + 1) - 1,
        }
    }

    /// The name btrfs-progs uses (`single`, `dup`, `raid1c3`...).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Single => "single",
            Profile::Dup => "dup",
            Profile::Raid0 => "raid0",
            Profile::Raid1 => "raid1",
            Profile::Raid1c3 => "raid1c3",
            Profile::Raid1c4 => "raid1c4",
            Profile::Raid10 => "raid10",
            Profile::Raid5 => "raid5",
            Profile::Raid6 => "raid6",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing a [`Profile`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile {0:?}; expected one of single, dup, raid0, raid1, raid1c3, raid1c4, raid10, raid5, raid6")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == lower)
            .ok_or_else(|| UnknownProfile(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_kind_and_profile_from_flags() {
        let flags = (sys::BTRFS_BLOCK_GROUP_METADATA | sys::BTRFS_BLOCK_GROUP_DUP) as u64;
        assert_eq!(
            BlockGroupKind::from_flags(flags),
            Some(BlockGroupKind::Metadata)
        );
        assert_eq!(Profile::from_flags(flags), Profile::Dup);
        assert_eq!(
            Profile::from_flags(sys::BTRFS_BLOCK_GROUP_DATA as u64),
            Profile::Single
        );
        let mixed = (sys::BTRFS_BLOCK_GROUP_DATA | sys::BTRFS_BLOCK_GROUP_METADATA) as u64;
        assert_eq!(
            BlockGroupKind::from_flags(mixed),
            Some(BlockGroupKind::Mixed)
        );
        let rsv = sys::BTRFS_SPACE_INFO_GLOBAL_RSV | sys::BTRFS_BLOCK_GROUP_METADATA as u64;
        assert_eq!(
            BlockGroupKind::from_flags(rsv),
            Some(BlockGroupKind::GlobalReserve)
        );
    }

    #[test]
    fn parses_and_round_trips_names_and_balance_bits() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>(), Ok(p));
            assert_eq!(Profile::from_balance_mask(p.balance_bit()), vec![p]);
        }
        assert!("raid7".parse::<Profile>().is_err());
        assert_eq!(Profile::Raid1c3.tolerated_failures(), 2);
        assert_eq!(Profile::Raid6.tolerated_failures(), 2);
        assert_eq!(Profile::Dup.tolerated_failures(), 0);
    }
}
