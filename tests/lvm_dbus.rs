//! The same loop-device suite as `lvm_cli`, through lvmdbusd: each test starts its own
//! dbus-daemon and lvmdbusd, confined by `global_filter` to the test's loop devices.
//! Needs root (or CI=true), the `dbus` and `lvm2-dbusd` packages.

mod lvm_common;

use lvm_common::daemon::PrivateLvmDbusd;
use lvm_common::fixture::Sandbox;
use lvm_common::suite::{self, Factory};
use lvm_kit::{Bytes, CliBackend, LvCreate, LvmBackend, NewSize, MIB};
use std::sync::Arc;
use testkit::ensure;
use testkit::harness::{self, ctx, Failed};

fn dbus_factory() -> Factory {
    Arc::new(|devices| {
        let daemon = PrivateLvmDbusd::start(devices)?;
        // tmo 0: every change comes back as a Job, so the suite exercises the Job
        // pattern (poll with Job.Wait, read Result/GetError, Remove).
        let backend = daemon.backend()?.with_tmo(0);
        Ok((
            Box::new(backend) as Box<dyn LvmBackend>,
            Box::new(daemon) as Box<dyn Send>,
        ))
    })
}

testkit::register!(prefix "dbus"; root: stale_daemon_refreshes);
/// Changes made with the CLI behind the daemon's back show up after its Refresh, and changes
/// made through the daemon are seen by the CLI.
fn stale_daemon_refreshes() -> Result<(), Failed> {
    let sb = Sandbox::new(1, 64 * MIB)?;
    let daemon = PrivateLvmDbusd::start(&sb.paths())?;
    // The default tmo: changes normally finish within it, without a Job.
    let dbus = daemon.backend()?;
    let cli: &CliBackend = &sb.cli;
    let vg = sb.vg_name("stale");
    ctx("cli pv", cli.pv_create(sb.disk(0)))?;
    ctx("cli vg", cli.vg_create(&vg, &[sb.disk(0)], None))?;
    ctx(
        "cli lv",
        cli.lv_create(&vg, "made_by_cli", LvCreate::size(Bytes::mib(8)).inactive()),
    )?;
    // The daemon learned nothing of this yet; lookups refresh on a miss.
    let lv = ctx("dbus lv", dbus.lv(&vg, "made_by_cli"))?;
    ensure!(lv.size == Bytes::mib(8), "size via D-Bus {}", lv.size);
    let grown = ctx(
        "dbus extend",
        dbus.lv_extend(&vg, "made_by_cli", NewSize::Add(Bytes::mib(4))),
    )?;
    ensure!(grown.size == Bytes::mib(12), "grown {}", grown.size);
    ensure!(
        ctx("cli lv", cli.lv(&vg, "made_by_cli"))?.size == Bytes::mib(12),
        "CLI disagrees"
    );
    ensure!(
        sb.lvm_bytes("lvs", "lv_size", &format!("{vg}/made_by_cli"))? == 12 * MIB,
        "lvs disagrees"
    );
    drop(dbus);
    drop(daemon);
    Ok(())
}

testkit::register!(prefix "dbus"; root: example_lvm);
/// examples/lvm.rs with the D-Bus backend against a private lvmdbusd.
fn example_lvm() -> Result<(), Failed> {
    let sb = Sandbox::new(1, 256 * MIB)?;
    let daemon = PrivateLvmDbusd::start(&sb.paths())?;
    let args = vec![
        "--backend".to_owned(),
        "dbus".to_owned(),
        "--dbus-address".to_owned(),
        daemon.address().to_owned(),
    ];
    let result = lvm_common::example::create_extend_report_remove(&sb, &args);
    drop(daemon);
    result
}

testkit::register!(prefix "dbus"; root: an_unprivileged_caller_is_refused_by_the_bus_policy);
/// A caller that is not root, through examples/lvm.rs: the bus refuses its call under the
/// policy lvm2-dbusd installs, and the error says that, and what to do, not lvm2's hint.
fn an_unprivileged_caller_is_refused_by_the_bus_policy() -> Result<(), Failed> {
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new(1, 64 * MIB)?;
    ctx("cli pv", sb.cli.pv_create(sb.disk(0)))?;
    let daemon = PrivateLvmDbusd::start(&sb.paths())?;
    daemon.admit_other_users()?;
    // nobody:nogroup, as on Debian.
    let out = ctx(
        "run examples/lvm as nobody",
        std::process::Command::new(lvm_common::example::binary()?)
            .args(["--backend", "dbus", "--dbus-address", daemon.address()])
            .arg("report")
            .uid(65534)
            .gid(65534)
            .stdin(std::process::Stdio::null())
            .output(),
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1),
        "lvm report as nobody: {} (stderr: {stderr})",
        out.status
    );
    ensure!(
        stderr.contains("permission denied")
            && stderr.contains("org.freedesktop.DBus.Error.AccessDenied"),
        "not a permission error from the bus: {stderr}"
    );
    ensure!(
        stderr.contains("com.redhat.lvmdbus1.conf") && !stderr.contains("use DbusBackend"),
        "the hint is not the bus policy's: {stderr}"
    );
    // Root, on the same bus, is served: the refusal was the policy's, not a broken daemon.
    let report = ctx("report as root", daemon.backend()?.report())?;
    let names: Vec<_> = report.pvs.iter().map(|p| p.name.as_path()).collect();
    ensure!(
        names == [sb.disk(0)],
        "root's report over D-Bus lists {names:?}, not the sandbox's PV"
    );
    drop(daemon);
    Ok(())
}

testkit::register!(table: suite_trials);
/// The shared LVM suite through the D-Bus backend.
fn suite_trials() -> Vec<harness::Trial> {
    suite::trials("dbus", dbus_factory())
}

fn main() {
    harness::run(harness::registered())
}
