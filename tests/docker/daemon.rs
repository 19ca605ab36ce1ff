//! A private dockerd: Debian's `docker.io` started by hand with everything it owns in a tempdir
//! of this test (exec root, pidfile, API socket, config file, trust key, client config) and its
//! data root on the test's btrfs. The programs are the host's (Debian 12: Docker 20.10) or those
//! of the cached sid userland ([`Options::userland`]: Docker 28, each program chrooted in a
//! private mount namespace with the tempdir and the data root bound at their own paths), with
//! the `daemon.json` and, optionally, the external containerd the [`Options`] give. It never
//! talks to, nor shares a path with, a system Docker: its own `--config-file` (so
//! `/etc/docker/daemon.json` is not read, and the trust key 20.10 writes to
//! `/etc/docker/key.json` by default goes to the tempdir), its own `--cgroup-parent`, and every
//! client call goes to its socket with `-H`.
//!
//! Unless given one, dockerd starts its own managed containerd (its config, socket and pidfile
//! live in the exec root); containerd starts one containerd-shim per running container. On drop, also after a
//! panic: dockerd is stopped by its pid (SIGTERM: it stops its containers and its containerd),
//! then whatever still mentions this tempdir in its command line (containerd, shims) and their
//! descendants are killed by pid, the mounts dockerd left (the nsfs at
//! `<exec-root>/netns/default`, after a SIGKILL also its bind mount of `<data-root>/btrfs`) are
//! unmounted, and the cgroups it made are removed, before the tempdir goes.
//!
//! Two empty directories on the host are made by any dockerd and cannot be moved: the plugin
//! socket directory `/run/docker/plugins` and containerd-shim's socket directory
//! `/run/containerd/s` (the shim's socket there is named by a hash of our exec root and
//! removed when the shim exits). Both are left as they are: another Docker may be using them.

use crate::procs;
use nix::mount::{umount2, MntFlags};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use testkit::daemon::Daemon;
use testkit::ensure;
use testkit::harness::Failed;
use testkit::userland::Userland;

/// Debian's dockerd (`docker.io`), on the host and in the userland.
pub const DOCKERD: &str = "/usr/sbin/dockerd";
/// Debian's client. Pinned: these machines have a newer client in `/usr/local/bin/docker`,
/// ahead in PATH, which works only through API version negotiation.
pub const DOCKER: &str = "/usr/bin/docker";

/// How long dockerd may take to answer its API after it was started (a busy shared machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stop may take: dockerd stops its running containers first (10 s each at most).
const STOP_TIMEOUT: Duration = Duration::from_secs(90);

/// How to run a dockerd: whose programs, which `daemon.json`, which containerd.
#[derive(Debug, Clone)]
pub struct Options {
    /// Run dockerd and the client from this userland; `None`: the host's (Debian 12, 20.10).
    pub userland: Option<Userland>,
    /// The `daemon.json` settings. On the host, `deprecated-key-path` (20.10's trust key, which
    /// it would otherwise write to `/etc/docker/key.json`) is added pointing into the tempdir;
    /// Docker 28 has no trust key and refuses that setting.
    pub config: serde_json::Map<String, serde_json::Value>,
    /// The socket of a containerd started by the test (`--containerd`); `None`: dockerd starts
    /// its own managed containerd.
    pub containerd: Option<PathBuf>,
    /// Make the tempdir inside this directory (e.g. that of the external containerd, whose
    /// shims must see the stdio FIFOs under our exec root); `None`: the system's temp directory.
    pub tempdir_in: Option<PathBuf>,
    /// Run dockerd in the mount namespace and root directory of this process (`nsenter`), e.g.
    /// the external containerd's, which must then see the tempdir and the data root: dockerd 28
    /// mounts a container's root filesystem itself and hands its path to runc through
    /// containerd. `None`: a namespace of its own ([`Userland::command`]).
    pub namespace_of: Option<Pid>,
}

