//! A scrub on background threads: one per device running `BTRFS_IOC_SCRUB` (which blocks until
//! that device is done), and a monitor that polls progress, records the state file, watches
//! the kernel log and, at the end, builds the outcome.

use super::damage;
use super::kmsg::KernelLog;
use super::outcome::{DeviceScrub, DeviceScrubState, ResumeOrigin, ScrubOutcome};
use super::progress::ScrubProgress;
use super::request::{ScrubDevices, ScrubRequest};
use super::run::scrub_error;
use super::state::{
    create_private_dir, current_boot_id, DeviceRecord, RunStatus, ScrubState, ScrubSummary,
    UnfinishedScrub,
};
use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::info::DeviceInfo;
use crate::ioctl;
use crate::size::ByteSize;
use crate::sysfs::{FsSysfs, SpeedLimit};
use btrfs_sys as sys;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use uuid::Uuid;

const OP: &str = "scrub";

/// Where one device's scrub is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SlotState {
    /// Finished in an earlier run; not scrubbed now.
    Skipped,
    /// The ioctl has not returned yet.
    Running,
    /// The ioctl returned.
    Ended(DeviceScrubState),
}

#[derive(Debug, Clone)]
struct Slot {
    devid: u64,
    path: PathBuf,
    /// The requested physical range.
    range: (u64, u64),
    /// Where this run starts.
    start: u64,
    /// Counters of earlier runs (resume).
    earlier: ScrubProgress,
    /// This run's latest counters.
    live: ScrubProgress,
    state: SlotState,
}

impl Slot {
    fn cumulative(&self) -> ScrubProgress {
        let mut p = self.earlier;
        p.add(&self.live);
        p
    }

    fn record(&self) -> DeviceRecord {
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

    fn result(&self) -> DeviceScrub {
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

struct Shared {
    fs: Filesystem,
    slots: Mutex<Vec<Slot>>,
    ended: Condvar,
    began: Instant,
    expected: ByteSize,
    origin: ResumeOrigin,
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        // A panicking device thread cannot leave the slots half-written: keep going.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn running(&self) -> bool {
        self.slots().iter().any(|s| s.state == SlotState::Running)
    }

    /// Polls the kernel for every running device and stores the counters.
    fn poll(&self) -> Result<()> {
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

/// A scrub started with [`Filesystem::scrub_background`]. Dropping the handle does not stop
/// the scrub: the kernel keeps going, and the monitor thread keeps recording it until the end.
///
/// A fatal signal (SIGKILL, or an unhandled SIGINT) ends the kernel's scrub at once; Linux 6.18
/// logs it as "finished ... with status: 0" although it stopped early. The state file then
/// still says "running" for a process that is gone, which [`ScrubState`] reads as interrupted:
/// a resume continues from the last recorded positions (at most
/// [`ScrubRequest::state_interval`] old). Handle SIGINT/SIGTERM and [`cancel`](Self::cancel)
/// instead, as the `scrub` example does.
///
/// [`ScrubState`]: super::ScrubState
#[derive(Debug)]
pub struct ScrubHandle {
    shared: Arc<Shared>,
    monitor: JoinHandle<Result<ScrubOutcome>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("fs", &self.fs.path())
            .field("began", &self.began)
            .finish_non_exhaustive()
    }
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

/// Everything decided before the threads start.
pub(crate) struct Start {
    fs: Filesystem,
    request: ScrubRequest,
    fsid: Uuid,
    devices: Vec<DeviceInfo>,
    slots: Vec<Slot>,
    origin: ResumeOrigin,
    started: SystemTime,
    /// The state directory and the exclusive lock on `<fsid>.lock` in it.
    recording: Option<(PathBuf, Flock<File>)>,
    previous: Option<ScrubState>,
}

fn spawn_error(fs: &Filesystem, e: std::io::Error) -> Error {
    Error::Sys {
        op: OP,
        path: fs.path().into(),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EAGAIN as i32)),
    }
}

/// Takes the per-filesystem lock in `dir` without waiting.
fn lock(fs: &Filesystem, dir: &Path, fsid: Uuid) -> Result<Flock<File>> {
    let path = dir.join(format!("{fsid}.lock"));
    let fail = |detail: String| Error::StateFile {
        op: OP,
        path: path.clone(),
        detail,
    };
    create_private_dir(dir).map_err(|e| fail(format!("cannot create the state directory: {e}")))?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| fail(format!("cannot open the lock file: {e}")))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == Errno::EWOULDBLOCK {
            Error::ScrubAlreadyRunning {
                op: OP,
                path: fs.path().into(),
                devid: None,
            }
        } else {
            fail(format!("cannot lock it: {errno}"))
        }
    })
}

