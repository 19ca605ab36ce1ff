//! Is dockerd running? Two independent signs, either one is enough: its pidfile names a live
//! `dockerd` process, or its socket answers `GET /_ping`.

use super::engine::Engine;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What was found about the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaemonPresence {
    /// The pidfile looked at.
    pub pidfile: PathBuf,
    /// The socket looked at.
    pub socket: PathBuf,
    /// The pid in the pidfile, when that process is alive and is `dockerd`.
    pub pid: Option<u32>,
    /// A pid in the pidfile whose process is gone or is something else (a stale file).
    pub stale_pid: Option<u32>,
    /// Whether the socket answered `GET /_ping`.
    pub answers: bool,
}

impl DaemonPresence {
    /// Looks at `pidfile` and `socket`.
    pub fn detect(pidfile: &Path, socket: &Path) -> DaemonPresence {
        let recorded = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        let alive = recorded.filter(|pid| is_dockerd(*pid));
        DaemonPresence {
            pidfile: pidfile.into(),
            socket: socket.into(),
            pid: alive,
            stale_pid: recorded.filter(|_| alive.is_none()),
            answers: Engine::new(socket).ping(),
        }
    }

    /// Whether the daemon runs (either sign).
    pub fn running(&self) -> bool {
        self.pid.is_some() || self.answers
    }

    /// The evidence, in words: `pid 1234 (/var/run/docker.pid)` and/or `answers on SOCKET`.
    pub fn evidence(&self) -> String {
        let mut signs = Vec::new();
        if let Some(pid) = self.pid {
            signs.push(format!("dockerd pid {pid} ({})", self.pidfile.display()));
        }
        if self.answers {
            signs.push(format!("it answers on {}", self.socket.display()));
        }
        if signs.is_empty() {
            format!(
                "no live dockerd in {} and nothing answers on {}",
                self.pidfile.display(),
                self.socket.display()
            )
        } else {
            signs.join(", ")
        }
    }
}

/// Whether process `pid` exists and is dockerd (`/proc/PID/comm`).
fn is_dockerd(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "dockerd")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_pidfile_and_a_silent_socket_mean_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("docker.pid");
        // Our own pid: alive, but not dockerd.
        std::fs::write(&pidfile, std::process::id().to_string()).unwrap();
        let p = DaemonPresence::detect(&pidfile, &dir.path().join("docker.sock"));
        assert!(!p.running(), "{p:?}");
        assert_eq!(p.stale_pid, Some(std::process::id()));
        assert!(p.evidence().contains("no live dockerd"));
        let none = DaemonPresence::detect(&dir.path().join("none"), &dir.path().join("none"));
        assert!(!none.running() && none.stale_pid.is_none());
    }
}
