//! Today's containerd and dockerd (Debian sid's containerd 2.1 and docker.io 28, from
//! `testkit::userland`) in places the test owns: a private containerd with a v3 configuration,
//! a private dockerd (its own containerd, or one given), each a `testkit::daemon::Daemon`:
//! stopped by its pid on drop, also after a panic; the userland's private mount namespace ends
//! with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use testkit::daemon::Daemon;
use testkit::harness::Failed;
use testkit::userland::Userland;

/// How long a daemon has between SIGTERM and SIGKILL (on drop too).
const STOP_GRACE: Duration = Duration::from_secs(20);

/// A private containerd from the userland.
pub struct Containerd {
    daemon: Option<Daemon>,
    dir: tempfile::TempDir,
    userland: Userland,
    binds: Vec<PathBuf>,
    /// Its root.
    pub root: PathBuf,
    /// Its v3 configuration file.
    pub config: PathBuf,
    /// Its API socket.
    pub socket: PathBuf,
}

impl Containerd {
    /// Starts containerd with `root` (bound into the userland too) and waits until it answers.
    pub fn start(root: &Path) -> Result<Containerd, Failed> {
        let userland = Userland::sid()?;
        let dir = tempfile::Builder::new()
            .prefix("dockroot-ctrd-")
            .tempdir()?;
        let d = dir.path();
        let config = d.join("config.toml");
        let socket = d.join("containerd.sock");
        std::fs::write(
            &config,
            format!(
                "version = 3\nroot = \"{}\"\nstate = \"{}\"\n[grpc]\n  address = \"{}\"\n[ttrpc]\n  address = \"{}\"\n[debug]\n  address = \"{}\"\n",
                root.display(),
                d.join("state").display(),
                socket.display(),
                d.join("ttrpc.sock").display(),
                d.join("debug.sock").display()
            ),
        )?;
        let mut c = Containerd {
            daemon: None,
            binds: vec![d.to_path_buf(), root.to_path_buf()],
            dir,
            userland,
            root: root.into(),
            config,
            socket,
        };
        c.spawn()?;
        Ok(c)
    }

    /// (Re)starts the process and waits until its API answers.
    pub fn spawn(&mut self) -> Result<(), Failed> {
        let _ = std::fs::remove_file(&self.socket);
        let binds: Vec<&Path> = self.binds.iter().map(PathBuf::as_path).collect();
        let mut cmd = self.userland.command("/usr/bin/containerd", &binds)?;
        cmd.arg("--config").arg(&self.config);
        let socket = self.socket.clone();
        let daemon = Daemon::start(
            "containerd",
            cmd,
            &self.dir.path().join("containerd.log"),
            Duration::from_secs(60),
            || socket.exists() && self.ctr(&["version"]).is_ok_and(|o| o.status.success()),
        )?;
        self.daemon = Some(daemon.with_grace(STOP_GRACE));
        Ok(())
    }

    /// Its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// Runs the userland's `ctr --address SOCKET ARGS`, with `extra` directories bound.
    pub fn ctr_with(&self, args: &[&str], extra: &[&Path]) -> Result<Output, Failed> {
        let mut binds: Vec<&Path> = vec![self.dir.path()];
        binds.extend_from_slice(extra);
        Ok(self
            .userland
            .command("/usr/bin/ctr", &binds)?
            .arg("--address")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()?)
    }

    /// A `ctr --address SOCKET ARGS` command, to spawn.
    pub fn ctr_command(&self, args: &[&str]) -> Result<Command, Failed> {
        let mut cmd = self.userland.command("/usr/bin/ctr", &[self.dir.path()])?;
        cmd.arg("--address").arg(&self.socket).args(args);
        Ok(cmd)
    }

    /// Runs `ctr`, failing on a non-zero exit; its stdout.
    pub fn ctr_ok(&self, args: &[&str]) -> Result<String, Failed> {
        let out = self.ctr(args)?;
        if !out.status.success() {
            return Err(format!("ctr {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn ctr(&self, args: &[&str]) -> Result<Output, Failed> {
        self.ctr_with(args, &[])
    }

    /// Stops it (SIGTERM, SIGKILL after 20 s) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.stop(STOP_GRACE);
        }
    }

    /// Kills it with SIGKILL (a crash) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill();
        }
    }

    /// Its pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().and_then(Daemon::pid)
    }

    /// A `ctr` wrapper script running the userland's ctr (for dockroot's `--ctr`).
    pub fn ctr_script(&self) -> Result<PathBuf, Failed> {
        ctr_script(&self.userland, self.dir.path(), &[self.dir.path()])
    }
}

/// Writes `dir/ctr`, a script that runs the userland's ctr with `binds` bound.
pub fn ctr_script(userland: &Userland, dir: &Path, binds: &[&Path]) -> Result<PathBuf, Failed> {
    let cmd = userland.command("/usr/bin/ctr", binds)?;
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
    let mut line = vec![quote(cmd.get_program())];
    line.extend(cmd.get_args().map(quote));
    let path = dir.join("ctr");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\nexport PATH\nexec {} \"$@\"\n",
            line.join(" ")
        ),
    )?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(path)
}

