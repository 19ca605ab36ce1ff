//! Running a balance: start (blocking), resume, pause, cancel and status, with the kernel's
//! return codes mapped to typed outcomes and errors.

use super::request::Balance;
use crate::error::{Error, ErrorKind, Result};
use crate::fs::Filesystem;
use crate::ioctl;
use btrfs_sys as sys;
use rustix::io::Errno;

/// Chunk counters of a balance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BalanceProgress {
    /// Chunks the balance expects to relocate (an estimate while it runs).
    pub expected: u64,
    /// Chunks looked at so far.
    pub considered: u64,
    /// Chunks relocated so far.
    pub relocated: u64,
}

impl BalanceProgress {
    fn from_sys(stat: &sys::btrfs_balance_progress) -> Self {
        BalanceProgress {
            expected: stat.expected,
            considered: stat.considered,
            relocated: stat.completed,
        }
    }
}

/// How a balance run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "state", rename_all = "lowercase")
)]
pub enum BalanceOutcome {
    /// Every selected chunk was processed.
    Completed {
        /// Chunks looked at.
        considered: u64,
        /// Chunks relocated.
        relocated: u64,
    },
    /// Paused on request; resume with [`Filesystem::balance_resume`] (or at the next mount,
    /// unless mounted with `skip_balance`).
    Paused(BalanceProgress),
    /// Cancelled on request (or by a fatal signal); relocated chunks stay relocated.
    Cancelled(BalanceProgress),
}

impl BalanceOutcome {
    /// Chunks relocated by this run.
    pub fn relocated(&self) -> u64 {
        match self {
            BalanceOutcome::Completed { relocated, .. } => *relocated,
            BalanceOutcome::Paused(p) | BalanceOutcome::Cancelled(p) => p.relocated,
        }
    }

    /// Chunks considered by this run.
    pub fn considered(&self) -> u64 {
        match self {
            BalanceOutcome::Completed { considered, .. } => *considered,
            BalanceOutcome::Paused(p) | BalanceOutcome::Cancelled(p) => p.considered,
        }
    }
}

/// The state of a balance that is running or paused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BalanceStatus {
    /// Whether it is running (false: paused).
    pub running: bool,
    /// Whether a pause was requested and not yet honoured.
    pub pause_requested: bool,
    /// Whether a cancel was requested and not yet honoured.
    pub cancel_requested: bool,
    /// Its counters.
    pub progress: BalanceProgress,
    /// What it was asked to do.
    pub request: Balance,
}

impl BalanceStatus {
    fn from_sys(args: &sys::btrfs_ioctl_balance_args) -> Self {
        let state = args.state;
        let has = |bit: u32| state & bit as u64 != 0;
        BalanceStatus {
            running: has(sys::BTRFS_BALANCE_STATE_RUNNING),
            pause_requested: has(sys::BTRFS_BALANCE_STATE_PAUSE_REQ),
            cancel_requested: has(sys::BTRFS_BALANCE_STATE_CANCEL_REQ),
            progress: BalanceProgress::from_sys(&args.stat),
            request: Balance::from_sys(args),
        }
    }
}

/// Maps a failed BALANCE_V2 to an error.
fn balance_error(fs: &Filesystem, op: &'static str, errno: Errno) -> Error {
    let path = fs.path().to_path_buf();
    match errno {
        Errno::INPROGRESS => Error::new(op, path, ErrorKind::BalanceAlreadyRunning),
        Errno::NOTCONN => Error::new(op, path, ErrorKind::BalanceNotRunning),
        Errno::INVAL => Error::new(op, path, ErrorKind::KernelRejected { hint: Some("reducing metadata or system redundancy (e.g. convert=single from dup) needs Balance::force; a convert target needs enough devices for its profile") }),
        errno => Error::from_errno(op, path, errno),
    }
}

/// Maps a failed BALANCE_CTL / BALANCE_PROGRESS to an error.
fn control_error(fs: &Filesystem, op: &'static str, errno: Errno) -> Error {
    match errno {
        Errno::NOTCONN => Error::new(op, fs.path(), ErrorKind::BalanceNotRunning),
        errno => fs.err(op, errno),
    }
}

/// One BALANCE_V2 call, blocking ([`Filesystem::balance`]) or on its own thread
/// ([`Filesystem::balance_background`]): its operation name and its arguments.
pub(crate) struct BalanceCall {
    op: &'static str,
    args: sys::btrfs_ioctl_balance_args,
}