/// Bytes a scrub of `devids` will read, from the block groups' used bytes: each stripe on a
/// device holds its share of the chunk.
fn expected_bytes(fs: &Filesystem, devids: &[u64]) -> ByteSize {
    let (Ok(chunks), Ok(groups)) = (fs.chunks(), fs.block_groups()) else {
        return ByteSize::ZERO;
    };
    let mut total = 0u128;
    for c in &chunks {
        let Some(g) = groups.iter().find(|g| g.logical == c.logical) else {
            continue;
        };
        let on_devices = c
            .stripes
            .iter()
            .filter(|s| devids.contains(&s.devid))
            .count() as u128;
        let share = u128::from(g.used.bytes()) * u128::from(c.stripe_size().bytes())
            / u128::from(c.length.bytes().max(1));
        total += share * on_devices;
    }
    ByteSize(total.min(u128::from(u64::MAX)) as u64)
}

impl Start {
    pub(crate) fn new(fs: &Filesystem, request: &ScrubRequest, resume: bool) -> Result<Start> {
        request.validate()?;
        let fsid = fs.info()?.fsid;
        let devices = fs.devices()?;
        let selected: Vec<&DeviceInfo> = match &request.devices {
            ScrubDevices::All => devices.iter().collect(),
            ScrubDevices::Only(ids) => {
                let mut out = Vec::new();
                for &devid in ids {
                    out.push(devices.iter().find(|d| d.devid == devid).ok_or(
                        Error::NoSuchDevice {
                            op: OP,
                            path: fs.path().into(),
                            devid,
                        },
                    )?);
                }
                out
            }
        };
        let recording = match &request.state_dir {
            Some(dir) => Some((dir.clone(), lock(fs, dir, fsid)?)),
            None => None,
        };
        let previous = match &request.state_dir {
            Some(dir) => match ScrubState::load(dir, fsid) {
                Ok(state) => state,
                // A new scrub replaces an unreadable file; a resume cannot use it.
                Err(e) if resume => return Err(e),
                Err(_) => None,
            },
            None => None,
        };
        let (range_start, range_end) = request.range.unwrap_or((0, u64::MAX));
        let fresh = |d: &DeviceInfo| Slot {
            devid: d.devid,
            path: d.path.clone(),
            range: (range_start, range_end),
            start: range_start,
            earlier: ScrubProgress::default(),
            live: ScrubProgress::default(),
            state: SlotState::Running,
        };
        let unfinished = previous.as_ref().and_then(|s| s.unfinished.as_ref());
        let (origin, started, slots) = match (resume, unfinished) {
            (true, Some(u)) => {
                if u.is_running_elsewhere() {
                    return Err(Error::ScrubAlreadyRunning {
                        op: OP,
                        path: fs.path().into(),
                        devid: None,
                    });
                }
                let slots = selected
                    .iter()
                    .map(|d| match u.devices.iter().find(|r| r.devid == d.devid) {
                        Some(r) => Slot {
                            range: (r.start, r.end),
                            start: r.resume_at(),
                            earlier: r.progress,
                            state: if r.finished {
                                SlotState::Skipped
                            } else {
                                SlotState::Running
                            },
                            ..fresh(d)
                        },
                        None => fresh(d),
                    })
                    .collect();
                (
                    ResumeOrigin::Resumed { started: u.started },
                    u.started,
                    slots,
                )
            }
            (true, None) => {
                let reason = match (&request.state_dir, &previous) {
                    (None, _) => "no state directory was given, so nothing was recorded".into(),
                    (Some(dir), None) => {
                        format!("no scrub state recorded for {fsid} in {}", dir.display())
                    }
                    (Some(_), Some(_)) => "the last recorded scrub had completed".into(),
                };
                (
                    ResumeOrigin::NothingToResume { reason },
                    SystemTime::now(),
                    selected.iter().map(|d| fresh(d)).collect(),
                )
            }
            (false, _) => (
                ResumeOrigin::Fresh,
                SystemTime::now(),
                selected.iter().map(|d| fresh(d)).collect(),
            ),
        };
        Ok(Start {
            fs: fs.try_clone()?,
            request: request.clone(),
            fsid,
            devices,
            slots,
            origin,
            started,
            recording,
            previous,
        })
    }

