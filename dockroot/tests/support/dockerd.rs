//! A real dockerd of the test's own: data root, exec root, pidfile and socket in places the
//! test owns, no iptables, no bridge; stopped by its pid on drop (also after a panic), with the
//! mounts it leaves under its exec root unmounted. It never touches a system Docker.

use dockroot::docker::Engine;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::harness::Failed;

/// A running dockerd.
pub struct Dockerd {
    child: Child,
    exec_root: tempfile::TempDir,
    /// The socket it answers on.
    pub socket: PathBuf,
    /// Its pidfile.
    pub pidfile: PathBuf,
}

/// A daemon.json body that keeps dockerd 20.10's trust key in `dir` (by default it writes
/// `/etc/docker/key.json` on the host).
pub fn key_config(dir: &Path) -> String {
    serde_json::json!({ "deprecated-key-path": dir.join("key.json") }).to_string()
}

impl Dockerd {
    /// Starts dockerd with `data_root`, `driver`, and its socket and pidfile where given;
    /// waits until it answers.
    pub fn start(
        data_root: &Path,
        driver: &str,
        socket: &Path,
        pidfile: &Path,
    ) -> Result<Dockerd, Failed> {
        Self::start_with(data_root, Some(driver), None, socket, pidfile)
    }

    /// Starts dockerd reading `config_file` (one of its own when `None`; a given one must set
    /// `deprecated-key-path`, see [`key_config`]),
    /// with `--storage-driver` only when `driver` is given (else daemon.json decides).
    pub fn start_with(
        data_root: &Path,
        driver: Option<&str>,
        config_file: Option<&Path>,
        socket: &Path,
        pidfile: &Path,
    ) -> Result<Dockerd, Failed> {
        let exec_root = tempfile::Builder::new()
            .prefix("dockroot-dockerd-")
            .tempdir()?;
        for p in [socket, pidfile] {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
        }
        // Never the host's /etc/docker/daemon.json.
        let config = match config_file {
            Some(c) => c.to_path_buf(),
            None => {
                let c = exec_root.path().join("daemon.json");
                std::fs::write(&c, key_config(exec_root.path()))?;
                c
            }
        };
        let log = std::fs::File::create(exec_root.path().join("dockerd.log"))?;
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(data_root)
            .arg("--exec-root")
            .arg(exec_root.path().join("exec"))
            .arg("--pidfile")
            .arg(pidfile)
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args(
                driver
                    .map(|d| ["--storage-driver", d])
                    .into_iter()
                    .flatten(),
            )
            .args(["--iptables=false", "--bridge=none"])
            .arg("--config-file")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .env_remove("DOCKER_HOST")
            .spawn();
        let child = child.map_err(|e| format!("start dockerd (is docker.io installed?): {e}"))?;
        let mut d = Dockerd {
            child,
            exec_root,
            socket: socket.into(),
            pidfile: pidfile.into(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !Engine::new(socket).ping() {
            if let Ok(Some(status)) = d.child.try_wait() {
                return Err(format!("dockerd exited ({status}): {}", d.log()).into());
            }
            if Instant::now() > deadline {
                return Err(format!("dockerd did not answer within 60 s: {}", d.log()).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(d)
    }

    /// Its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.exec_root.path().join("dockerd.log")).unwrap_or_default()
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // dockerd leaves an nsfs mount under its exec root; unmount what is ours only.
        let ours = self.exec_root.path().to_path_buf();
        if let Ok(table) = btrfs_kit::mounts::MountTable::current() {
            for m in table
                .mounts
                .iter()
                .rev()
                .filter(|m| m.mount_point.starts_with(&ours))
            {
                let _ = nix::mount::umount2(&m.mount_point, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}
