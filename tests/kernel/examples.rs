//! The `balance` and `usage` examples, end to end against a loop filesystem.

use crate::util::{json, run, write_file, MIB};
use btrfs_kit::Filesystem;
use testkit::ensure;
use testkit::fixture::Scratch;
use testkit::harness::{Failed, Trial};

pub fn trials() -> Vec<Trial> {
    testkit::trials![
        root:
            balance_runs_the_daily_policy_with_json,
            balance_filters_status_and_errors,
            usage_reports_json_and_warns;
    ]
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

fn balance_runs_the_daily_policy_with_json() -> Result<(), Failed> {
    let scratch = scratch_with_holes()?;
    let path = scratch.path().to_str().ok_or("path")?;
    let out = run("balance", &[path, "--json"])?;
    ensure!(
        out.status.code() == Some(0),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
    let report = json(&out)?;
    ensure!(
        report["state"] == "completed" && report["mode"] == "policy",
        "report {report}"
    );
    let steps = report["steps"].as_array().ok_or("no steps")?;
    let requests: Vec<&str> = steps.iter().filter_map(|s| s["request"].as_str()).collect();
    ensure!(
        requests
            == [
                "-dusage=0",
                "-dusage=5",
                "-dusage=10",
                "-musage=0",
                "-musage=5",
            ],
        "{requests:?}",
    );
    let total: u64 = steps.iter().filter_map(|s| s["relocated"].as_u64()).sum();
    ensure!(
        report["relocated"].as_u64() == Some(total),
        "relocated total differs from the steps' sum",
    );
    // Each step's "after" is the next step's "before" (nothing else writes).
    for pair in steps.windows(2) {
        ensure!(
            pair[0]["unallocated_after"] == pair[1]["unallocated_before"],
            "steps disagree: {pair:?}"
        );
    }
    let unallocated_now = Filesystem::open(scratch.path())?
        .usage()?
        .unallocated()
        .bytes();
    ensure!(
        steps.last().and_then(|s| s["unallocated_after"].as_u64()) == Some(unallocated_now),
        "final unallocated differs",
    );
    Ok(())
}

fn balance_filters_status_and_errors() -> Result<(), Failed> {
    let scratch = scratch_with_holes()?;
    let path = scratch.path().to_str().ok_or("path")?;
    let out = run("balance", &[path, "--json", "-dusage=0..60,limit=2"])?;
    ensure!(
        out.status.code() == Some(0),
        "filters: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out)?;
    ensure!(
        report["steps"][0]["request"] == "-dusage=0..60,limit=2",
        "{report}"
    );
    ensure!(
        report["relocated"].as_u64().is_some_and(|r| r <= 2),
        "limit=2 relocated more than 2"
    );
    let status = json(&run("balance", &[path, "--status", "--json"])?)?;
    ensure!(status["state"] == "none", "status {status}");
    let usage_error = run("balance", &[path, "-dsoft"])?;
    ensure!(
        usage_error.status.code() == Some(2),
        "soft without convert exit {:?}",
        usage_error.status,
    );
    let missing = run("balance", &["/nonexistent/path"])?;
    let stderr = String::from_utf8_lossy(&missing.stderr);
    ensure!(
        missing.status.code() == Some(1) && stderr.lines().count() == 1,
        "missing path: {stderr}",
    );
    Ok(())
}

fn usage_reports_json_and_warns() -> Result<(), Failed> {
    let scratch = scratch_with_holes()?;
    let path = scratch.path().to_str().ok_or("path")?;
    let out = run("usage", &[path, "--json"])?;
    ensure!(
        out.status.code() == Some(0),
        "usage exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
    let report = json(&out)?;
    let ours = Filesystem::open(scratch.path())?.usage()?;
    ensure!(
        report["usage"]["device_size"].as_u64() == Some(ours.device_size.bytes()),
        "device size differs",
    );
    let data_pct = report["data_used_percent"]
        .as_f64()
        .ok_or("no data percent")?;
    ensure!(data_pct > 0.0 && data_pct < 80.0, "data used {data_pct}%");
    let warn = format!("{}", (data_pct / 2.0).max(0.01));
    let over = run("usage", &[path, "--json", "--warn", &warn])?;
    ensure!(
        over.status.code() == Some(3),
        "--warn {warn}: exit {:?}",
        over.status
    );
    ensure!(
        json(&over)?["over_threshold"] == true,
        "over_threshold not set"
    );
    Ok(())
}