    /// Sets the speed limits, opens the kernel log and starts the threads.
    pub(crate) fn spawn(self) -> Result<ScrubHandle> {
        let running: Vec<u64> = self
            .slots
            .iter()
            .filter(|s| s.state == SlotState::Running)
            .map(|s| s.devid)
            .collect();
        let mut restore = Vec::new();
        if let Some(limit) = self.request.speed_limit {
            let sysfs = FsSysfs::for_fs(&self.fs)?;
            for &devid in &running {
                let old = sysfs.scrub_speed_max(devid)?.ok_or(Error::KernelLacks {
                    op: OP,
                    path: sysfs
                        .path()
                        .join(format!("devinfo/{devid}/scrub_speed_max")),
                    needs: "Linux 5.14 (scrub speed limits)",
                })?;
                sysfs.set_scrub_speed_max(devid, limit)?;
                restore.push((devid, old));
            }
        }
        let log = self
            .request
            .name_damaged_files
            .then(|| KernelLog::open(&self.devices));
        let all_devids: Vec<u64> = self.slots.iter().map(|s| s.devid).collect();
        let shared = Arc::new(Shared {
            fs: self.fs.try_clone()?,
            slots: Mutex::new(self.slots.clone()),
            ended: Condvar::new(),
            began: Instant::now(),
            expected: expected_bytes(&self.fs, &all_devids),
            origin: self.origin.clone(),
        });
        let flags = if self.request.read_only {
            sys::BTRFS_SCRUB_READONLY as u64
        } else {
            0
        };
        let mut threads = Vec::new();
        for slot in self.slots.iter().filter(|s| s.state == SlotState::Running) {
            let shared = Arc::clone(&shared);
            let (devid, start, end) = (slot.devid, slot.start, slot.range.1);
            let thread = std::thread::Builder::new()
                .name(format!("btrfs-scrub-{devid}"))
                .spawn(move || scrub_one(&shared, devid, start, end, flags))
                .map_err(|e| spawn_error(&self.fs, e))?;
            threads.push(thread);
        }
        let monitor_shared = Arc::clone(&shared);
        let fs_for_error = self.fs.try_clone()?;
        let monitor = std::thread::Builder::new()
            .name("btrfs-scrub-monitor".into())
            .spawn(move || {
                Monitor {
                    start: self,
                    restore,
                    log,
                    threads,
                }
                .run(&monitor_shared)
            })
            .map_err(|e| spawn_error(&fs_for_error, e))?;
        Ok(ScrubHandle { shared, monitor })
    }
}

/// One device's thread: the blocking ioctl, then its result into the slot.
fn scrub_one(shared: &Shared, devid: u64, start: u64, end: u64, flags: u64) {
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
        Err(Errno::ECANCELED) => DeviceScrubState::Cancelled,
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

/// The monitor thread's belongings.
struct Monitor {
    start: Start,
    restore: Vec<(u64, SpeedLimit)>,
    log: Option<KernelLog>,
    threads: Vec<JoinHandle<()>>,
}

impl Monitor {
    fn run(mut self, shared: &Shared) -> Result<ScrubOutcome> {
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

    fn restore_limits(&self) {
        let Ok(sysfs) = FsSysfs::for_fs(&self.start.fs) else {
            return;
        };
        for &(devid, old) in &self.restore {
            let _ = sysfs.set_scrub_speed_max(devid, old);
        }
    }

    /// Writes the state file: the running scrub (or, with `done`, the finished outcome).
    fn save(&self, shared: &Shared, done: bool) -> Result<()> {
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

    fn finish(&self, shared: &Shared) -> Result<ScrubOutcome> {
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
    fn save_completed(&self, outcome: &ScrubOutcome) -> Result<()> {
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