impl BalanceCall {
    /// Starts `request` on `fs`, checked here before anything reaches the kernel, and encoded
    /// for the filesystem's block groups: with mixed block groups data and metadata get the
    /// same filters, as the kernel requires (see [`Balance`]'s mixed encoding).
    pub(crate) fn start(fs: &Filesystem, request: &Balance) -> Result<Self> {
        request.validate()?;
        let args = if fs.is_mixed()? {
            request.to_sys_mixed()?
        } else {
            request.to_sys()
        };
        Ok(BalanceCall {
            op: "balance",
            args,
        })
    }

    /// Resumes the paused balance.
    pub(crate) fn resume() -> Self {
        BalanceCall {
            op: "balance resume",
            args: sys::btrfs_ioctl_balance_args {
                flags: sys::BTRFS_BALANCE_RESUME as u64,
                ..Default::default()
            },
        }
    }

    /// The operation, for errors.
    pub(crate) fn op(&self) -> &'static str {
        self.op
    }
}

impl Filesystem {
    /// Runs a balance and blocks until it ends. Pause or cancel from another thread (or
    /// process) ends it early with [`BalanceOutcome::Paused`] or [`BalanceOutcome::Cancelled`].
    pub fn balance(&self, request: &Balance) -> Result<BalanceOutcome> {
        self.run_balance(BalanceCall::start(self, request)?)
    }

    /// Resumes a paused balance and blocks until it ends.
    pub fn balance_resume(&self) -> Result<BalanceOutcome> {
        self.run_balance(BalanceCall::resume())
    }

    /// Makes `call` and maps what the kernel returns to an outcome or an error.
    pub(crate) fn run_balance(&self, call: BalanceCall) -> Result<BalanceOutcome> {
        let BalanceCall { op, mut args } = call;
        match ioctl::balance_v2(self.fd(), &mut args) {
            Ok(0) => Ok(BalanceOutcome::Completed {
                considered: args.stat.considered,
                relocated: args.stat.completed,
            }),
            Ok(code) => Err(self.btrfs_error_code(op, code)),
            Err(Errno::CANCELED) => {
                let progress = BalanceProgress::from_sys(&args.stat);
                let has = |bit: u32| args.state & u64::from(bit) != 0;
                let (cancel, pause) = (
                    has(sys::BTRFS_BALANCE_STATE_CANCEL_REQ),
                    has(sys::BTRFS_BALANCE_STATE_PAUSE_REQ),
                );
                let paused = match (pause, cancel) {
                    (true, false) => true,
                    // Both asked for (a cancel while a pause waits for its chunk): the kernel
                    // (seen on 6.18) honours the pause and keeps the balance, although the
                    // cancel call returns 0. Say what the kernel did.
                    (true, true) => self.balance_status()?.is_some_and(|s| !s.running),
                    // A cancel, or a fatal signal (which sets neither bit).
                    (false, _) => false,
                };
                Ok(if paused {
                    BalanceOutcome::Paused(progress)
                } else {
                    BalanceOutcome::Cancelled(progress)
                })
            }
            Err(errno) => Err(balance_error(self, op, errno)),
        }
    }

    /// The balance running or paused on this filesystem, if any (needs CAP_SYS_ADMIN).
    pub fn balance_status(&self) -> Result<Option<BalanceStatus>> {
        match ioctl::balance_progress(self.fd()) {
            Ok(args) => Ok(Some(BalanceStatus::from_sys(&args))),
            Err(Errno::NOTCONN) => Ok(None),
            Err(errno) => Err(control_error(self, "balance status", errno)),
        }
    }

    /// Asks the running balance to pause after the current chunk. The blocked
    /// [`balance`](Self::balance) call then returns [`BalanceOutcome::Paused`].
    pub fn balance_pause(&self) -> Result<()> {
        ioctl::balance_ctl(self.fd(), sys::BTRFS_BALANCE_CTL_PAUSE)
            .map_err(|e| control_error(self, "balance pause", e))?;
        Ok(())
    }

    /// Cancels the running or paused balance. Chunks already relocated stay relocated.
    pub fn balance_cancel(&self) -> Result<()> {
        ioctl::balance_ctl(self.fd(), sys::BTRFS_BALANCE_CTL_CANCEL)
            .map_err(|e| control_error(self, "balance cancel", e))?;
        Ok(())
    }
}
