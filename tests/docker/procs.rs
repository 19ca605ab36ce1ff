//! Finding the processes a test's Docker left: read from `/proc`, matched by a path unique to the
//! test (its tempdir), never by a program name.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testkit::daemon::Daemon;
use testkit::ensure;
use testkit::harness::Failed;

/// One process as `/proc/<pid>/stat` and `cmdline` describe it.
struct Proc {
    pid: i32,
    ppid: i32,
    zombie: bool,
    cmdline: String,
}

fn read_proc(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses; the last ')' ends it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(Proc {
        pid,
        ppid,
        zombie: state == "Z" || state == "X",
        cmdline: String::from_utf8_lossy(&cmdline).replace('\0', " "),
    })
}

fn all_processes() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(read_proc)
        .collect()
}

/// Live processes whose command line mentions `marker` (a path only this test uses, e.g.
/// dockerd's exec root: the managed containerd and every containerd-shim name it), and all
/// their descendants (a shim's container processes). Zombies are dead and not listed.
pub fn mentioning(marker: &Path) -> Vec<Pid> {
    let marker = marker.to_string_lossy();
    let procs = all_processes();
    let mut found: BTreeSet<i32> = procs
        .iter()
        .filter(|p| !p.zombie && p.cmdline.contains(marker.as_ref()))
        .map(|p| p.pid)
        .collect();
    loop {
        let before = found.len();
        for p in &procs {
            if !p.zombie && found.contains(&p.ppid) {
                found.insert(p.pid);
            }
        }
        if found.len() == before {
            break;
        }
    }
    found.into_iter().map(Pid::from_raw).collect()
}

/// Whether `pid` is alive (not gone, not a zombie).
pub fn alive(pid: Pid) -> bool {
    read_proc(pid.as_raw()).is_some_and(|p| !p.zombie)
}

/// Waits until none of `pids` is alive, polling until `timeout`; the ones still alive.
pub fn wait_gone(pids: &[Pid], timeout: Duration) -> Vec<Pid> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<Pid> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `pid` is gone from the process table (dead and reaped: a zombie still counts,
/// as it does for dockerd, which checks its containerd's pidfile with `kill(pid, 0)`), polling
/// until `timeout`; whether it went.
pub fn wait_reaped(pid: Pid, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// SIGKILLs `pids` and waits for them to die; the ones that would not.
pub fn kill_all(pids: &[Pid]) -> Vec<Pid> {
    for &pid in pids {
        let _ = kill(pid, Signal::SIGKILL);
    }
    wait_gone(pids, Duration::from_secs(10))
}

/// A short description of `pids` for an error message.
pub fn describe(pids: &[Pid]) -> String {
    pids.iter()
        .map(|&p| match read_proc(p.as_raw()) {
            Some(proc) => format!("{} {}", p, proc.cmdline.trim()),
            None => format!("{p} (gone)"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Fails if a process mentioning `marker` is alive (after SIGKILLing them all), naming them
/// as survivors of `what`.
pub fn none_survive(marker: &Path, what: &str) -> Result<(), Failed> {
    let survivors = mentioning(marker);
    if !survivors.is_empty() {
        let described = describe(&survivors);
        kill_all(&survivors);
        return Err(format!("processes of the stopped {what} survived: {described}").into());
    }
    Ok(())
}

/// The release of a daemon, unchecked (for `Drop`, also after a panic): `daemon`, if still
/// running, is stopped (SIGKILLed after `timeout`), then every process mentioning `marker`
/// is killed.
pub fn release(daemon: Option<Daemon>, timeout: Duration, marker: &Path) {
    if let Some(mut daemon) = daemon {
        daemon.stop(timeout);
    }
    kill_all(&mentioning(marker));
}

/// Fails unless no process mentions `marker` and `mounts` is empty.
pub fn nothing_left(marker: &Path, mounts: &[PathBuf]) -> Result<(), Failed> {
    let left = mentioning(marker);
    ensure!(left.is_empty(), "processes left: {}", describe(&left));
    ensure!(mounts.is_empty(), "mounts left: {mounts:?}");
    Ok(())
}