impl Options {
    /// The host's Docker 20.10 with the btrfs storage driver, as the 20.10 tier runs it.
    pub fn host() -> Self {
        let mut config = serde_json::Map::new();
        config.insert("storage-driver".into(), "btrfs".into());
        Options {
            userland: None,
            config,
            containerd: None,
            tempdir_in: None,
            namespace_of: None,
        }
    }
}

/// A running private dockerd; see the module docs.
pub struct Dockerd {
    options: Options,
    data_root: PathBuf,
    daemon: Option<Daemon>,
    /// The managed containerd of the current run, from its pidfile.
    containerd: Option<Pid>,
    /// The absolute cgroup parent of the containers, named after the tempdir.
    cgroup_parent: String,
    dir: tempfile::TempDir,
}

impl Dockerd {
    /// Starts the host's dockerd on `data_root` (a directory on a mounted btrfs) and waits until
    /// its API answers; also returns how long that took.
    pub fn start(data_root: &Path) -> Result<(Self, Duration), Failed> {
        Self::start_with(data_root, Options::host())
    }

    /// Starts dockerd as `options` say on `data_root` and waits until its API answers; also
    /// returns how long that took.
    pub fn start_with(data_root: &Path, options: Options) -> Result<(Self, Duration), Failed> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("btrfs-lvm-docker-");
        let dir = match &options.tempdir_in {
            Some(parent) => builder.tempdir_in(parent)?,
            None => builder.tempdir()?,
        };
        let name = dir
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("tempdir name")?
            .to_string();
        std::fs::create_dir(dir.path().join("client"))?;
        std::fs::create_dir(dir.path().join("work"))?;
        // The storage driver is set here rather than with --storage-driver, so that the
        // operator tool's configured-driver check reads the file this daemon really uses.
        let mut config = options.config.clone();
        if options.userland.is_none() {
            config.insert(
                "deprecated-key-path".into(),
                dir.path()
                    .join("key.json")
                    .to_string_lossy()
                    .into_owned()
                    .into(),
            );
        }
        std::fs::write(
            dir.path().join("daemon.json"),
            serde_json::Value::Object(config).to_string(),
        )?;
        let mut dockerd = Dockerd {
            options,
            data_root: data_root.to_path_buf(),
            daemon: None,
            containerd: None,
            cgroup_parent: format!("/{name}"),
            dir,
        };
        let took = dockerd.spawn()?;
        Ok((dockerd, took))
    }

    /// The API socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// The directory of the `daemon.json` this daemon reads (`--config-file`).
    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The pidfile (`--pidfile`; dockerd removes it when it stops).
    pub fn pidfile(&self) -> PathBuf {
        self.dir.path().join("dockerd.pid")
    }

    /// dockerd's exec root (its and containerd's runtime state).
    pub fn exec_root(&self) -> PathBuf {
        self.dir.path().join("exec")
    }

    /// A scratch directory of this daemon's tempdir (build contexts, rootfs).
    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// The data root (`--data-root`).
    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("dockerd.log")
    }

    /// dockerd's log (all runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last lines of dockerd's log, for error messages.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn spawn(&mut self) -> Result<Duration, Failed> {
        let started = Instant::now();
        let d = self.dir.path();
        let program = match &self.options.userland {
            Some(userland) => userland.host_path(DOCKERD),
            None => PathBuf::from(DOCKERD),
        };
        ensure!(
            program.exists(),
            "start {DOCKERD} ({}): {} is missing",
            self.remedy(),
            program.display()
        );
        let mut cmd = match self.options.namespace_of {
            Some(pid) => {
                let mut cmd = Command::new("nsenter");
                cmd.arg("--target")
                    .arg(pid.to_string())
                    .args(["--mount", "--root", "--wd", "--", DOCKERD])
                    .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
                cmd
            }
            None => self.program(DOCKERD, &[d, &self.data_root])?,
        };
        if let Some(socket) = &self.options.containerd {
            cmd.arg("--containerd").arg(socket);
        }
        cmd.arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("--pidfile")
            .arg(self.pidfile())
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(["--iptables=false", "--bridge=none"])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .args(["--cgroup-parent", &self.cgroup_parent]);
        let socket = self.socket();
        let daemon = Daemon::start("dockerd", cmd, &self.log_path(), START_TIMEOUT, || {
            ping(&socket)
        })?;
        self.daemon = Some(daemon.with_grace(STOP_TIMEOUT));
        if self.options.containerd.is_none() {
            let pidfile = self.exec_root().join("containerd/containerd.pid");
            let pid = std::fs::read_to_string(&pidfile)
                .map_err(|e| format!("{}: {e} (no managed containerd?)", pidfile.display()))?;
            self.containerd = Some(Pid::from_raw(pid.trim().parse()?));
        }
        Ok(started.elapsed())
    }

    /// A command running `program` (a path the host and the userland share) from the host or
    /// from the userland, with `binds` bound there.
    fn program(&self, program: &str, binds: &[&Path]) -> Result<Command, Failed> {
        match &self.options.userland {
            None => Ok(Command::new(program)),
            Some(userland) => Ok(userland.command(program, binds)?),
        }
    }

    /// What to do when a program is missing.
    fn remedy(&self) -> &'static str {
        match self.options.userland {
            None => "install docker.io",
            Some(_) => "prepare the userland: bash .ci/sid-userland prepare",
        }
    }

    /// A client command for this daemon: Debian's client (the host's or the userland's, as the
    /// daemon's), our socket, our client config, the classic builder; nothing from the caller's
    /// Docker environment.
    pub fn client(&self) -> Result<Command, Failed> {
        let mut cmd = self.program(DOCKER, &[self.dir.path()])?;
        cmd.arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("client"))
            .env("DOCKER_BUILDKIT", "0")
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .stdin(Stdio::null());
        Ok(cmd)
    }

    /// Runs the client with `args`, whatever its exit status.
    pub fn docker(&self, args: &[&str]) -> Result<Output, Failed> {
        self.client()?
            .args(args)
            .output()
            .map_err(|e| format!("run {DOCKER} ({}): {e}", self.remedy()).into())
    }

    /// Runs the client with `args`; fails unless it exits 0; its stdout, trimmed.
    pub fn ok(&self, args: &[&str]) -> Result<String, Failed> {
        let out = self.docker(args)?;
        ensure!(
            out.status.success(),
            "docker {args:?} failed ({}): {}{}\ndockerd log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail(),
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Checks that `docker info` says `Storage Driver: btrfs` and names our data root.
    pub fn ensure_btrfs_on_data_root(&self) -> Result<(), Failed> {
        let info = self.ok(&["info"])?;
        ensure!(
            info.lines().any(|l| l.trim() == "Storage Driver: btrfs"),
            "docker info:\n{info}"
        );
        let root = self.ok(&["info", "--format", "{{.DockerRootDir}}"])?;
        ensure!(
            Path::new(&root) == self.data_root,
            "Docker Root Dir {root}, expected {}",
            self.data_root.display(),
        );
        Ok(())
    }

    /// Stops dockerd by its pid with SIGTERM and waits for it; then checks that its containerd
    /// and every process of this daemon (shims, containers) are gone. The time it took.
    pub fn stop(&mut self) -> Result<Duration, Failed> {
        let started = Instant::now();
        let Some(mut daemon) = self.daemon.take() else {
            return Ok(Duration::ZERO);
        };
        let status = daemon
            .terminate(STOP_TIMEOUT)?
            .ok_or("dockerd had exited")?;
        ensure!(
            status.success(),
            "dockerd exited with {status} on SIGTERM:\n{}",
            self.log_tail()
        );
        if let Some(containerd) = self.containerd {
            let left = procs::wait_gone(&[containerd], Duration::from_secs(10));
            ensure!(
                left.is_empty(),
                "dockerd stopped but its containerd {containerd} still runs"
            );
        }
        procs::none_survive(self.dir.path(), "dockerd")?;
        Ok(started.elapsed())
    }

    /// SIGKILLs dockerd (a crash) and reaps it. Its managed containerd dies with it (dockerd
    /// starts it with a parent-death signal); waits until it is reaped. Running containers'
    /// shims would survive: the processes of this daemon still alive then.
    pub fn kill(&mut self) -> Result<Vec<Pid>, Failed> {
        let Some(mut daemon) = self.daemon.take() else {
            return Err("dockerd is not running".into());
        };
        ensure!(daemon.kill(), "dockerd had exited before the kill");
        if let Some(containerd) = self.containerd {
            // Reparented to pid 1, the dead containerd stays a zombie until pid 1 reaps it
            // (about 1.7 s on these machines); a dockerd started before that takes the zombie
            // for a live containerd (its pidfile is still there) and gives up after 15 s.
            ensure!(
                procs::wait_reaped(containerd, Duration::from_secs(30)),
                "containerd {containerd} did not go away after dockerd was killed",
            );
        }
        Ok(procs::mentioning(self.dir.path()))
    }

    /// Starts dockerd again on the same data root and exec root; the time until its API answered.
    pub fn restart(&mut self) -> Result<Duration, Failed> {
        ensure!(self.daemon.is_none(), "restart of a running dockerd");
        self.spawn()
    }

    /// Mounts below this daemon's tempdir or below its data root (not the data root itself).
    pub fn mounts(&self) -> Vec<PathBuf> {
        mounts_below(&[&self.data_root, self.dir.path()])
    }

    fn unmount_all(&self) {
        // Deepest first; mounts may be stacked, so read again until none is left.
        for _ in 0..10 {
            let mut mounts = self.mounts();
            if mounts.is_empty() {
                return;
            }
            mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
            for m in mounts {
                if umount2(&m, MntFlags::empty()).is_err() {
                    let _ = umount2(&m, MntFlags::MNT_DETACH);
                }
            }
        }
    }

    /// The cgroup directories of `--cgroup-parent` (one per v1 hierarchy, or one on v2).
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let name = self.cgroup_parent.trim_start_matches('/');
        let root = Path::new("/sys/fs/cgroup");
        let mut dirs = vec![root.join(name)];
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                dirs.push(e.path().join(name));
            }
        }
        dirs.into_iter().filter(|d| d.is_dir()).collect()
    }

    fn remove_cgroups(&self) {
        for dir in self.cgroup_dirs() {
            // Container cgroups left by a killed container first, then the parent.
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    if e.path().is_dir() {
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }

    /// Stops dockerd if it runs (SIGTERM, SIGKILL after a timeout), kills by pid whatever of
    /// this daemon is left, unmounts what it left, removes its cgroups.
    fn release(&mut self) {
        procs::release(self.daemon.take(), STOP_TIMEOUT, self.dir.path());
        self.unmount_all();
        self.remove_cgroups();
    }

    /// The teardown of a stopped daemon, checked: after it no process, mount or cgroup of this
    /// daemon is left (the tempdir goes when `self` drops).
    pub fn close(mut self) -> Result<(), Failed> {
        ensure!(
            self.daemon.is_none(),
            "close() of a running dockerd: stop() it first"
        );
        self.release();
        procs::nothing_left(self.dir.path(), &self.mounts())?;
        let cgroups = self.cgroup_dirs();
        {
            ensure!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
            Ok(())
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.release();
    }
}

/// Whether dockerd answers `GET /_ping` on `socket`.
fn ping(socket: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.") && reply.lines().next().is_some_and(|l| l.contains(" 200 "))
}

/// The mount points of this mount namespace strictly below any of `dirs`.
pub fn mounts_below(dirs: &[&Path]) -> Vec<PathBuf> {
    let dirs: Vec<String> = dirs
        .iter()
        .map(|d| d.to_string_lossy().into_owned() + "/")
        .collect();
    mount_points()
        .into_iter()
        .filter(|m| {
            let m = m.to_string_lossy();
            dirs.iter().any(|d| m.starts_with(d.as_str()))
        })
        .collect()
}

/// Every mount point of this mount namespace, from `/proc/self/mountinfo`.
fn mount_points() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(v) = digits.and_then(|d| u8::from_str_radix(d, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
