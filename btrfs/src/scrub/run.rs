//! Scrub control from any process: status, cancel, and the blocking entry points; the kernel's
//! returns mapped to typed errors.

use super::errors::scrub_error;
use super::outcome::ScrubOutcome;
use super::progress::ScrubProgress;
use super::request::ScrubRequest;
use super::start::Start;
use crate::error::{Error, ErrorKind, Result};
use crate::fs::Filesystem;
use crate::ioctl;
use rustix::io::Errno;

/// One device of a running scrub, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DeviceStatus {
    /// The device id.
    pub devid: u64,
    /// Its counters, `None` when no scrub runs on this device.
    pub progress: Option<ScrubProgress>,
}

/// The scrub running on a filesystem, started by anyone (this crate, btrfs-progs, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ScrubStatus {
    /// Every device, scrubbing or not.
    pub devices: Vec<DeviceStatus>,
}

impl ScrubStatus {
    /// The counters summed over the devices being scrubbed.
    pub fn total(&self) -> ScrubProgress {
        ScrubProgress::sum(self.devices.iter().filter_map(|d| d.progress.as_ref()))
    }

    /// How many devices are being scrubbed.
    pub fn running(&self) -> usize {
        self.devices.iter().filter(|d| d.progress.is_some()).count()
    }
}

impl Filesystem {
    /// Runs a scrub and blocks until it ends (see [`scrub_background`](Self::scrub_background)
    /// for progress and cancelling).
    pub fn scrub(&self, request: &ScrubRequest) -> Result<ScrubOutcome> {
        self.scrub_background(request)?.wait()
    }

    /// Resumes the scrub recorded in the request's state directory and blocks until it ends;
    /// with nothing recorded it starts from the beginning and says so in
    /// [`ScrubOutcome::origin`].
    pub fn scrub_resume(&self, request: &ScrubRequest) -> Result<ScrubOutcome> {
        self.scrub_resume_background(request)?.wait()
    }

    /// The counters of the scrub running on device `devid` (`BTRFS_IOC_SCRUB_PROGRESS`),
    /// `None` when none runs there. Needs CAP_SYS_ADMIN.
    pub fn scrub_device_progress(&self, devid: u64) -> Result<Option<ScrubProgress>> {
        match ioctl::scrub_progress(self.fd(), devid) {
            Ok(p) => Ok(Some(ScrubProgress::from_sys(&p))),
            Err(Errno::NOTCONN) => Ok(None),
            Err(errno) => Err(scrub_error(self, "scrub progress", devid, errno)),
        }
    }

    /// The scrub running on this filesystem, whoever started it; `None` when no device is
    /// being scrubbed. Needs CAP_SYS_ADMIN.
    pub fn scrub_status(&self) -> Result<Option<ScrubStatus>> {
        let mut devices = Vec::new();
        for devid in self.device_ids()? {
            devices.push(DeviceStatus {
                devid,
                progress: self.scrub_device_progress(devid)?,
            });
        }
        let status = ScrubStatus { devices };
        Ok((status.running() > 0).then_some(status))
    }

    /// Cancels every scrub running on this filesystem (`BTRFS_IOC_SCRUB_CANCEL`) and returns
    /// once they have stopped. A scrub started by this crate records where each device got
    /// to, for [`scrub_resume`](Self::scrub_resume). Fails with [`ErrorKind::ScrubNotRunning`]
    /// when none runs.
    pub fn scrub_cancel(&self) -> Result<()> {
        const OP: &str = "scrub cancel";
        match ioctl::scrub_cancel(self.fd()) {
            Ok(_) => Ok(()),
            Err(Errno::NOTCONN) => Err(Error::new(OP, self.path(), ErrorKind::ScrubNotRunning)),
            Err(errno) => Err(self.err(OP, errno)),
        }
    }

    /// Starts a scrub on its own threads (one per device, plus one that polls progress,
    /// records state and watches the kernel log) and returns at once.
    pub fn scrub_background(&self, request: &ScrubRequest) -> Result<super::ScrubHandle> {
        Start::new(self, request, false)?.spawn()
    }

    /// [`scrub_resume`](Self::scrub_resume) on background threads.
    pub fn scrub_resume_background(&self, request: &ScrubRequest) -> Result<super::ScrubHandle> {
        Start::new(self, request, true)?.spawn()
    }
}
