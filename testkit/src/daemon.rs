//! A long-running program a test starts (dockerd, containerd, from the host or from
//! [`crate::userland`]): started with its output in a log file in the test's tempdir, ready
//! when a condition holds (its socket answers), polled with a deadline, and stopped by its pid
//! on [`Daemon::stop`], [`Daemon::terminate`] or drop (also after a panic): SIGTERM, then
//! SIGKILL if it has not exited in time. A daemon run in a private mount namespace
//! ([`crate::userland::Userland::command`]) takes that namespace, and every mount it made
//! there, with it.
//!
//! What a daemon leaves behind besides itself (a managed containerd, shims, mounts in the
//! host's namespace) is its fixture's to clean up, by paths it owns.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often [`Daemon::start`] and [`Daemon::terminate`] look again.
const POLL: Duration = Duration::from_millis(20);

/// How long a drop waits after SIGTERM before SIGKILL, unless [`Daemon::with_grace`] says.
const DROP_GRACE: Duration = Duration::from_secs(30);

/// A running daemon; see the module docs.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    grace: Duration,
}

/// Polls `ready` every 20 ms until it holds or `timeout` passes; the error says what was not
/// reached (`what`) in how long.
pub fn wait_for(
    timeout: Duration,
    what: &str,
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while !ready() {
        if Instant::now() >= deadline {
            return Err(format!("not {what} within {timeout:?}"));
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

impl Daemon {
    /// Starts `cmd` as `name` (stdin closed), appending its stdout and stderr to `log` (a file
    /// in the test's tempdir), and waits until `ready` holds (polled every 20 ms) or `timeout`
    /// passes; a daemon that exits first or is not ready in time is an error with the end of
    /// its log (and is stopped).
    pub fn start(
        name: &str,
        mut cmd: Command,
        log: &Path,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<Daemon, String> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("open {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("start {name} ({:?}): {e}", cmd.get_program()))?;
        let mut daemon = Daemon {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
            grace: DROP_GRACE,
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = daemon.try_wait() {
                return Err(format!(
                    "{name} exited ({status}) before it was ready:\n{}",
                    daemon.log_tail()
                ));
            }
            if ready() {
                return Ok(daemon);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{name} was not ready within {timeout:?}:\n{}",
                    daemon.log_tail()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The same daemon, given `grace` between SIGTERM and SIGKILL when it drops.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Its pid, while it runs (until it was stopped, killed or seen to exit).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its exit status if it has exited (then it is no longer running), else `None`.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(status)
    }

    /// Its whole log (all runs that appended to the file).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last 20 lines of its log.
    pub fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Stops it by its pid, checked: SIGTERM, then waits up to `timeout` for it to exit; if it
    /// has not, SIGKILLs and reaps it and fails. Its exit status (`None` if it was not running).
    pub fn terminate(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, String> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} (pid {pid}) did not exit within {timeout:?} of SIGTERM: killed",
                    self.name
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Stops it, unchecked: SIGTERM, up to `grace` to exit, then SIGKILL. Its exit status
    /// (`None` if it had to be killed or was not running).
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        match self.terminate(grace) {
            Ok(status) => status,
            Err(e) => {
                eprintln!("{e}");
                None
            }
        }
    }

    /// SIGKILLs it by its pid (a crash) and reaps it; whether it was running.
    pub fn kill(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        let _ = child.wait();
        true
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop(self.grace);
    }
}
