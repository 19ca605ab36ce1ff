//! Shared pieces of dockroot's integration tests: running the binary in an isolated
//! environment, a real dockerd in a tempdir, Docker's layout built by hand, and a parser of
//! the monitoring-plugin output.
#![allow(dead_code)]

pub mod dockerd;
pub mod layout;
pub mod modern;
pub mod nagios;
pub mod prom;
pub mod report;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use testkit::harness::Failed;

/// The dockroot binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dockroot"))
}

/// A private world for one run of the tool: an empty configuration file, Docker's
/// configuration directory, socket and pidfile, a unit directory and an fstab, all in a
/// tempdir, so nothing of the host's /etc or Docker is read or touched.
pub struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// A new, empty environment.
    pub fn new() -> Result<Env, Failed> {
        let dir = tempfile::Builder::new().prefix("dockroot-env-").tempdir()?;
        std::fs::write(dir.path().join("dockroot.toml"), "")?;
        std::fs::create_dir_all(dir.path().join("etc/docker"))?;
        Ok(Env { dir })
    }

    /// The tempdir.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration file (empty unless a test writes it).
    pub fn config(&self) -> PathBuf {
        self.root().join("dockroot.toml")
    }

    /// Docker's configuration directory.
    pub fn docker_dir(&self) -> PathBuf {
        self.root().join("etc/docker")
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

    /// The global options that point the tool at this environment.
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

    /// Runs `dockroot ARGS` with this environment's options.
    pub fn run(&self, args: &[&str]) -> Result<Output, Failed> {
        Ok(Command::new(bin())
            .args(self.args())
            .args(args)
            .stdin(Stdio::null())
            .output()?)
    }

    /// `dockroot doctor PATH --json`, parsed; with the exit code.
    pub fn doctor(&self, path: &Path, extra: &[&str]) -> Result<(serde_json::Value, i32), Failed> {
        let path = path.to_str().ok_or("path")?;
        let mut args = vec!["doctor", path, "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args)?;
        Ok((report::parse(&out)?, out.status.code().unwrap_or(-1)))
    }
}

/// The check `id` of a doctor report: (status, summary).
pub fn check<'a>(report: &'a serde_json::Value, id: &str) -> Result<(&'a str, &'a str), Failed> {
    let c = report::check(report, id)?;
    Ok((
        c["status"].as_str().unwrap_or(""),
        c["summary"].as_str().unwrap_or(""),
    ))
}

/// Every item the check `id` of a doctor report lists (empty when it lists none).
pub fn items(report: &serde_json::Value, id: &str) -> Result<Vec<String>, Failed> {
    Ok(report::items(report::check(report, id)?))
}

/// Text of an output, for failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}; stdout: {}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
