//! A real dockerd of the test's own: data root, exec root, pidfile and socket in places the
//! test owns, no iptables, no bridge; stopped by its pid on drop (also after a panic), with the
//! mounts it leaves under its exec root unmounted. It never touches a system Docker.

use dockroot::docker::Engine;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use testkit::daemon::Daemon;
use testkit::harness::Failed;

/// A running dockerd.
pub struct Dockerd {
    daemon: Daemon,
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
        let mut cmd = Command::new("dockerd");
        cmd.arg("--data-root")
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
            .env_remove("DOCKER_HOST");
        let daemon = Daemon::start(
            "dockerd",
            cmd,
            &exec_root.path().join("dockerd.log"),
            Duration::from_secs(60),
            || Engine::new(socket).ping(),
        )
        .map_err(|e| format!("{e} (is docker.io installed?)"))?;
        Ok(Dockerd {
            daemon: daemon.with_grace(Duration::from_secs(20)),
            exec_root,
            socket: socket.into(),
            pidfile: pidfile.into(),
        })
    }

    /// Its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.exec_root.path().join("dockerd.log")).unwrap_or_default()
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.daemon.pid().unwrap_or(0)
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.daemon.stop(Duration::from_secs(20));
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
