//! The `defrag` and `trim` examples, end to end on loop filesystems.

use crate::data::MIB;
use crate::defrag::write_interleaved;
use crate::example_bin::{json, run};
use crate::trim::RamfsBacked;
use std::path::Path;
use std::process::{Command, Output};
use testkit::ensure;
use testkit::fixture::Scratch;
use testkit::harness::Failed;

fn expect_code(out: &Output, code: i32, what: &str) -> Result<(), Failed> {
    ensure!(
        out.status.code() == Some(code),
        "{what}: exit {:?} (expected {code}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    Ok(())
}

/// The `files` entry of `path` in the example's JSON.
fn file_entry<'a>(doc: &'a serde_json::Value, path: &Path) -> Option<&'a serde_json::Value> {
    doc["paths"][0]["files"]
        .as_array()?
        .iter()
        .find(|f| f["path"].as_str() == path.to_str())
}

/// The file's extent count from a synced FIEMAP: `--flush` only starts the writeback of what the
/// defragmentation dirtied, so an unsynced map can still show the old extents.
fn extents(path: &Path) -> Result<usize, Failed> {
    use btrfs_kit::fiemap::{FiemapReader, FiemapRequest};
    use std::os::fd::AsFd;
    let file = std::fs::File::open(path)?;
    Ok(FiemapReader::new()
        .extents(file.as_fd(), path, &FiemapRequest::synced())?
        .len())
}

testkit::register!(prefix "examples"; root: defrag_dry_run_by_default_on_shared_then_skip_or_allow);
fn defrag_dry_run_by_default_on_shared_then_skip_or_allow() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let root = scratch.path();
    let (a, b, copy) = (root.join("a"), root.join("b"), root.join("copy"));
    write_interleaved(&a, &b, 64, 21)?;
    let out = Command::new("cp")
        .arg("--reflink=always")
        .arg(&a)
        .arg(&copy)
        .output()?;
    ensure!(out.status.success(), "cp --reflink=always");
    let dir = root.to_str().ok_or("path")?;
    let b_before = extents(&b)?;

    // Default: shared extents found, so only a dry run, exit 3, nothing changed.
    let out = run("defrag", &[dir, "--json"])?;
    expect_code(&out, 3, "default run on a tree with shared extents")?;
    let doc = json(&out)?;
    ensure!(doc["outcome"] == "refused-shared", "outcome: {doc}");
    let entry = file_entry(&doc, &copy).ok_or(format!("no entry for the copy: {doc}"))?;
    ensure!(
        entry["shared_extents"].as_u64() == Some(b_before as u64)
            && entry["would_unshare"].as_u64() == Some(64 * 64 * 1024),
        "the copy's entry: {entry}",
    );
    ensure!(extents(&b)? == b_before, "the default run changed nothing");
    let text = run("defrag", &[dir])?;
    expect_code(&text, 3, "default text run")?;
    let stdout = String::from_utf8_lossy(&text.stdout);
    ensure!(
        stdout.contains("--skip-shared") && stdout.contains("--allow-shared"),
        "the text says how to proceed: {stdout}",
    );

    // --dry-run says the same with outcome dry-run.
    let out = run("defrag", &[dir, "--dry-run", "--json"])?;
    expect_code(&out, 3, "--dry-run")?;
    ensure!(json(&out)?["outcome"] == "dry-run", "dry-run outcome");

    // --skip-shared defragments b only.
    let out = run("defrag", &[dir, "--skip-shared", "--flush", "--json"])?;
    expect_code(&out, 0, "--skip-shared")?;
    let doc = json(&out)?;
    let totals = &doc["paths"][0]["totals"];
    ensure!(
        totals["defragmented"] == 1 && totals["skipped_shared"] == 2,
        "totals: {totals}"
    );
    let b_after = extents(&b)?;
    ensure!(
        b_after * 4 <= b_before,
        "b: {b_before} -> {b_after} extents"
    );
    ensure!(
        btrfs_kit::defrag::plan_file(&copy, &Default::default())?.shared_extents > 0,
        "the copy is still shared",
    );

    // --allow-shared unshares.
    let out = run("defrag", &[dir, "--allow-shared", "--flush", "--json"])?;
    expect_code(&out, 0, "--allow-shared")?;
    let plan = btrfs_kit::defrag::plan_file(&copy, &Default::default())?;
    ensure!(plan.shared_extents == 0, "after --allow-shared: {plan:?}");

    // Usage errors.
    let out = run("defrag", &[dir, "--compress", "lz4"])?;
    expect_code(&out, 2, "unknown compression")?;
    let out = run("defrag", &[dir, "--dry-run", "--allow-shared"])?;
    expect_code(&out, 2, "conflicting options")?;
    Ok(())
}

testkit::register!(prefix "examples"; root: trim_reports_bytes_and_no_discard);
fn trim_reports_bytes_and_no_discard() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let dir = scratch.path().to_str().ok_or("path")?;
    let out = run("trim", &[dir, "--json"])?;
    expect_code(&out, 0, "trim")?;
    let doc = json(&out)?;
    ensure!(
        doc["trimmed"].as_u64().is_some_and(|t| t > 0),
        "trim JSON: {doc}"
    );
    let out = run("trim", &[dir, "--minimum", "64K"])?;
    expect_code(&out, 0, "trim --minimum 64K")?;
    ensure!(
        String::from_utf8_lossy(&out.stdout).contains("trimmed"),
        "text output"
    );
    let out = run("trim", &[dir, "--start", "0", "--length", "512"])?;
    expect_code(&out, 2, "a 512-byte length")?;

    let backed = RamfsBacked::new(256 * MIB)?;
    let out = run("trim", &[backed.path().to_str().ok_or("path")?])?;
    expect_code(&out, 3, "trim without discard support")?;
    ensure!(
        String::from_utf8_lossy(&out.stderr).contains("discard"),
        "the error mentions discard"
    );
    Ok(())
}
