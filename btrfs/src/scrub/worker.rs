//! The scrub's shared state and one device's thread: each device scrubs in a blocking ioctl of
//! its own, and its result lands in its slot.

//! A scrub on background threads: one per device running `BTRFS_IOC_SCRUB` (which blocks until
//! that device is done), and a monitor that polls progress, records the state file, watches
//! the kernel log and, at the end, builds the outcome.

use super::errors::scrub_error;
use super::outcome::{DeviceScrub, DeviceScrubState, ResumeOrigin};
use super::progress::ScrubProgress;
use super::state::DeviceRecord;
use crate::error::Result;
use crate::fs::Filesystem;
use crate::ioctl;
use crate::size::ByteSize;
use btrfs_sys as sys;
use rustix::io::Errno;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

pub(super) const OP: &str = "scrub";

/// Where one device's scrub is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SlotState {
    /// Finished in an earlier run; not scrubbed now.
    Skipped,
    /// The ioctl has not returned yet.
    Running,
    /// The ioctl returned.
    Ended(DeviceScrubState),
}

#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) devid: u64,
    pub(super) path: PathBuf,
    /// The requested physical range.
    pub(super) range: (u64, u64),
    /// Where this run starts.
    pub(super) start: u64,
    /// Counters of earlier runs (resume).
    pub(super) earlier: ScrubProgress,
    /// This run's latest counters.
    pub(super) live: ScrubProgress,
    pub(super) state: SlotState,
}

impl Slot {
    pub(super) fn cumulative(&self) -> ScrubProgress {
        let mut p = self.earlier;
        p.add(&self.live);
        p
    }

    pub(super) fn record(&self) -> DeviceRecord {
        DeviceRecord {
            devid: self.devid,
            start: self.range.0,
            end: self.range.1,
            finished: matches!(
                self.state,
                SlotState::Skipped | SlotState::Ended(DeviceScrubState::Finished)
            ),
            progress: self.cumulative(),
        }
    }

    pub(super) fn result(&self) -> DeviceScrub {
        DeviceScrub {
            devid: self.devid,
            path: self.path.clone(),
            state: match &self.state {
                SlotState::Skipped => DeviceScrubState::Skipped,
                SlotState::Ended(s) => s.clone(),
                // Only read after every device thread has ended.
                SlotState::Running => DeviceScrubState::Cancelled,
            },
            started_at: self.start,
            this_run: self.live,
            progress: self.cumulative(),
        }
    }
}

pub(super) struct Shared {
    pub(super) fs: Filesystem,
    pub(super) slots: Mutex<Vec<Slot>>,
    pub(super) ended: Condvar,
    pub(super) began: Instant,
    pub(super) expected: ByteSize,
    pub(super) origin: ResumeOrigin,
}

impl Shared {
    pub(super) fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        // A panicking device thread cannot leave the slots half-written: keep going.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn running(&self) -> bool {
        self.slots().iter().any(|s| s.state == SlotState::Running)
    }

    /// Polls the kernel for every running device and stores the counters.
    pub(super) fn poll(&self) -> Result<()> {
        let running: Vec<u64> = self
            .slots()
            .iter()
            .filter(|s| s.state == SlotState::Running)
            .map(|s| s.devid)
            .collect();
        for devid in running {
            let Some(p) = self.fs.scrub_device_progress(devid)? else {
                continue;
            };
            let mut slots = self.slots();
            if let Some(s) = slots
                .iter_mut()
                .find(|s| s.devid == devid && s.state == SlotState::Running)
            {
                s.live = p;
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("fs", &self.fs.path())
            .field("began", &self.began)
            .finish_non_exhaustive()
    }
}

/// One device's thread: the blocking ioctl, then its result into the slot.
pub(super) fn scrub_one(shared: &Shared, devid: u64, start: u64, end: u64, flags: u64) {
    let mut args = sys::btrfs_ioctl_scrub_args {
        devid,
        start,
        end,
        flags,
        ..Default::default()
    };
    let ret = ioctl::scrub(shared.fs.fd(), &mut args);
    let state = match ret {
        Ok(_) => DeviceScrubState::Finished,
        Err(Errno::CANCELED) => DeviceScrubState::Cancelled,
        Err(errno) => DeviceScrubState::Failed {
            errno,
            message: scrub_error(&shared.fs, OP, devid, errno).to_string(),
        },
    };
    let mut slots = shared.slots();
    if let Some(s) = slots.iter_mut().find(|s| s.devid == devid) {
        s.live = ScrubProgress::from_sys(&args.progress);
        s.state = SlotState::Ended(state);
    }
    shared.ended.notify_all();
}
