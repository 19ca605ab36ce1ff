//! What a new filesystem looks like: [`MkfsOptions`] and its parts.

use crate::info::ChecksumType;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// How metadata (and system) chunks are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum MetadataProfile {
    /// Two copies on the device (the default).
    #[default]
    Dup,
    /// One copy.
    Single,
}

impl fmt::Display for MetadataProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetadataProfile::Dup => "dup",
            MetadataProfile::Single => "single",
        })
    }
}

/// The name given is neither `dup` nor `single`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metadata profile {0:?}: use dup or single (one device only)")]
pub struct UnknownProfileName(pub String);

impl FromStr for MetadataProfile {
    type Err = UnknownProfileName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "dup" => Ok(MetadataProfile::Dup),
            "single" => Ok(MetadataProfile::Single),
            _ => Err(UnknownProfileName(s.to_string())),
        }
    }
}

/// Optional on-disk features. The default enables all four, as mkfs.btrfs 5.15+ does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Features {
    /// No explicit hole extents (`no-holes`).
    pub no_holes: bool,
    /// The free-space tree (`free-space-tree`, space cache v2).
    pub free_space_tree: bool,
    /// Smaller extent items for tree blocks (`skinny-metadata`).
    pub skinny_metadata: bool,
    /// Extended inode references, for many hard links in one directory (`extref`).
    pub extref: bool,
}

impl Default for Features {
    fn default() -> Self {
        Features {
            no_holes: true,
            free_space_tree: true,
            skinny_metadata: true,
            extref: true,
        }
    }
}

/// Everything [`mkfs`](super::mkfs) can be told. Start from [`MkfsOptions::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MkfsOptions {
    /// Label, at most 255 bytes, no NUL and no newline.
    pub label: String,
    /// Filesystem uuid; random when `None`. Fix it (with `device_uuid` and `time`) for a
    /// reproducible image.
    pub fsid: Option<Uuid>,
    /// Device uuid; random when `None`.
    pub device_uuid: Option<Uuid>,
    /// Tree block size: a power of two from 4 KiB to 64 KiB, at least `sectorsize`.
    pub nodesize: u32,
    /// Sector size: 4 KiB.
    pub sectorsize: u32,
    /// Metadata and system chunk profile.
    pub metadata: MetadataProfile,
    /// Checksum algorithm.
    pub checksum: ChecksumType,
    /// Optional features.
    pub features: Features,
    /// Filesystem size in bytes; the whole device or file when `None`. A regular file shorter
    /// than this is extended (sparse).
    pub size: Option<u64>,
    /// Overwrite a device that holds a known filesystem or other signature.
    pub force: bool,
    /// Timestamp (seconds since the epoch) of the root directories; now when `None`.
    pub time: Option<u64>,
}

impl Default for MkfsOptions {
    fn default() -> Self {
        MkfsOptions {
            label: String::new(),
            fsid: None,
            device_uuid: None,
            nodesize: 16 * 1024,
            sectorsize: 4096,
            metadata: MetadataProfile::Dup,
            checksum: ChecksumType::Crc32c,
            features: Features::default(),
            size: None,
            force: false,
            time: None,
        }
    }
}

impl MkfsOptions {
    /// Checks the options on their own, before any device is touched; returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.sectorsize != 4096 {
            return Err(format!(
                "sectorsize {} is not supported: use 4096",
                self.sectorsize
            ));
        }
        let n = self.nodesize;
        if !n.is_power_of_two() || !(4096..=65536).contains(&n) || n < self.sectorsize {
            return Err(format!(
                "nodesize {n} is invalid: use a power of two from 4096 to 65536, at least the sectorsize"
            ));
        }
        if self.label.len() > 255 {
            return Err(format!(
                "label is {} bytes long: at most 255",
                self.label.len()
            ));
        }
        if self.label.contains(['\0', '\n']) {
            return Err("label must not contain NUL or newline".into());
        }
        if self.checksum.to_raw().is_none() {
            return Err(format!("checksum {} is unknown", self.checksum));
        }
        if self.fsid.is_some_and(|u| u.is_nil()) || self.device_uuid.is_some_and(|u| u.is_nil()) {
            return Err("fsid and device uuid must not be the nil uuid".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        assert!(MkfsOptions::default().validate().is_ok());
        let bad = |f: fn(&mut MkfsOptions)| {
            let mut o = MkfsOptions::default();
            f(&mut o);
            o.validate().unwrap_err()
        };
        assert!(bad(|o| o.nodesize = 12288).contains("nodesize"));
        assert!(bad(|o| o.nodesize = 131072).contains("nodesize"));
        assert!(bad(|o| o.sectorsize = 8192).contains("sectorsize"));
        assert!(bad(|o| o.label = "x".repeat(256)).contains("label"));
        assert!(bad(|o| o.fsid = Some(Uuid::nil())).contains("nil"));
        assert_eq!("DUP".parse(), Ok(MetadataProfile::Dup));
        assert!("raid1".parse::<MetadataProfile>().is_err());
    }
}
