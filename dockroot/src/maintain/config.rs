//! The `[maintain]` section of the configuration.

use crate::config::Size;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A size given in bytes (`2g`) or as a percentage of something (`10%`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// So many bytes.
    Bytes(u64),
    /// This percentage (0–100) of a reference size.
    Percent(f64),
}

impl Amount {
    /// The amount in bytes, percentages taken of `of`.
    pub fn of(self, of: u64) -> u64 {
        match self {
            Amount::Bytes(b) => b,
            Amount::Percent(p) => (of as f64 * p / 100.0) as u64,
        }
    }
}

impl std::str::FromStr for Amount {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if let Some(p) = text.strip_suffix('%') {
            let p: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a percentage such as 10%"))?;
            if !(0.0..=100.0).contains(&p) {
                return Err(format!("{s:?} is not within 0..100 %"));
            }
            return Ok(Amount::Percent(p));
        }
        text.parse::<Size>()
            .map(|s| Amount::Bytes(s.0.get()))
            .map_err(|e| format!("{e} (or give a percentage such as 10%)"))
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Amount::Bytes(b) => write!(f, "{}", btrfs_kit::ByteSize(*b)),
            Amount::Percent(p) => write!(f, "{p} %"),
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Amount::Bytes(b) => s.serialize_str(&format!("{b}b")),
            Amount::Percent(p) => s.serialize_str(&format!("{p}%")),
        }
    }
}

/// What `maintain` does about defragmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DefragMode {
    /// Never (the default: on Docker's shared layers defragmenting unshares extents).
    #[default]
    Never,
    /// Report what a defragmentation would rewrite and unshare; change nothing.
    DryRun,
}

/// The `[maintain]` section.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaintainConfig {
    /// Where the last run of each task is recorded (`<fsid>.json`).
    pub state_dir: PathBuf,
    /// Where the per-filesystem lock files live.
    pub lock_dir: PathBuf,
    /// Balance until this much space is unallocated.
    pub unallocated_target: Amount,
    /// Only chunks less full than this percentage are relocated.
    pub balance_usage_max: u8,
    /// Chunks per balance call (halved after an ENOSPC).
    pub balance_chunks_per_step: u32,
    /// Also relocate metadata chunks.
    pub balance_metadata: bool,
    /// On SIGTERM, pause the balance (resumable) instead of cancelling it.
    pub keep_paused: bool,
    /// Scrub when the last completed scrub is older than this (0: never).
    pub scrub_interval_days: u64,
    /// Trim when the last trim is older than this (0: never).
    pub trim_interval_days: u64,
    /// Defragmentation: never, or a dry-run report.
    pub defrag: DefragMode,
    /// Grow the LV when data use passes this percentage.
    pub grow_threshold: f64,
    /// Grow by this much (bytes, or a percentage of the LV's size)...
    pub grow_step: Amount,
    /// ...and by at least this much.
    pub grow_step_min: Size,
    /// The largest the LV may grow to; auto-grow is off without it.
    pub grow_max: Option<Size>,
}

impl Default for MaintainConfig {
    fn default() -> Self {
        MaintainConfig {
            state_dir: "/var/lib/dockroot".into(),
            lock_dir: "/run/dockroot".into(),
            unallocated_target: Amount::Percent(10.0),
            balance_usage_max: 50,
            balance_chunks_per_step: 4,
            balance_metadata: false,
            keep_paused: false,
            scrub_interval_days: 30,
            trim_interval_days: 7,
            defrag: DefragMode::Never,
            grow_threshold: 80.0,
            grow_step: Amount::Percent(10.0),
            grow_step_min: Size(lvm_kit::Bytes::gib(1)),
            grow_max: None,
        }
    }
}

/// Why a maintain setting is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MaintainConfigError {
    /// `balance_usage_max` is not within 1..100.
    #[error("maintain.balance_usage_max must be within 1..100 (got {0})")]
    BalanceUsageMax(u8),
    /// `balance_chunks_per_step` is zero.
    #[error("maintain.balance_chunks_per_step must be at least 1")]
    BalanceChunksPerStep,
    /// `grow_threshold` is not within 1..100.
    #[error("maintain.grow_threshold must be a percentage within 1..100 (got {0})")]
    GrowThreshold(f64),
}

impl MaintainConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), MaintainConfigError> {
        if !(1..=100).contains(&self.balance_usage_max) {
            return Err(MaintainConfigError::BalanceUsageMax(self.balance_usage_max));
        }
        if self.balance_chunks_per_step == 0 {
            return Err(MaintainConfigError::BalanceChunksPerStep);
        }
        if !(1.0..=100.0).contains(&self.grow_threshold) {
            return Err(MaintainConfigError::GrowThreshold(self.grow_threshold));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_take_bytes_or_percentages() {
        assert_eq!("10%".parse::<Amount>().unwrap(), Amount::Percent(10.0));
        assert_eq!("2g".parse::<Amount>().unwrap(), Amount::Bytes(2 << 30));
        assert_eq!(Amount::Percent(10.0).of(1000), 100);
        assert!("150%".parse::<Amount>().is_err());
        assert!("12".parse::<Amount>().unwrap_err().contains("percentage"));
    }
}
