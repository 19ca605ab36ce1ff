//! The monitor thread: waits for the device threads, polls progress, records positions,
//! watches the kernel log for damage, restores speed limits, saves the outcome.

//! A scrub on background threads: one per device running `BTRFS_IOC_SCRUB` (which blocks until
//! that device is done), and a monitor that polls progress, records the state file, watches
//! the kernel log and, at the end, builds the outcome.

use super::damage;
use super::errors::scrub_error;
use super::kmsg::KernelLog;
use super::outcome::{DeviceScrub, DeviceScrubState, ScrubOutcome};
use super::progress::ScrubProgress;
use super::start::Start;
use super::state::{current_boot_id, RunStatus, ScrubState, ScrubSummary, UnfinishedScrub};
use super::worker::{Shared, Slot, SlotState, OP};
use crate::error::Result;
use crate::sysfs::{FsSysfs, SpeedLimit};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

/// The monitor thread's belongings.
pub(super) struct Monitor {
    pub(super) start: Start,
    pub(super) restore: Vec<(u64, SpeedLimit)>,
    pub(super) log: Option<KernelLog>,
    pub(super) threads: Vec<JoinHandle<()>>,
}

impl Monitor {
    pub(super) fn run(mut self, shared: &Shared) -> Result<ScrubOutcome> {
        let poll = self.start.request.poll_interval;
        let every = self.start.request.state_interval;
        let mut saved: Option<Instant> = None;
        loop {
            {
                let slots = shared.slots();
                if !slots.iter().any(|s| s.state == SlotState::Running) {
                    break;
                }
                let _ = shared.ended.wait_timeout(slots, poll);
            }
            // Progress of a device that just ended is gone from the kernel: not an error.
            let _ = shared.poll();
            if let Some(log) = &mut self.log {
                log.drain();
            }
            if saved.is_none_or(|t| t.elapsed() >= every) && shared.running() {
                // A failed save must not stop the scrub; the final save reports it.
                let _ = self.save(shared, false);
                saved = Some(Instant::now());
            }
        }
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
        if let Some(log) = &mut self.log {
            log.drain();
        }
        self.restore_limits();
        self.finish(shared)
    }

    pub(super) fn restore_limits(&self) {
        let Ok(sysfs) = FsSysfs::for_fs(&self.start.fs) else {
            return;
        };
        for &(devid, old) in &self.restore {
            let _ = sysfs.set_scrub_speed_max(devid, old);
        }
    }

    /// Writes the state file: the running scrub (or, with `done`, the finished outcome).
    pub(super) fn save(&self, shared: &Shared, done: bool) -> Result<()> {
        let Some((dir, _lock)) = &self.start.recording else {
            return Ok(());
        };
        let slots = shared.slots().clone();
        let mut state = self
            .start
            .previous
            .clone()
            .unwrap_or_else(|| ScrubState::empty(self.start.fsid));
        state.fsid = self.start.fsid;
        let status = if !done {
            RunStatus::Running {
                pid: std::process::id(),
                boot_id: current_boot_id().unwrap_or_default(),
            }
        } else if slots
            .iter()
            .any(|s| matches!(s.state, SlotState::Ended(DeviceScrubState::Failed { .. })))
        {
            RunStatus::Failed
        } else {
            RunStatus::Cancelled
        };
        state.unfinished = Some(UnfinishedScrub {
            started: self.start.started,
            updated: SystemTime::now(),
            read_only: self.start.request.read_only,
            status,
            devices: slots.iter().map(Slot::record).collect(),
        });
        state.save(dir)
    }

    pub(super) fn finish(&self, shared: &Shared) -> Result<ScrubOutcome> {
        let slots = shared.slots().clone();
        let devices: Vec<DeviceScrub> = slots.iter().map(Slot::result).collect();
        let ran: Vec<&Slot> = slots
            .iter()
            .filter(|s| s.state != SlotState::Skipped)
            .collect();
        // Nothing scrubbed at all: every device refused at once (already running, read-only
        // mount, no permission...). Leave the state file as it was; report the refusal.
        let refused = !ran.is_empty()
            && ran.iter().all(|s| {
                matches!(s.state, SlotState::Ended(DeviceScrubState::Failed { .. }))
                    && s.live == ScrubProgress::default()
            });
        if refused {
            let s = ran[0];
            if let SlotState::Ended(DeviceScrubState::Failed { errno, .. }) = &s.state {
                return Err(scrub_error(&self.start.fs, OP, s.devid, *errno));
            }
        }
        let total = ScrubProgress::sum(devices.iter().map(|d| &d.progress));
        let this_run = ScrubProgress::sum(devices.iter().map(|d| &d.this_run));
        let damage = match &self.log {
            Some(log) if this_run.uncorrectable_errors > 0 => Some(damage::report(
                &self.start.fs,
                &self.start.devices,
                log,
                this_run.uncorrectable_errors,
            )),
            _ => None,
        };
        let outcome = ScrubOutcome {
            verdict: ScrubOutcome::verdict_of(&devices, &total),
            fsid: self.start.fsid,
            read_only: self.start.request.read_only,
            started: self.start.started,
            finished: SystemTime::now(),
            duration: shared.began.elapsed(),
            devices,
            total,
            origin: self.start.origin.clone(),
            damage,
            state_file: self
                .start
                .recording
                .as_ref()
                .map(|(dir, _)| ScrubState::file(dir, self.start.fsid)),
        };
        if outcome.completed() {
            self.save_completed(&outcome)?;
        } else {
            self.save(shared, true)?;
        }
        Ok(outcome)
    }

    /// Records a completed scrub as the last one and forgets the unfinished one.
    pub(super) fn save_completed(&self, outcome: &ScrubOutcome) -> Result<()> {
        let Some((dir, _lock)) = &self.start.recording else {
            return Ok(());
        };
        let mut state = self
            .start
            .previous
            .clone()
            .unwrap_or_else(|| ScrubState::empty(self.start.fsid));
        state.unfinished = None;
        state.last_completed = Some(ScrubSummary {
            started: outcome.started,
            finished: outcome.finished,
            verdict: outcome.verdict,
            read_only: outcome.read_only,
            devices: outcome.devices.len() as u64,
            totals: outcome.total,
            damaged_files: outcome.damage.as_ref().map_or(0, |d| d.files.len() as u64),
        });
        state.save(dir)
    }
}
