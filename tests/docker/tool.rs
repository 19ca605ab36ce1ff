//! The operator's tool, `dockroot`, run on the tier's data root the way an operator runs it:
//! a process of its own, its stdout and exit code read back, `doctor --json` parsed, `check`'s
//! plugin output parsed as a monitoring system parses it.
//!
//! The process is this test binary run again with [`AS_DOCKROOT`] set, whose `main` then is
//! `dockroot::command::main`, which is all the `dockroot` binary is: so the tool under test is
//! always the one of this build (a `target/debug/dockroot` may be stale, or missing when only
//! this tier was built). Every path the tool would take from the host is given: an empty
//! configuration file except for the scrub state directory, Docker's configuration directory
//! (the one holding the daemon.json this dockerd reads), the daemon's socket and pidfile, a unit
//! directory and an fstab, all in a tempdir; LVM confined to the loop device.

use crate::doctor_report;
use crate::nagios::{self, PluginOutput};
use crate::scenario::Rig;
use serde_json::Value;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use testkit::ensure;
use testkit::harness::Failed;

/// Set in the environment of a child process to make this binary run as `dockroot`.
pub const AS_DOCKROOT: &str = "BTRFS_LVM_TEST_AS_DOCKROOT";

/// The tool, pointed at one rig.
pub struct Tool {
    dir: tempfile::TempDir,
    global: Vec<OsString>,
    data_root: OsString,
}

impl Tool {
    /// The tool for `rig`'s data root, daemon and loop device.
    pub fn new(rig: &Rig) -> Result<Tool, Failed> {
        let dir = tempfile::Builder::new()
            .prefix("btrfs-lvm-dockroot-")
            .tempdir()?;
        let config = dir.path().join("dockroot.toml");
        let scrub = dir.path().join("scrub-state");
        std::fs::write(
            &config,
            format!(
                "[paths]\nscrub_state_dir = {:?}\n",
                scrub.display().to_string()
            ),
        )?;
        let d = &rig.docker;
        let mut global: Vec<OsString> = Vec::new();
        let mut flag = |name: &str, value: &Path| {
            global.push(name.into());
            global.push(value.into());
        };
        flag("--config", &config);
        flag("--docker-config-dir", d.config_dir());
        flag("--docker-socket", &d.socket());
        flag("--docker-pidfile", &d.pidfile());
        flag("--unit-dir", &dir.path().join("systemd"));
        flag("--fstab-file", &dir.path().join("fstab"));
        flag("--devices", rig.scratch.device());
        Ok(Tool {
            dir,
            global,
            data_root: rig.root().into(),
        })
    }

    /// Runs `dockroot SUBCOMMAND DATA-ROOT ARGS` with the rig's paths.
    pub fn run(&self, subcommand: &str, args: &[&str]) -> Result<Output, Failed> {
        Ok(Command::new("/proc/self/exe")
            .env(AS_DOCKROOT, "1")
            .current_dir(self.dir.path())
            .args(&self.global)
            .arg(subcommand)
            .arg(&self.data_root)
            .args(args)
            .stdin(Stdio::null())
            .output()?)
    }

    /// `dockroot doctor --json ARGS`, parsed.
    pub fn doctor(&self, args: &[&str]) -> Result<Doctor, Failed> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run("doctor", &all)?;
        Ok(Doctor {
            json: doctor_report::parse(&out)?,
            code: out.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// `dockroot check`, parsed as a monitoring system does; its exit code, checked against the
    /// status line.
    pub fn check(&self) -> Result<(PluginOutput, i32), Failed> {
        let out = self.run("check", &[])?;
        let code = out.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let parsed = nagios::parse(dockroot::check::NAME, &stdout)?;
        ensure!(
            nagios::code_of(&parsed.status) == Some(code),
            "check: status {} but exit {code}:\n{stdout}",
            parsed.status,
        );
        Ok((parsed, code))
    }
}

/// A parsed `doctor --json` run.
pub struct Doctor {
    /// The report (with `fixes` when a fix was asked for).
    pub json: Value,
    /// The exit code.
    pub code: i32,
    /// What it printed on stderr.
    pub stderr: String,
}

impl Doctor {
    /// The check `id`.
    pub fn check(&self, id: &str) -> Result<&Value, Failed> {
        doctor_report::check(&self.json, id)
    }

    /// The status of check `id` (`ok`, `warning`, `critical`, `unknown`).
    pub fn status(&self, id: &str) -> Result<&str, Failed> {
        Ok(self.check(id)?["status"].as_str().unwrap_or(""))
    }

    /// What check `id` says, for messages.
    pub fn summary(&self, id: &str) -> Result<String, Failed> {
        let c = self.check(id)?;
        Ok(format!(
            "{id} {}: {}",
            c["status"].as_str().unwrap_or("?"),
            c["summary"].as_str().unwrap_or("?")
        ))
    }

    /// Every item check `id` lists.
    pub fn items(&self, id: &str) -> Result<BTreeSet<String>, Failed> {
        Ok(doctor_report::items(self.check(id)?).into_iter().collect())
    }

    /// The figure `label` of check `id`: its value and its critical threshold.
    pub fn figure(&self, id: &str, label: &str) -> Result<(f64, Option<f64>), Failed> {
        let f = self.check(id)?["figures"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["label"] == label))
            .ok_or_else(|| format!("no figure {label} in check {id}: {}", self.json))?;
        Ok((f["value"].as_f64().ok_or("no value")?, f["crit"].as_f64()))
    }

    /// The ids of the checks whose status is not `ok`.
    pub fn not_ok(&self) -> BTreeSet<String> {
        self.json["checks"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|c| c["status"] != "ok")
                    .filter_map(|c| c["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Names of the subvolumes `--fix-orphans` deleted.
    pub fn removed_orphans(&self) -> Result<BTreeSet<String>, Failed> {
        let fix = &self.json["fixes"]["orphans"];
        let removed = fix["removed"]
            .as_array()
            .ok_or_else(|| format!("no removal list: {fix} ({})", self.stderr))?;
        Ok(removed
            .iter()
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect())
    }
}
