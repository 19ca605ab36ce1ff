//! A balance running on its own thread, controllable from any thread.

use super::request::Balance;
use super::run::{BalanceCall, BalanceOutcome, BalanceProgress, BalanceStatus};
use crate::error::{Error, ErrorKind, Result};
use crate::fs::Filesystem;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A balance started with [`Filesystem::balance_background`]. Dropping the handle does not stop
/// the balance: the kernel keeps going; call [`cancel`](Self::cancel) or [`pause`](Self::pause).
#[derive(Debug)]
pub struct BalanceHandle {
    fs: Arc<Filesystem>,
    thread: JoinHandle<Result<BalanceOutcome>>,
}

impl BalanceHandle {
    /// The current counters, or `None` when no balance runs (not yet started, or ended).
    pub fn progress(&self) -> Result<Option<BalanceProgress>> {
        Ok(self.status()?.map(|s| s.progress))
    }

    /// The full status of the balance, or `None` when none runs.
    pub fn status(&self) -> Result<Option<BalanceStatus>> {
        self.fs.balance_status()
    }

    /// Waits until the kernel reports the balance as running, the thread has finished, or
    /// `timeout` passes. Returns whether it is running. Use it before [`pause`](Self::pause) so
    /// the request cannot arrive before the balance has started.
    pub fn wait_running(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.status()?.is_some_and(|s| s.running) {
                return Ok(true);
            }
            if self.thread.is_finished() || Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Asks the balance to pause; [`wait`](Self::wait) then returns [`BalanceOutcome::Paused`].
    pub fn pause(&self) -> Result<()> {
        self.fs.balance_pause()
    }

    /// Cancels the balance; [`wait`](Self::wait) then returns [`BalanceOutcome::Cancelled`].
    pub fn cancel(&self) -> Result<()> {
        self.fs.balance_cancel()
    }

    /// Whether the balance thread has ended (then [`wait`](Self::wait) does not block).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Blocks until the balance ends and returns how it ended.
    pub fn wait(self) -> Result<BalanceOutcome> {
        match self.thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Filesystem {
    /// Starts a balance on its own thread and returns at once. The request is checked before
    /// the thread starts, so invalid arguments fail here.
    pub fn balance_background(&self, request: &Balance) -> Result<BalanceHandle> {
        self.spawn_balance(BalanceCall::start(self, request)?)
    }

    /// Resumes a paused balance on its own thread.
    pub fn balance_resume_background(&self) -> Result<BalanceHandle> {
        self.spawn_balance(BalanceCall::resume())
    }

    fn spawn_balance(&self, call: BalanceCall) -> Result<BalanceHandle> {
        let op = call.op();
        let fs = Arc::new(self.try_clone()?);
        let runner = Arc::clone(&fs);
        let thread = std::thread::Builder::new()
            .name("btrfs-balance".into())
            .spawn(move || runner.run_balance(call))
            .map_err(|e| {
                Error::new(
                    op,
                    self.path(),
                    ErrorKind::Sys {
                        errno: rustix::io::Errno::from_raw_os_error(
                            e.raw_os_error()
                                .unwrap_or(rustix::io::Errno::AGAIN.raw_os_error()),
                        ),
                    },
                )
            })?;
        Ok(BalanceHandle { fs, thread })
    }
}
