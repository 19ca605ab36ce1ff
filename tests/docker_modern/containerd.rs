//! A system-style containerd: the userland's `containerd` 2.x started by the test with its own
//! v3 configuration (root, state, gRPC, ttrpc and debug sockets, all in a tempdir of the test),
//! the way a distribution runs it beside dockerd (`dockerd --containerd SOCKET`). The dockerd
//! that uses it runs in its mount namespace, as both share the host's on a system: dockerd 28
//! with the image store mounts each container's root filesystem itself (at
//! `<data-root>/rootfs/btrfs/<id>`) and hands that path to runc through containerd, so a
//! dockerd in a namespace of its own fails every container with `invalid rootfs: ... no such
//! file or directory`.
//!
//! Its root is a plain directory of the tempdir (on the host's filesystem: the operator's trap,
//! the btrfs snapshotter then refuses to load) or a subvolume of the test's btrfs bind-mounted
//! there (the remedy). The dockerd that uses it makes its own tempdir inside this one
//! ([`Containerd::dir`]), bound into the namespace with the data root.
//!
//! On drop, also after a panic: containerd is stopped by its pid (SIGTERM, SIGKILL after a
//! timeout), whatever still mentions the tempdir (shims, their containers) is killed by pid,
//! the bind mount is unmounted, then the tempdir goes. Its mounts (the shims' container root
//! filesystems) live in its private mount namespace and end with its last process.

use crate::daemon::mounts_below;
use crate::procs;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::Pid;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use testkit::daemon::Daemon;
use testkit::ensure;
use testkit::harness::Failed;
use testkit::userland::Userland;

/// The userland's containerd.
const CONTAINERD: &str = "/usr/bin/containerd";
/// The userland's containerd client.
const CTR: &str = "/usr/bin/ctr";
/// How long containerd may take to listen on its socket.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stop may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running containerd; see the module docs.
pub struct Containerd {
    userland: Userland,
    daemon: Option<Daemon>,
    /// The bind mount of the btrfs subvolume at the root, while mounted.
    root_mount: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl Containerd {
    /// Starts containerd with its root at `<tempdir>/root`: a plain directory there, or, with
    /// `root_subvolume`, that subvolume (a directory of the test's btrfs) bind-mounted there;
    /// `data_root` (the dockerd's to come) is bound into its namespace. Waits until it listens;
    /// also returns how long that took.
    pub fn start(
        userland: &Userland,
        root_subvolume: Option<&Path>,
        data_root: &Path,
    ) -> Result<(Self, Duration), Failed> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("btrfs-lvm-docker-")
            .tempdir()?;
        let mut containerd = Containerd {
            userland: userland.clone(),
            daemon: None,
            root_mount: None,
            dir,
        };
        let root = containerd.root();
        std::fs::create_dir(&root)?;
        if let Some(subvolume) = root_subvolume {
            mount(
                Some(subvolume),
                &root,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| {
                format!(
                    "bind-mount {} at {}: {e}",
                    subvolume.display(),
                    root.display()
                )
            })?;
            containerd.root_mount = Some(root.clone());
        }
        let d = containerd.dir.path();
        // Only what the test uses: no CRI (Kubernetes) services.
        let config = format!(
            "version = 3\n\
             root = {root:?}\n\
             state = {state:?}\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = {grpc:?}\n\
             [ttrpc]\n  address = {ttrpc:?}\n\
             [debug]\n  address = {debug:?}\n",
            root = root.display().to_string(),
            state = d.join("state").display().to_string(),
            grpc = containerd.socket().display().to_string(),
            ttrpc = d.join("containerd.sock.ttrpc").display().to_string(),
            debug = d.join("debug.sock").display().to_string(),
        );
        std::fs::write(d.join("config.toml"), config)?;
        let mut cmd = userland.command(CONTAINERD, &[d, data_root])?;
        cmd.arg("--config").arg(d.join("config.toml"));
        let socket = containerd.socket();
        let daemon = Daemon::start(
            "containerd",
            cmd,
            &containerd.log_path(),
            START_TIMEOUT,
            || UnixStream::connect(&socket).is_ok(),
        )?;
        containerd.daemon = Some(daemon.with_grace(STOP_TIMEOUT));
        Ok((containerd, started.elapsed()))
    }

    /// The tempdir: configuration, state, sockets, root; a dockerd using this containerd makes
    /// its own tempdir in it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// containerd's pid (the process whose mount namespace dockerd enters).
    pub fn pid(&self) -> Pid {
        Pid::from_raw(
            self.daemon
                .as_ref()
                .and_then(Daemon::pid)
                .map_or(0, |p| p as i32),
        )
    }

    /// The gRPC socket (`dockerd --containerd`).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// containerd's root (`root` of its configuration): its plugins' persistent data.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("containerd.log")
    }

    /// containerd's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Runs the userland's `ctr --address SOCKET ARGS`; fails unless it exits 0; its stdout.
    pub fn ctr(&self, args: &[&str]) -> Result<String, Failed> {
        ctr(&self.userland, &self.socket(), self.dir(), args)
    }

    /// Stops containerd by its pid with SIGTERM and waits for it; then checks that nothing of
    /// it (shims, containers) is left. The time it took.
    pub fn stop(&mut self) -> Result<Duration, Failed> {
        let started = Instant::now();
        let Some(mut daemon) = self.daemon.take() else {
            return Ok(Duration::ZERO);
        };
        let status = daemon
            .terminate(STOP_TIMEOUT)?
            .ok_or("containerd had exited")?;
        ensure!(
            status.success(),
            "containerd exited with {status} on SIGTERM:\n{}",
            self.log()
        );
        procs::none_survive(self.dir.path(), "containerd")?;
        Ok(started.elapsed())
    }

    fn release(&mut self) {
        procs::release(self.daemon.take(), STOP_TIMEOUT, self.dir.path());
        if let Some(root) = self.root_mount.take() {
            if umount2(&root, MntFlags::empty()).is_err() {
                let _ = umount2(&root, MntFlags::MNT_DETACH);
            }
        }
    }

    /// The teardown of a stopped containerd, checked: no process mentioning its tempdir and no
    /// mount under it is left.
    pub fn close(mut self) -> Result<(), Failed> {
        ensure!(
            self.daemon.is_none(),
            "close() of a running containerd: stop() it first"
        );
        self.release();
        procs::nothing_left(self.dir.path(), &mounts_below(&[self.dir.path()]))
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.release();
    }
}

/// Runs the userland's `ctr --address SOCKET ARGS` with `bind` (a directory holding the
/// socket) bound; fails unless it exits 0; its stdout.
pub fn ctr(
    userland: &Userland,
    socket: &Path,
    bind: &Path,
    args: &[&str],
) -> Result<String, Failed> {
    let out = userland
        .command(CTR, &[bind])?
        .arg("--address")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    ensure!(
        out.status.success(),
        "ctr {args:?}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
