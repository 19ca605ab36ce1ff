//! Crashing dockerd at a chosen moment of a client call: SIGKILL as soon as a subvolume appears
//! in, or vanishes from, `btrfs/subvolumes/` (inotify reports subvolume creation and deletion
//! like mkdir and rmdir), so the kill lands inside the storage driver's work, not before or after.

use crate::daemon::Dockerd;
use crate::layout::subvolumes_dir;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use testkit::harness::Failed;

/// What a crash left.
#[derive(Debug)]
pub struct Crash {
    /// The subvolume name whose event triggered the kill.
    pub trigger: String,
    /// The interrupted client call.
    pub client: Output,
    /// Processes of the daemon alive after the kill (its containerd dies with it).
    pub survivors: Vec<Pid>,
}

/// Which change of `btrfs/subvolumes/` triggers the kill.
#[derive(Debug, Clone, Copy)]
pub enum When {
    /// A subvolume is created (IN_CREATE).
    Created,
    /// A subvolume is deleted (IN_DELETE).
    Deleted,
}

/// Runs `docker args` and SIGKILLs dockerd as soon as a subvolume whose name satisfies
/// `wanted` is created or deleted. Fails if the call ends first or nothing happens in 60 s.
pub fn kill_on(
    d: &mut Dockerd,
    when: When,
    wanted: impl Fn(&str) -> bool,
    args: &[&str],
) -> Result<Crash, Failed> {
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
    let mask = match when {
        When::Created => AddWatchFlags::IN_CREATE,
        When::Deleted => AddWatchFlags::IN_DELETE,
    };
    inotify.add_watch(&subvolumes_dir(d.data_root()), mask)?;
    let mut client = d
        .client()?
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let trigger = loop {
        let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(100u16))?;
        let names = match inotify.read_events() {
            Ok(events) => events
                .into_iter()
                .filter_map(|e| e.name)
                .map(|n| n.to_string_lossy().into_owned())
                .collect(),
            Err(Errno::EAGAIN) => Vec::new(),
            Err(e) => return Err(format!("read inotify events: {e}").into()),
        };
        if let Some(name) = names.into_iter().find(|n| wanted(n)) {
            break name;
        }
        if let Some(status) = client.try_wait()? {
            return Err(format!(
                "docker {args:?} finished ({status}) before the {when:?} trigger fired"
            )
            .into());
        }
        if Instant::now() >= deadline {
            let _ = client.kill();
            let _ = client.wait();
            return Err(format!("no {when:?} trigger within 60 s during docker {args:?}").into());
        }
    };
    let survivors = d.kill()?;
    let client = client.wait_with_output()?;
    Ok(Crash {
        trigger,
        client,
        survivors,
    })
}
