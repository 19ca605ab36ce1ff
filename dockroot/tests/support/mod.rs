//! Shared pieces of dockroot's integration tests: running the binary in an isolated
//! environment, a real dockerd in a tempdir, Docker's layout built by hand, and a parser of
//! the monitoring-plugin output.
#![allow(dead_code)]

pub mod dockerd;
pub mod env_paths;
pub mod layout;
pub mod modern;
pub mod nagios;
pub mod prom;
pub mod report;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use testkit::harness::Failed;

pub use env_paths::EnvPaths;

/// The dockroot binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dockroot"))
}

/// A private world for one run of the tool ([`EnvPaths`]) in a tempdir; its paths are
/// [`EnvPaths`]'s (`Deref`).
pub struct Env {
    paths: EnvPaths,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Env {
    type Target = EnvPaths;

    fn deref(&self) -> &EnvPaths {
        &self.paths
    }
}

impl Env {
    /// A new, empty environment.
    pub fn new() -> Result<Env, Failed> {
        let dir = tempfile::Builder::new().prefix("dockroot-env-").tempdir()?;
        Ok(Env {
            paths: EnvPaths::prepare(dir.path())?,
            _dir: dir,
        })
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
