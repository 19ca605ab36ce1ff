//! The tool's private world under one directory: an empty configuration file, Docker's
//! configuration directory, socket and pidfile, a unit directory and an fstab, and the global
//! options that point `dockroot` at them, so nothing of the host's /etc or Docker is read or
//! touched. [`super::Env`] lays it out in a tempdir; the guest tests of the QEMU tier lay it
//! out in their scratch VG's directory.

use std::path::{Path, PathBuf};
use testkit::harness::Failed;

/// The paths of the world under `root`; see the module docs.
#[derive(Debug, Clone)]
pub struct EnvPaths {
    root: PathBuf,
}

impl EnvPaths {
    /// Lays the world out under `root` (an empty `dockroot.toml`, `etc/docker`).
    pub fn prepare(root: &Path) -> Result<EnvPaths, Failed> {
        std::fs::write(root.join("dockroot.toml"), "")?;
        std::fs::create_dir_all(root.join("etc/docker"))?;
        Ok(EnvPaths { root: root.into() })
    }

    /// The directory holding it all.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The configuration file (empty unless a test writes it).
    pub fn config(&self) -> PathBuf {
        self.root().join("dockroot.toml")
    }

    /// Docker's configuration directory.
    pub fn docker_dir(&self) -> PathBuf {
        self.root().join("etc/docker")
    }

    /// Docker's `daemon.json`.
    pub fn daemon_json(&self) -> PathBuf {
        self.docker_dir().join("daemon.json")
    }

    /// The Engine API socket.
    pub fn socket(&self) -> PathBuf {
        self.root().join("run/docker.sock")
    }

    /// dockerd's pidfile.
    pub fn pidfile(&self) -> PathBuf {
        self.root().join("run/docker.pid")
    }

    /// The systemd unit directory.
    pub fn unit_dir(&self) -> PathBuf {
        self.root().join("etc/systemd/system")
    }

    /// The fstab.
    pub fn fstab(&self) -> PathBuf {
        self.root().join("etc/fstab")
    }

    /// The global options that point the tool at this world.
    pub fn args(&self) -> Vec<String> {
        let s = |p: PathBuf| p.display().to_string();
        vec![
            "--config".into(),
            s(self.config()),
            "--docker-config-dir".into(),
            s(self.docker_dir()),
            "--docker-socket".into(),
            s(self.socket()),
            "--docker-pidfile".into(),
            s(self.pidfile()),
            "--unit-dir".into(),
            s(self.unit_dir()),
            "--fstab-file".into(),
            s(self.fstab()),
        ]
    }
}
