//! What to scrub and how.

use super::DEFAULT_STATE_DIR;
use crate::error::{Error, Result};
use crate::sysfs::SpeedLimit;
use std::path::PathBuf;
use std::time::Duration;

/// Which devices to scrub.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum ScrubDevices {
    /// Every device of the filesystem, each on its own thread (as btrfs-progs does).
    #[default]
    All,
    /// These device ids only.
    Only(Vec<u64>),
}

/// A scrub request. [`ScrubRequest::new`] scrubs every device, repairing what it can,
/// records its progress in [`DEFAULT_STATE_DIR`] and names the files of uncorrectable errors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ScrubRequest {
    /// The devices.
    pub devices: ScrubDevices,
    /// Only read and verify; never write repairs (needed on a read-only mount).
    pub read_only: bool,
    /// Physical byte range `[start, end)` on each device; `None` for all of it. The kernel
    /// scrubs whole device extents: one that overlaps `start` is scrubbed from its beginning.
    pub range: Option<(u64, u64)>,
    /// Speed limit per device, set through sysfs (`devinfo/<devid>/scrub_speed_max`) for the
    /// scrub and restored afterwards; `None` leaves the current limit. If the process is
    /// killed the limit stays until changed or the filesystem is unmounted.
    pub speed_limit: Option<SpeedLimit>,
    /// Where the per-filesystem state file lives (`<fsid>.scrub`), for resuming and for the
    /// last completed scrub; `None` records nothing (and then nothing can be resumed).
    pub state_dir: Option<PathBuf>,
    /// Watch the kernel log during the scrub to learn where uncorrectable errors are and name
    /// the files (needs read access to `/dev/kmsg`, i.e. root).
    pub name_damaged_files: bool,
    /// How often the background handle polls the kernel for progress.
    pub poll_interval: Duration,
    /// How often the state file is rewritten while the scrub runs (the most a crash loses).
    pub state_interval: Duration,
}

impl Default for ScrubRequest {
    fn default() -> Self {
        ScrubRequest {
            devices: ScrubDevices::All,
            read_only: false,
            range: None,
            speed_limit: None,
            state_dir: Some(PathBuf::from(DEFAULT_STATE_DIR)),
            name_damaged_files: true,
            poll_interval: Duration::from_millis(250),
            state_interval: Duration::from_secs(5),
        }
    }
}

impl ScrubRequest {
    /// Every device, repairing, recorded in [`DEFAULT_STATE_DIR`], naming damaged files.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scrubs only device `devid` (call again to add more).
    pub fn device(mut self, devid: u64) -> Self {
        match &mut self.devices {
            ScrubDevices::Only(ids) => ids.push(devid),
            ScrubDevices::All => self.devices = ScrubDevices::Only(vec![devid]),
        }
        self
    }

    /// Read-only: report, never repair.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Scrubs physical `[start, end)` of each device only.
    pub fn range(mut self, start: u64, end: u64) -> Self {
        self.range = Some((start, end));
        self
    }

    /// Limits each device's scrub speed for this scrub.
    pub fn speed_limit(mut self, limit: SpeedLimit) -> Self {
        self.speed_limit = Some(limit);
        self
    }

    /// Records state in `dir` instead of [`DEFAULT_STATE_DIR`].
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Records no state (the scrub cannot be resumed by this crate).
    pub fn no_state(mut self) -> Self {
        self.state_dir = None;
        self
    }

    /// Whether to watch the kernel log and name damaged files.
    pub fn name_damaged_files(mut self, on: bool) -> Self {
        self.name_damaged_files = on;
        self
    }

    /// The checks made before anything reaches the kernel.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Error::invalid_arguments("scrub", reason);
        if let Some((start, end)) = self.range {
            if start >= end {
                return Err(invalid(format!(
                    "the physical range {start}..{end} is empty; give start < end"
                )));
            }
        }
        if matches!(&self.devices, ScrubDevices::Only(ids) if ids.is_empty()) {
            return Err(invalid("no device selected".into()));
        }
        if self.poll_interval.is_zero() || self.state_interval.is_zero() {
            return Err(invalid(
                "poll and state intervals must be above zero".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_validates() {
        let r = ScrubRequest::new().device(1).device(3).read_only(true);
        assert_eq!(r.devices, ScrubDevices::Only(vec![1, 3]));
        assert!(r.validate().is_ok());
        assert!(ScrubRequest::new().range(5, 5).validate().is_err());
        assert!(ScrubRequest::new().no_state().state_dir.is_none());
        assert_eq!(
            ScrubRequest::new().state_dir,
            Some(PathBuf::from("/var/lib/btrfs-kit"))
        );
    }
}