/// A private dockerd from the userland.
pub struct Dockerd {
    daemon: Option<Daemon>,
    userland: Userland,
    binds: Vec<PathBuf>,
    /// Its work directory (exec root, pidfile, socket, daemon.json, log).
    pub dir: tempfile::TempDir,
    /// Its data root.
    pub data_root: PathBuf,
    /// Its socket.
    pub socket: PathBuf,
    /// Its pidfile.
    pub pidfile: PathBuf,
    /// Its daemon.json.
    pub config: PathBuf,
    containerd: Option<PathBuf>,
}

impl Dockerd {
    /// Starts dockerd on `data_root` with `daemon_json`, its own containerd or the one on
    /// `containerd` (whose directory `bind` is bound too); waits until it answers.
    pub fn start(
        data_root: &Path,
        daemon_json: &str,
        containerd: Option<(&Path, &Path)>,
    ) -> Result<Dockerd, Failed> {
        let userland = Userland::sid()?;
        let dir = tempfile::Builder::new().prefix("dockroot-dkd-").tempdir()?;
        let config = dir.path().join("daemon.json");
        std::fs::write(&config, daemon_json)?;
        let mut binds = vec![dir.path().to_path_buf(), data_root.to_path_buf()];
        if let Some((_, b)) = containerd {
            binds.push(b.to_path_buf());
        }
        let mut d = Dockerd {
            daemon: None,
            userland,
            binds,
            data_root: data_root.into(),
            socket: dir.path().join("docker.sock"),
            pidfile: dir.path().join("docker.pid"),
            config,
            containerd: containerd.map(|(s, _)| s.to_path_buf()),
            dir,
        };
        d.spawn()?;
        Ok(d)
    }

    /// The exec root (its managed containerd's socket is `<exec-root>/containerd/containerd.sock`).
    pub fn exec_root(&self) -> PathBuf {
        self.dir.path().join("exec")
    }

    /// (Re)starts the process and waits until it answers.
    pub fn spawn(&mut self) -> Result<(), Failed> {
        let binds: Vec<&Path> = self.binds.iter().map(PathBuf::as_path).collect();
        let name = self
            .dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut cmd = self.userland.command("/usr/sbin/dockerd", &binds)?;
        cmd.arg("--config-file")
            .arg(&self.config)
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("--pidfile")
            .arg(&self.pidfile)
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(["--iptables=false", "--bridge=none"])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .arg("--cgroup-parent")
            .arg(format!("/{name}"));
        if let Some(c) = &self.containerd {
            cmd.arg("--containerd").arg(c);
        }
        cmd.env_remove("DOCKER_HOST");
        let socket = self.socket.clone();
        let daemon = Daemon::start(
            "dockerd",
            cmd,
            &self.dir.path().join("dockerd.log"),
            Duration::from_secs(90),
            || dockroot::docker::Engine::new(&socket).ping(),
        )?;
        self.daemon = Some(daemon.with_grace(STOP_GRACE));
        Ok(())
    }

    /// Its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// Runs the userland's docker client; its output.
    pub fn docker(&self, args: &[&str]) -> Result<Output, Failed> {
        let binds: Vec<&Path> = self.binds.iter().map(PathBuf::as_path).collect();
        Ok(self
            .userland
            .command("/usr/bin/docker", &binds)?
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .stdin(Stdio::null())
            .output()?)
    }

    /// Runs docker, failing on a non-zero exit; its stdout.
    pub fn docker_ok(&self, args: &[&str]) -> Result<String, Failed> {
        let out = self.docker(args)?;
        if !out.status.success() {
            return Err(format!(
                "docker {args:?}: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.log()
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Imports a one-file root filesystem as `tag` (a tar made in the work directory).
    pub fn import(&self, tag: &str, content: &str) -> Result<(), Failed> {
        let root = self
            .dir
            .path()
            .join(format!("rootfs-{}", tag.replace([':', '/'], "-")));
        std::fs::create_dir_all(root.join("etc"))?;
        std::fs::write(root.join("etc/content"), content)?;
        let tar = root.with_extension("tar");
        let out = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()?;
        if !out.status.success() {
            return Err(format!("tar: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        self.docker_ok(&["import", tar.to_str().ok_or("path")?, tag])?;
        Ok(())
    }

    /// A `ctr` wrapper for its managed containerd (binds its work directory).
    pub fn ctr_script(&self) -> Result<PathBuf, Failed> {
        ctr_script(&self.userland, self.dir.path(), &[self.dir.path()])
    }

    /// Stops it (SIGTERM, SIGKILL after 20 s) and waits.
    pub fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.stop(STOP_GRACE);
        }
    }
}
