//! The handle of a scrub started by this process (on background threads: one per device in
//! `BTRFS_IOC_SCRUB`, see `worker`, and a monitor, see `monitor`): its progress, cancel, wait.

use super::outcome::{DeviceScrubState, ResumeOrigin, ScrubOutcome};
use super::progress::ScrubProgress;
use super::worker::{Shared, SlotState};
use crate::error::Result;
use crate::size::ByteSize;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One device of a scrub in progress, as [`ScrubHandle::progress`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DeviceSnapshot {
    /// The device id.
    pub devid: u64,
    /// Its path.
    pub path: PathBuf,
    /// How it ended, `None` while it runs.
    pub ended: Option<DeviceScrubState>,
    /// This run's counters.
    pub this_run: ScrubProgress,
    /// The counters of every run of this scrub.
    pub progress: ScrubProgress,
}

/// The progress of a scrub started by this process.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ScrubSnapshot {
    /// Per device.
    pub devices: Vec<DeviceSnapshot>,
    /// Counters of every run, over all devices.
    pub total: ScrubProgress,
    /// Counters of this run, over all devices.
    pub this_run: ScrubProgress,
    /// Time since this run started.
    pub elapsed: Duration,
    /// Bytes the whole scrub is expected to read (from the block groups' used bytes when it
    /// started): for progress bars, not exact.
    pub expected: ByteSize,
}

impl ScrubSnapshot {
    /// This run's bytes per second.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.this_run.bytes_scrubbed().bytes() as f64 / secs
        } else {
            0.0
        }
    }

    /// Bytes scrubbed so far ÷ expected, at most 1.
    pub fn fraction(&self) -> f64 {
        self.total.bytes_scrubbed().ratio_of(self.expected).min(1.0)
    }
}

/// A scrub started with [`Filesystem::scrub_background`](crate::Filesystem::scrub_background). Dropping the handle does not stop
/// the scrub: the kernel keeps going, and the monitor thread keeps recording it until the end.
///
/// A fatal signal (SIGKILL, or an unhandled SIGINT) ends the kernel's scrub at once; Linux 6.18
/// logs it as "finished ... with status: 0" although it stopped early. The state file then
/// still says "running" for a process that is gone, which [`ScrubState`] reads as interrupted:
/// a resume continues from the last recorded positions (at most
/// [`ScrubRequest::state_interval`](super::ScrubRequest::state_interval) old). Handle SIGINT/SIGTERM and [`cancel`](Self::cancel)
/// instead, as the `scrub` example does.
///
/// [`ScrubState`]: super::ScrubState
#[derive(Debug)]
pub struct ScrubHandle {
    pub(super) shared: Arc<Shared>,
    pub(super) monitor: JoinHandle<Result<ScrubOutcome>>,
}

impl ScrubHandle {
    /// Current counters: polled from the kernel for the devices still running.
    pub fn progress(&self) -> Result<ScrubSnapshot> {
        self.shared.poll()?;
        let slots = self.shared.slots().clone();
        let devices: Vec<DeviceSnapshot> = slots
            .iter()
            .map(|s| DeviceSnapshot {
                devid: s.devid,
                path: s.path.clone(),
                ended: match &s.state {
                    SlotState::Running => None,
                    SlotState::Skipped => Some(DeviceScrubState::Skipped),
                    SlotState::Ended(e) => Some(e.clone()),
                },
                this_run: s.live,
                progress: s.cumulative(),
            })
            .collect();
        Ok(ScrubSnapshot {
            total: ScrubProgress::sum(devices.iter().map(|d| &d.progress)),
            this_run: ScrubProgress::sum(devices.iter().map(|d| &d.this_run)),
            devices,
            elapsed: self.shared.began.elapsed(),
            expected: self.shared.expected,
        })
    }

    /// Where this scrub started from (fresh, resumed, or a resume with nothing recorded).
    pub fn origin(&self) -> &ResumeOrigin {
        &self.shared.origin
    }

    /// Waits until the kernel reports a device being scrubbed, the scrub has ended, or
    /// `timeout` passes; whether it runs.
    pub fn wait_running(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            let running: Vec<u64> = self
                .shared
                .slots()
                .iter()
                .filter(|s| s.state == SlotState::Running)
                .map(|s| s.devid)
                .collect();
            if running.is_empty() {
                return Ok(false);
            }
            for devid in running {
                if self.shared.fs.scrub_device_progress(devid)?.is_some() {
                    return Ok(true);
                }
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            let slots = self.shared.slots();
            let _ = self
                .shared
                .ended
                .wait_timeout(slots, Duration::from_millis(5));
        }
    }

    /// Cancels the scrub (every scrub of the filesystem: the kernel has one cancel for all);
    /// [`wait`](Self::wait) then returns a cancelled outcome, recorded for resuming.
    pub fn cancel(&self) -> Result<()> {
        self.shared.fs.scrub_cancel()
    }

    /// Whether every device's scrub has ended and the outcome is ready.
    pub fn is_finished(&self) -> bool {
        self.monitor.is_finished()
    }

    /// Blocks until the scrub ends and returns its outcome (after recording it and, for
    /// uncorrectable errors, naming the damaged files).
    pub fn wait(self) -> Result<ScrubOutcome> {
        match self.monitor.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
