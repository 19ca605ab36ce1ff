//! Runs `examples/lvm.rs` (built by `cargo test` next to the test binaries) end to end.

use super::fixture::Sandbox;
use lvm_kit::{Bytes, LvmBackend};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use testkit::ensure;
use testkit::harness::{ctx, Failed};

/// The `lvm` example binary, built by `cargo test` next to this test binary.
pub fn binary() -> Result<PathBuf, Failed> {
    let exe = ctx("current_exe", std::env::current_exe())?;
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .ok_or("test binary has no target dir")?;
    let path = dir.join("examples").join("lvm");
    if !path.exists() {
        return Err(format!(
            "{} is missing: build it with `cargo test` or `cargo build --examples`",
            path.display()
        )
        .into());
    }
    Ok(path)
}

/// Runs the example with `backend_args` then `args`; returns what it did, whatever its status.
pub fn run(backend_args: &[String], args: &[&str]) -> Result<Output, Failed> {
    ctx(
        "run examples/lvm",
        Command::new(binary()?)
            .args(backend_args)
            .args(args)
            .stdin(Stdio::null())
            .output(),
    )
}

/// The example's stdout, or a failure naming `what` with its stderr.
pub fn ok(out: &Output, what: &str) -> Result<String, Failed> {
    ensure!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// report, create, extend, remove, and the error paths, through the example's command line.
/// `backend_args` selects the backend (`--backend cli --devices ...` or `--backend dbus ...`).
pub fn create_extend_report_remove(sb: &Sandbox, backend_args: &[String]) -> Result<(), Failed> {
    let vg = sb.vg_name("ex");
    ctx("pv", sb.cli.pv_create(sb.disk(0)))?;
    ctx(
        "vg",
        sb.cli.vg_create(&vg, &[sb.disk(0)], Some(Bytes::mib(4))),
    )?;
    let full = format!("{vg}/docker");

    let out = ok(
        &run(
            backend_args,
            &["create", &vg, "docker", "10m", "--inactive"],
        )?,
        "create",
    )?;
    ensure!(
        out.contains(&format!("({} bytes)", 12 << 20)),
        "create output: {out}"
    );
    ensure!(
        sb.lvm_bytes("lvs", "lv_size", &full)? == 12 << 20,
        "lvs after create"
    );

    let out = ok(&run(backend_args, &["extend", &full, "+8m"])?, "extend")?;
    ensure!(
        out.contains(&format!("({} bytes)", 20 << 20)),
        "extend output: {out}"
    );
    ensure!(
        sb.lvm_bytes("lvs", "lv_size", &full)? == 20 << 20,
        "lvs after extend"
    );
    // Extending to the current size succeeds and changes nothing.
    ok(
        &run(backend_args, &["extend", &full, "20m"])?,
        "same-size extend",
    )?;
    ensure!(
        sb.lvm_bytes("lvs", "lv_size", &full)? == 20 << 20,
        "lvs after same-size extend"
    );

    let json = ok(&run(backend_args, &["report", "--json"])?, "report --json")?;
    let json: serde_json::Value = ctx("parse report JSON", serde_json::from_str(&json))?;
    let lv = json["lvs"]
        .as_array()
        .and_then(|lvs| {
            lvs.iter()
                .find(|l| l["name"] == "docker" && l["vg_name"] == vg.as_str())
        })
        .ok_or("docker missing from report --json")?;
    ensure!(lv["size"] == 20 << 20, "JSON size {}", lv["size"]);
    let vg_free = sb.lvm_bytes("vgs", "vg_free", &vg)?;
    let jvg = json["vgs"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == vg.as_str()))
        .ok_or("VG missing from report --json")?;
    ensure!(
        jvg["free"] == vg_free,
        "JSON free {} vs vgs {vg_free}",
        jvg["free"]
    );
    let table = ok(&run(backend_args, &["report"])?, "report")?;
    ensure!(table.contains(&full), "table lacks {full}: {table}");

    let out = run(backend_args, &["create", &vg, "-rf", "4m"])?;
    ensure!(!out.status.success(), "create -rf succeeded");
    let out = run(backend_args, &["create", &vg, "a b", "4m"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("invalid"),
        "create 'a b': {err}"
    );
    let out = run(backend_args, &["create", &vg, "huge", "10g", "--inactive"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("insufficient free space"),
        "huge: {err}"
    );

    ok(&run(backend_args, &["remove", &full])?, "remove")?;
    ensure!(
        ctx("report", sb.cli.report())?.lv(&vg, "docker").is_none(),
        "LV still there"
    );
    let out = run(backend_args, &["remove", &full])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("not found"),
        "second remove: {err}"
    );
    Ok(())
}
