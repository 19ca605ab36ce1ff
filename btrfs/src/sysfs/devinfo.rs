//! `devinfo/<devid>/`: per-device error counters and the scrub speed limit (Linux 5.14+).

use super::FsSysfs;
use crate::devstats::DeviceStats;
use crate::error::Result;
use crate::size::ByteSize;
use std::fmt;

/// A scrub speed limit (`devinfo/<devid>/scrub_speed_max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "kebab-case")
)]
pub enum SpeedLimit {
    /// No limit (the file reads 0).
    Unlimited,
    /// At most this many bytes per second.
    BytesPerSecond(ByteSize),
}

impl SpeedLimit {
    fn from_raw(bytes: u64) -> SpeedLimit {
        if bytes == 0 {
            SpeedLimit::Unlimited
        } else {
            SpeedLimit::BytesPerSecond(ByteSize(bytes))
        }
    }

    fn to_raw(self) -> u64 {
        match self {
            SpeedLimit::Unlimited => 0,
            SpeedLimit::BytesPerSecond(b) => b.bytes(),
        }
    }
}

impl fmt::Display for SpeedLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpeedLimit::Unlimited => f.write_str("unlimited"),
            SpeedLimit::BytesPerSecond(b) => write!(f, "{b}/s"),
        }
    }
}

const DEVINFO_SINCE: &str = "Linux 5.14 (devinfo/<devid>/scrub_speed_max)";

/// Decodes `error_stats`: `write_errs N` ... lines; missing counters stay 0.
fn parse_error_stats(devid: u64, text: &str) -> Option<DeviceStats> {
    let mut stats = DeviceStats {
        devid,
        ..Default::default()
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line.split_once(' ')?;
        let value: u64 = value.trim().parse().ok()?;
        match key {
            "write_errs" => stats.write_errs = value,
            "read_errs" => stats.read_errs = value,
            "flush_errs" => stats.flush_errs = value,
            "corruption_errs" => stats.corruption_errs = value,
            "generation_errs" => stats.generation_errs = value,
            _ => {}
        }
    }
    Some(stats)
}

impl FsSysfs {
    /// The device ids listed under `devinfo/`, ascending; `None` before Linux 5.9.
    pub fn devids(&self) -> Result<Option<Vec<u64>>> {
        Ok(self.knob("devinfo").dir_names()?.map(|names| {
            let mut ids: Vec<u64> = names.iter().filter_map(|n| n.parse().ok()).collect();
            ids.sort_unstable();
            ids
        }))
    }

    /// The error counters of device `devid` as sysfs shows them (the same the kernel returns
    /// to [`Filesystem::device_stats`](crate::Filesystem::device_stats)); `None` before
    /// Linux 5.14 or for an unknown device.
    pub fn device_error_stats(&self, devid: u64) -> Result<Option<DeviceStats>> {
        self.knob(format!("devinfo/{devid}/error_stats"))
            .parse(|t| parse_error_stats(devid, t))
    }

    /// The scrub speed limit of device `devid`; `None` before Linux 5.14 or for an unknown
    /// device.
    pub fn scrub_speed_max(&self, devid: u64) -> Result<Option<SpeedLimit>> {
        Ok(self
            .knob(format!("devinfo/{devid}/scrub_speed_max"))
            .u64()?
            .map(SpeedLimit::from_raw))
    }

    /// Limits scrub on device `devid` (root). It applies to scrubs running now and later,
    /// until changed or until the filesystem is unmounted.
    pub fn set_scrub_speed_max(&self, devid: u64, limit: SpeedLimit) -> Result<()> {
        self.knob(format!("devinfo/{devid}/scrub_speed_max")).write(
            "set scrub_speed_max",
            &limit.to_raw().to_string(),
            DEVINFO_SINCE,
            "bytes per second, 0 for no limit",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_error_stats_and_limits() {
        let s = parse_error_stats(
            3,
            "write_errs 1\nread_errs 2\nflush_errs 3\ncorruption_errs 4\ngeneration_errs 5\n",
        )
        .unwrap();
        assert_eq!(
            (s.devid, s.write_errs, s.corruption_errs, s.total()),
            (3, 1, 4, 15)
        );
        assert_eq!(parse_error_stats(1, "read_errs x\n"), None);
        assert_eq!(SpeedLimit::from_raw(0), SpeedLimit::Unlimited);
        assert_eq!(
            SpeedLimit::from_raw(1 << 20).to_string(),
            "1.00 MiB/s".to_string()
        );
    }
}
