//! The `balance` and `usage` examples, end to end against a loop filesystem.

use crate::root_test;
use crate::util::{check, write_file, MIB};
use btrfs_kit::Filesystem;
use libtest_mimic::{Failed, Trial};
use std::path::PathBuf;
use std::process::{Command, Output};
use testkit::fixture::Scratch;

pub fn trials() -> Vec<Trial> {
    vec![
        root_test(
            "examples::balance_runs_the_daily_policy_with_json",
            balance_policy,
        ),
        root_test(
            "examples::balance_filters_status_and_errors",
            balance_filters_and_errors,
        ),
        root_test("examples::usage_reports_json_and_warns", usage_warns),
    ]
}

/// An example binary built by `cargo test` next to this test binary.
pub fn example(name: &str) -> Result<PathBuf, Failed> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .ok_or("no target dir")?;
    let path = dir.join("examples").join(name);
    check(
        path.exists(),
        format!(
            "{} is missing: build it with `cargo test` or `cargo build --examples`",
            path.display()
        ),
    )?;
    Ok(path)
}

pub fn run(name: &str, args: &[&str]) -> Result<Output, Failed> {
    Ok(Command::new(example(name)?).args(args).output()?)
}

pub fn json(out: &Output) -> Result<serde_json::Value, Failed> {
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "bad JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into()
    })
}

fn scratch_with_holes() -> Result<Scratch, Failed> {
    let scratch = Scratch::btrfs(2048 * MIB)?;
    for i in 0..16 {
        write_file(&scratch.path().join(format!("f{i}")), 32 * MIB, i)?;
    }
    for i in (0..16).filter(|i| i % 4 != 0) {
        std::fs::remove_file(scratch.path().join(format!("f{i}")))?;
    }
    Filesystem::open(scratch.path())?.sync()?;
    Ok(scratch)
}

fn balance_policy() -> Result<(), Failed> {
    let scratch = scratch_with_holes()?;
    let path = scratch.path().to_str().ok_or("path")?;
    let out = run("balance", &[path, "--json"])?;
    check(
        out.status.code() == Some(0),
        format!(
            "exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    )?;
    let report = json(&out)?;
    check(
        report["state"] == "completed" && report["mode"] == "policy",
        format!("report {report}"),
    )?;
    let steps = report["steps"].as_array().ok_or("no steps")?;
    let requests: Vec<&str> = steps.iter().filter_map(|s| s["request"].as_str()).collect();
    check(
        requests
            == [
                "-dusage=0",
                "-dusage=5",
                "-dusage=10",
                "-musage=0",
                "-musage=5",
            ],
        format!("{requests:?}"),
    )?;
    let total: u64 = steps.iter().filter_map(|s| s["relocated"].as_u64()).sum();
    check(
        report["relocated"].as_u64() == Some(total),
        "relocated total differs from the steps' sum",
    )?;
    // Each step's "after" is the next step's "before" (nothing else writes).
    for pair in steps.windows(2) {
        check(
            pair[0]["unallocated_after"] == pair[1]["unallocated_before"],
            format!("steps disagree: {pair:?}"),
        )?;
    }
    let unallocated_now = Filesystem::open(scratch.path())?
        .usage()?
        .unallocated()
        .bytes();
    check(
        steps.last().and_then(|s| s["unallocated_after"].as_u64()) == Some(unallocated_now),
        "final unallocated differs",
    )?;
    Ok(())
}

fn balance_filters_and_errors() -> Result<(), Failed> {
    let scratch = scratch_with_holes()?;
    let path = scratch.path().to_str().ok_or("path")?;
    let out = run("balance", &[path, "--json", "-dusage=0..60,limit=2"])?;
    check(
        out.status.code() == Some(0),
        format!("filters: {}", String::from_utf8_lossy(&out.stderr)),
    )?;
    let report = json(&out)?;
    check(
        report["steps"][0]["request"] == "-dusage=0..60,limit=2",
        format!("{report}"),
    )?;
    check(
        report["relocated"].as_u64().is_some_and(|r| r <= 2),
        "limit=2 relocated more than 2",
    )?;
    let status = json(&run("balance", &[path, "--status", "--json"])?)?;
    check(status["state"] == "none", format!("status {status}"))?;
    let usage_error = run("balance", &[path, "-dsoft"])?;
    check(
        usage_error.status.code() == Some(2),
        format!("soft without convert exit {:?}", usage_error.status),
    )?;
    let missing = run("balance", &["/nonexistent/path"])?;
    let stderr = String::from_utf8_lossy(&missing.stderr);
    check(
        missing.status.code() == Some(1) && stderr.lines().count() == 1,
        format!("missing path: {stderr}"),
    )?;
    Ok(())
}

fn usage_warns() -> Result<(), Failed> {
    let scratch = scratch_with_holes()?;
    let path = scratch.path().to_str().ok_or("path")?;
    let out = run("usage", &[path, "--json"])?;
    check(
        out.status.code() == Some(0),
        format!(
            "usage exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    )?;
    let report = json(&out)?;
    let ours = Filesystem::open(scratch.path())?.usage()?;
    check(
        report["usage"]["device_size"].as_u64() == Some(ours.device_size.bytes()),
        "device size differs",
    )?;
    let data_pct = report["data_used_percent"]
        .as_f64()
        .ok_or("no data percent")?;
    check(
        data_pct > 0.0 && data_pct < 80.0,
        format!("data used {data_pct}%"),
    )?;
    let warn = format!("{}", (data_pct / 2.0).max(0.01));
    let over = run("usage", &[path, "--json", "--warn", &warn])?;
    check(
        over.status.code() == Some(3),
        format!("--warn {warn}: exit {:?}", over.status),
    )?;
    check(
        json(&over)?["over_threshold"] == true,
        "over_threshold not set",
    )?;
    Ok(())
}
