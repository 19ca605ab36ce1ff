//! The LVM suite through the lvm2 CLI backend, on real loop devices, plus CLI-only checks.
//! Needs root (or CI=true); otherwise every test is reported as ignored with the reason.

mod lvm2_habits;
#[path = "../lvm_common/mod.rs"]
mod lvm_common;

use lvm_common::fixture::Sandbox;
use lvm_common::suite::{self, Factory};
use lvm_kit::{Bytes, CliBackend, Confinement, Error, LvCreate, LvmBackend, MIB};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use testkit::ensure;
use testkit::harness::{self, ctx, Failed};

fn cli_factory() -> Factory {
    Arc::new(|devices| {
        let confinement = ctx("confine", Confinement::new(devices.iter().cloned()))?;
        let cli = CliBackend::new()
            .with_confinement(&confinement)
            .with_metadata_backup(false);
        Ok((
            Box::new(cli) as Box<dyn LvmBackend>,
            Box::new(()) as Box<dyn Send>,
        ))
    })
}

testkit::register!(prefix "cli"; root: version_is_detected);
/// The version is detected and the backend uses the matching report format.
fn version_is_detected() -> Result<(), Failed> {
    let cli = CliBackend::new();
    let v = ctx("version", cli.version())?;
    ensure!(v.major == 2, "unexpected lvm2 version {v}");
    let line = ctx("command_line", cli.command_line("fullreport", &[]))?;
    let format = if v.has_json_std() { "json_std" } else { "json" };
    ensure!(
        line.iter().any(|a| a == format),
        "{format} missing from {line:?}"
    );
    Ok(())
}

testkit::register!(prefix "cli"; root: activation_without_device_mapper);
/// Without device-mapper, activation is refused with a typed error and nothing runs.
fn activation_without_device_mapper() -> Result<(), Failed> {
    let sb = Sandbox::new(1, 64 * MIB)?;
    let cli = sb.cli.clone().with_device_mapper(false);
    let vg = sb.vg_name("nodm");
    ctx("pv", cli.pv_create(sb.disk(0)))?;
    ctx("vg", cli.vg_create(&vg, &[sb.disk(0)], None))?;
    let r = cli.lv_create(&vg, "lv", LvCreate::size(Bytes::mib(4)));
    ensure!(
        matches!(r, Err(Error::DeviceMapperUnavailable { .. })),
        "active lvcreate: {r:?}"
    );
    ctx(
        "lv",
        cli.lv_create(&vg, "lv", LvCreate::size(Bytes::mib(4)).inactive()),
    )?;
    let r = cli.lv_activate(&vg, "lv");
    ensure!(
        matches!(r, Err(Error::DeviceMapperUnavailable { .. })),
        "activate: {r:?}"
    );
    ensure!(
        !ctx("active", cli.lv_is_active(&vg, "lv"))?,
        "LV active without device-mapper"
    );
    Ok(())
}

testkit::register!(prefix "cli"; plain: names_checked_before_spawning);
/// A name check happens before any process: with a nonexistent lvm binary, a bad name still
/// yields InvalidName (a started process would give Spawn).
fn names_checked_before_spawning() -> Result<(), Failed> {
    let cli = CliBackend::new().with_lvm_binary("/nonexistent/lvm");
    let r = cli.vg_remove("-rf");
    ensure!(matches!(r, Err(Error::InvalidName { .. })), "{r:?}");
    let r = cli.vg_remove("fine");
    ensure!(
        matches!(r, Err(Error::Spawn { .. })),
        "a good name should reach the spawn: {r:?}"
    );
    Ok(())
}

testkit::register!(prefix "cli"; root: example_lvm);
/// examples/lvm.rs with the CLI backend, confined with --devices.
fn example_lvm() -> Result<(), Failed> {
    let sb = Sandbox::new(1, 256 * MIB)?;
    let devices: Vec<String> = sb.paths().iter().map(|p| p.display().to_string()).collect();
    let args = vec![
        "--backend".to_owned(),
        "cli".to_owned(),
        "--devices".to_owned(),
        devices.join(","),
    ];
    lvm_common::example::create_extend_report_remove(&sb, &args)
}

testkit::register!(prefix "cli"; root: locked_vg_is_busy);
/// A VG lock held by another process: with lock waiting off, a change fails with Busy.
fn locked_vg_is_busy() -> Result<(), Failed> {
    let sb = Sandbox::new(1, 64 * MIB)?;
    let vg = sb.vg_name("busy");
    ctx("pv", sb.cli.pv_create(sb.disk(0)))?;
    ctx("vg", sb.cli.vg_create(&vg, &[sb.disk(0)], None))?;
    // lvm2's per-VG flock (locking_dir defaults to /run/lock/lvm), held by flock(1). With -o
    // only flock itself holds it; its child prints a line once the lock is held, then waits
    // for stdin to close, after which both exit and the lock is free.
    let lock = format!("/run/lock/lvm/V_{vg}");
    let mut holder = ctx(
        "start flock",
        Command::new("flock")
            .args([
                "-o",
                lock.as_str(),
                "sh",
                "-c",
                "echo locked; exec cat >/dev/null",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn(),
    )?;
    let mut line = String::new();
    let stdout = holder.stdout.take().ok_or("flock stdout")?;
    ctx(
        "wait for the lock",
        BufReader::new(stdout).read_line(&mut line),
    )?;
    let result = sb.cli.clone().with_lock_wait(false).lv_create(
        &vg,
        "x",
        LvCreate::size(Bytes::mib(4)).inactive(),
    );
    drop(holder.stdin.take());
    ctx("wait for flock to release", holder.wait())?;
    ensure!(
        line.trim() == "locked",
        "flock did not take the lock: {line:?}"
    );
    ensure!(
        matches!(result, Err(Error::Busy { .. })),
        "lvcreate on a locked VG: {result:?}"
    );
    // The lock is free again: the same call now succeeds.
    ctx(
        "lvcreate after unlock",
        sb.cli.clone().with_lock_wait(false).lv_create(
            &vg,
            "x",
            LvCreate::size(Bytes::mib(4)).inactive(),
        ),
    )?;
    Ok(())
}

testkit::register!(table: suite_trials);
/// The shared LVM suite through the CLI backend.
fn suite_trials() -> Vec<harness::Trial> {
    suite::trials("cli", cli_factory())
}

fn main() {
    if let Some(code) = lvm2_habits::child_probe() {
        std::process::exit(code);
    }
    harness::run(harness::registered())
}
