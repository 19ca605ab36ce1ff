//! `features/`: the on-disk features this filesystem has enabled.

use super::FsSysfs;
use crate::error::Result;
use std::fmt;

/// An on-disk feature, by the name sysfs gives it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum Feature {
    /// `mixed_backref`.
    MixedBackref,
    /// `default_subvol`.
    DefaultSubvol,
    /// `mixed_groups`: data and metadata share block groups.
    MixedGroups,
    /// `compress_lzo`.
    CompressLzo,
    /// `compress_zstd`.
    CompressZstd,
    /// `big_metadata`: nodes larger than a page.
    BigMetadata,
    /// `extended_iref`: more hard links per file.
    ExtendedIref,
    /// `raid56`.
    Raid56,
    /// `skinny_metadata`.
    SkinnyMetadata,
    /// `no_holes`.
    NoHoles,
    /// `metadata_uuid`.
    MetadataUuid,
    /// `raid1c34`.
    Raid1c34,
    /// `zoned`.
    Zoned,
    /// `free_space_tree`.
    FreeSpaceTree,
    /// `block_group_tree`.
    BlockGroupTree,
    /// `simple_quota`.
    SimpleQuota,
    /// `raid_stripe_tree`.
    RaidStripeTree,
    /// `verity`.
    Verity,
    /// Another name.
    Other(String),
}

impl Feature {
    /// The feature of a sysfs file name.
    pub fn from_name(name: &str) -> Feature {
        match name {
            "mixed_backref" => Feature::MixedBackref,
            "default_subvol" => Feature::DefaultSubvol,
            "mixed_groups" => Feature::MixedGroups,
            "compress_lzo" => Feature::CompressLzo,
            "compress_zstd" => Feature::CompressZstd,
            "big_metadata" => Feature::BigMetadata,
            "extended_iref" => Feature::ExtendedIref,
            "raid56" => Feature::Raid56,
            "skinny_metadata" => Feature::SkinnyMetadata,
            "no_holes" => Feature::NoHoles,
            "metadata_uuid" => Feature::MetadataUuid,
            "raid1c34" => Feature::Raid1c34,
            "zoned" => Feature::Zoned,
            "free_space_tree" => Feature::FreeSpaceTree,
            "block_group_tree" => Feature::BlockGroupTree,
            "simple_quota" => Feature::SimpleQuota,
            "raid_stripe_tree" => Feature::RaidStripeTree,
            "verity" => Feature::Verity,
            other => Feature::Other(other.to_string()),
        }
    }

    /// The sysfs file name.
    pub fn name(&self) -> &str {
        match self {
            Feature::MixedBackref => "mixed_backref",
            Feature::DefaultSubvol => "default_subvol",
            Feature::MixedGroups => "mixed_groups",
            Feature::CompressLzo => "compress_lzo",
            Feature::CompressZstd => "compress_zstd",
            Feature::BigMetadata => "big_metadata",
            Feature::ExtendedIref => "extended_iref",
            Feature::Raid56 => "raid56",
            Feature::SkinnyMetadata => "skinny_metadata",
            Feature::NoHoles => "no_holes",
            Feature::MetadataUuid => "metadata_uuid",
            Feature::Raid1c34 => "raid1c34",
            Feature::Zoned => "zoned",
            Feature::FreeSpaceTree => "free_space_tree",
            Feature::BlockGroupTree => "block_group_tree",
            Feature::SimpleQuota => "simple_quota",
            Feature::RaidStripeTree => "raid_stripe_tree",
            Feature::Verity => "verity",
            Feature::Other(name) => name,
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FsSysfs {
    /// The features this filesystem has enabled (files of `features/` that read `1`; sysfs
    /// also lists features that could be turned on online, reading `0`), sorted; `None` when
    /// there is no `features/` directory.
    pub fn features(&self) -> Result<Option<Vec<Feature>>> {
        let Some(names) = self.knob("features").dir_names()? else {
            return Ok(None);
        };
        let mut enabled = Vec::new();
        for name in names {
            if self.knob(format!("features/{name}")).flag()? == Some(true) {
                enabled.push(Feature::from_name(&name));
            }
        }
        Ok(Some(enabled))
    }
}

#[cfg(test)]
mod tests {
    use super::Feature;

    #[test]
    fn names_round_trip() {
        for name in ["no_holes", "free_space_tree", "raid1c34", "something_new"] {
            assert_eq!(Feature::from_name(name).name(), name);
        }
        assert_eq!(Feature::from_name("zoned"), Feature::Zoned);
    }
}
