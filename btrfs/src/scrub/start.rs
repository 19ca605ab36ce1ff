//! Everything decided before a scrub's threads start: the devices and ranges, a resume's
//! positions, the state directory's lock, the speed limits; then the threads.

//! A scrub on background threads: one per device running `BTRFS_IOC_SCRUB` (which blocks until
//! that device is done), and a monitor that polls progress, records the state file, watches
//! the kernel log and, at the end, builds the outcome.

use super::handle::ScrubHandle;
use super::kmsg::KernelLog;
use super::monitor::Monitor;
use super::outcome::ResumeOrigin;
use super::progress::ScrubProgress;
use super::request::{ScrubDevices, ScrubRequest};
use super::state::{create_private_dir, ScrubState};
use super::worker::{scrub_one, Shared, Slot, SlotState, OP};
use crate::error::{Error, ErrorKind, Result};
use crate::fs::Filesystem;
use crate::info::DeviceInfo;
use crate::size::ByteSize;
use crate::sysfs::FsSysfs;
use btrfs_sys as sys;
use opskit::{HolderLock, LockError};
use rustix::io::Errno;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Instant, SystemTime};
use uuid::Uuid;

/// Everything decided before the threads start.
pub(super) struct Start {
    pub(super) fs: Filesystem,
    pub(super) request: ScrubRequest,
    pub(super) fsid: Uuid,
    pub(super) devices: Vec<DeviceInfo>,
    pub(super) slots: Vec<Slot>,
    pub(super) origin: ResumeOrigin,
    pub(super) started: SystemTime,
    /// The state directory and the exclusive lock on `<fsid>.lock` in it.
    pub(super) recording: Option<(PathBuf, HolderLock)>,
    pub(super) previous: Option<ScrubState>,
}

pub(super) fn spawn_error(fs: &Filesystem, e: std::io::Error) -> Error {
    Error::new(
        OP,
        fs.path(),
        ErrorKind::Sys {
            errno: Errno::from_raw_os_error(
                e.raw_os_error().unwrap_or(Errno::AGAIN.raw_os_error()),
            ),
        },
    )
}

/// Takes the per-filesystem lock in `dir` without waiting (opskit's lock: the holder writes
/// its pid into `<fsid>.lock`).
pub(super) fn lock(fs: &Filesystem, dir: &Path, fsid: Uuid) -> Result<HolderLock> {
    let path = dir.join(format!("{fsid}.lock"));
    let fail = |detail: String| Error::new(OP, path.clone(), ErrorKind::StateFile { detail });
    create_private_dir(dir).map_err(|e| fail(format!("cannot create the state directory: {e}")))?;
    HolderLock::try_take(&path).map_err(|e| match e {
        LockError::Held { .. } => Error::new(
            OP,
            fs.path(),
            ErrorKind::ScrubAlreadyRunning { devid: None },
        ),
        LockError::Io { source, .. } => fail(format!("cannot open the lock file: {source}")),
    })
}

/// Bytes a scrub of `devids` will read, from the block groups' used bytes: each stripe on a
/// device holds its share of the chunk.
pub(super) fn expected_bytes(fs: &Filesystem, devids: &[u64]) -> ByteSize {
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
                    out.push(devices.iter().find(|d| d.devid == devid).ok_or(Error::new(
                        OP,
                        fs.path(),
                        ErrorKind::NoSuchDevice { devid },
                    ))?);
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
                    return Err(Error::new(
                        OP,
                        fs.path(),
                        ErrorKind::ScrubAlreadyRunning { devid: None },
                    ));
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
                let old = sysfs.scrub_speed_max(devid)?.ok_or(Error::new(
                    OP,
                    sysfs
                        .path()
                        .join(format!("devinfo/{devid}/scrub_speed_max")),
                    ErrorKind::KernelLacks {
                        needs: "Linux 5.14 (scrub speed limits)",
                    },
                ))?;
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
