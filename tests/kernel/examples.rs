//! The `balance` and `usage` examples, end to end against a loop filesystem.

use crate::data::{write_file, MIB};
use crate::example_bin::{json, run};
use btrfs_kit::fiemap::FiemapReader;
use btrfs_kit::{BlockGroup, BlockGroupKind, Filesystem};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use testkit::ensure;
use testkit::fixture::Scratch;
use testkit::harness::Failed;

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

testkit::register!(root: balance_runs_the_daily_policy_with_json);
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

testkit::register!(root: balance_filters_status_and_errors);
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

/// A 1 GiB filesystem filled to ENOSPC with 1 MiB files, then emptied of all but four of the
/// files in one data block group: that group is below 5 % used, every other data block group is
/// full and no chunk fits in the unallocated space, so the policy's `-dusage=5` and
/// `-dusage=10` steps cannot relocate it (ENOSPC), as on a data root filled to the brim.
fn full_with_a_nearly_empty_data_chunk() -> Result<(Scratch, BlockGroup), Failed> {
    // More than the holes left in the full groups and the unallocated rest can take.
    const KEPT: usize = 4;
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let block = vec![0x5Au8; MIB as usize];
    let mut files = Vec::new();
    loop {
        let path = scratch.path().join(format!("f{}", files.len()));
        let written = std::fs::File::create(&path).and_then(|mut f| f.write_all(&block));
        match written {
            Ok(()) => files.push(path),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => {
                let _ = std::fs::remove_file(&path);
                break;
            }
            Err(e) => return Err(format!("write {}: {e}", path.display()).into()),
        }
        ensure!(files.len() < 2048, "a 1 GiB filesystem took 2 GiB of files");
    }
    let fs = Filesystem::open(scratch.path())?;
    fs.sync()?;
    // Which data block group holds each file (all its extents in one group).
    let groups: Vec<BlockGroup> = fs
        .block_groups()?
        .into_iter()
        .filter(|b| b.kind == BlockGroupKind::Data)
        .collect();
    let mut reader = FiemapReader::new();
    let mut inside: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    for path in &files {
        let extents = reader.extents_of_path(path)?;
        let group = |at: u64| {
            groups
                .iter()
                .find(|g| (g.logical..g.logical + g.length.bytes()).contains(&at))
                .map(|g| g.logical)
        };
        let first = extents.first().and_then(|e| group(e.physical.bytes()));
        if first.is_some()
            && extents.iter().all(|e| {
                group(e.physical.bytes()) == first
                    && group(e.physical.bytes() + e.length.bytes() - 1) == first
            })
        {
            inside
                .entry(first.unwrap_or_default())
                .or_default()
                .push(path.clone());
        }
    }
    let (&start, victims) = inside
        .iter()
        .max_by_key(|(_, v)| v.len())
        .ok_or("no file lies in a single data block group")?;
    for path in &victims[KEPT..] {
        std::fs::remove_file(path)?;
    }
    fs.sync()?;
    let group = fs
        .block_groups()?
        .into_iter()
        .find(|g| g.logical == start)
        .ok_or("the emptied block group went away")?;
    let others_full = fs
        .block_groups()?
        .iter()
        .filter(|g| g.kind == BlockGroupKind::Data && g.logical != start)
        .all(|g| g.usage_percent() > 95.0);
    let unallocated = fs.usage()?.unallocated();
    ensure!(
        group.usage_percent() > 0.0 && group.usage_percent() < 5.0 && others_full && unallocated.bytes() < 2 * MIB,
        "not the intended layout: block group {group:?} ({:.1} %), other data groups full: {others_full}, unallocated {unallocated}; {:?}",
        group.usage_percent(),
        fs.block_groups()?.iter().map(|g| format!("{:?} {} {:.2}", g.kind, g.length, g.usage_percent())).collect::<Vec<_>>(),
    );
    Ok((scratch, group))
}

testkit::register!(root: balance_policy_on_a_full_filesystem_reports_enospc_steps_and_goes_on);
/// On a full filesystem the daily policy reports every step, the ENOSPC ones included, goes on
/// after them, and exits 5 ("completed, with steps that hit ENOSPC"), in JSON and in text.
fn balance_policy_on_a_full_filesystem_reports_enospc_steps_and_goes_on() -> Result<(), Failed> {
    let (scratch, group) = full_with_a_nearly_empty_data_chunk()?;
    let path = scratch.path().to_str().ok_or("path")?;
    let out = run("balance", &[path, "--json"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(5),
        "exit {:?} on a full filesystem (expected 5): {stderr}",
        out.status,
    );
    let report = json(&out)?;
    ensure!(report["state"] == "enospc", "report {report}");
    let steps = report["steps"].as_array().ok_or("no steps")?;
    let states: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| {
            (
                s["request"].as_str().unwrap_or("?"),
                s["state"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    // The group qualifies for -dusage=5 and -dusage=10 and cannot move; every later step still
    // ran or was judged.
    ensure!(
        states.len() == 5
            && states[1] == ("-dusage=5", "enospc")
            && states[2] == ("-dusage=10", "enospc")
            && states[3..]
                .iter()
                .all(|(_, s)| ["completed", "skipped", "enospc"].contains(s)),
        "steps {states:?} (block group {group:?})",
    );
    ensure!(
        stderr.contains("ENOSPC") && stderr.contains("-dusage=5"),
        "stderr does not name the ENOSPC steps: {stderr}",
    );
    // --no-skip makes every step a kernel call: the metadata steps after the ENOSPC ones run.
    let text = run("balance", &[path, "--no-skip"])?;
    let stdout = String::from_utf8_lossy(&text.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("step ")).collect();
    ensure!(
        text.status.code() == Some(5)
            && lines.len() == 5
            && lines[1].contains("-dusage=5: enospc")
            && lines[3].starts_with("step 4/5 -musage=0: completed"),
        "text output, exit {:?}:\n{stdout}{}",
        text.status,
        String::from_utf8_lossy(&text.stderr),
    );
    Ok(())
}

testkit::register!(root: usage_reports_json_and_warns);
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
