//! The `scrub` example end to end on multi-device loop filesystems: repair (exit 3), damage
//! named (exit 4), Ctrl-C cancels and says how to resume (exit 5), resume, status, files; the
//! `usage` example's device error counters (exit 4).

use crate::corrupt::damage_copy as damage;
use crate::data::{write_file, MIB};
use crate::example_bin::{example, json, run};
use btrfs_kit::{Filesystem, Profile};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use testkit::ensure;
use testkit::fixture::MultiScratch;
use testkit::harness::Failed;

fn scrub(args: &[&str]) -> Result<Output, Failed> {
    run("scrub", args)
}

testkit::register!(root: repairs_raid1_and_reports_json);
fn repairs_raid1_and_reports_json() -> Result<(), Failed> {
    let mut scratch = MultiScratch::new(2, 512 * MIB, Profile::Raid1, Profile::Raid1)?;
    let file = scratch.path().join("f");
    write_file(&file, 2 * MIB, 1)?;
    damage(&mut scratch, &file, 64 * 1024, 1, 2)?;
    let state = tempfile::tempdir()?;
    let dir = state.path().to_str().ok_or("state dir")?;
    let path = scratch.path().to_str().ok_or("path")?;
    let out = scrub(&["start", path, "--json", "--state-dir", dir])?;
    ensure!(
        out.status.code() == Some(3),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
    let doc = json(&out)?;
    ensure!(
        doc["outcome"]["verdict"] == "corrected"
            && doc["outcome"]["total"]["corrected_errors"] == 2
            && doc["outcome"]["devices"].as_array().map(Vec::len) == Some(2)
            && doc["device_stats"]
                .as_array()
                .is_some_and(|d| d.iter().any(|s| s["corruption_errs"] == 2)),
        "outcome: {doc}",
    );
    let out = scrub(&["status", path, "--json", "--state-dir", dir])?;
    let doc = json(&out)?;
    ensure!(
        out.status.success()
            && doc["running"].is_null()
            && doc["recorded"]["last_completed"]["verdict"] == "corrected",
        "status: {doc}",
    );
    // The usage example now sees the device's errors: exit 4, named in JSON and in text.
    let out = Command::new(example("usage")?)
        .args([path, "--json"])
        .output()?;
    let doc = json(&out)?;
    ensure!(
        out.status.code() == Some(4)
            && doc["device_errors"] == true
            && doc["device_stats"]
                .as_array()
                .is_some_and(|d| d.len() == 2 && d.iter().any(|s| s["corruption_errs"] == 2)),
        "usage: {:?} {doc}",
        out.status,
    );
    let out = run("usage", &[path])?;
    ensure!(
        out.status.code() == Some(4)
            && String::from_utf8_lossy(&out.stdout).contains("corruption_errs 2"),
        "usage text: {}",
        String::from_utf8_lossy(&out.stdout),
    );
    // Text output: the verdict and both devices.
    let out = scrub(&["start", path, "--no-state"])?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.code() == Some(0)
            && text.contains(": clean")
            && text.matches("  device ").count() >= 2,
        "second run {:?}: {text}",
        out.status,
    );
    Ok(())
}

testkit::register!(root: names_damaged_file_and_exits_4);
fn names_damaged_file_and_exits_4() -> Result<(), Failed> {
    let mut scratch = MultiScratch::new(1, 512 * MIB, Profile::Single, Profile::Dup)?;
    let file = scratch.path().join("layer.bin");
    write_file(&file, 2 * MIB, 2)?;
    let logical = damage(&mut scratch, &file, 8 * 4096, 0, 1)?;
    let path = scratch.path().to_str().ok_or("path")?;
    let out = scrub(&["start", path, "--no-state"])?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.code() == Some(4)
            && text.contains("uncorrectable")
            && text.contains("damaged files")
            && text.contains(&*file.to_string_lossy()),
        "exit {:?}: {text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
    let out = scrub(&["files", path, &logical.to_string(), "--json"])?;
    let doc = json(&out)?;
    ensure!(
        doc.as_array().is_some_and(|files| {
            files.len() == 1 && files[0]["paths"][0] == file.to_string_lossy().as_ref()
        }),
        "files: {doc}",
    );
    Ok(())
}

testkit::register!(root: ctrl_c_cancels_and_resume_finishes);
fn ctrl_c_cancels_and_resume_finishes() -> Result<(), Failed> {
    let scratch = MultiScratch::new(2, 1024 * MIB, Profile::Raid1, Profile::Raid1)?;
    for i in 0..6 {
        write_file(&scratch.path().join(format!("f{i}")), 25 * MIB, i)?;
    }
    let fs = Filesystem::open(scratch.path())?;
    fs.sync()?;
    let state = tempfile::tempdir()?;
    let dir = state.path().to_str().ok_or("state dir")?;
    let path = scratch.path().to_str().ok_or("path")?;
    let child = Command::new(example("scrub")?)
        .args(["start", path, "--limit", "8m", "--state-dir", dir])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Wait until the kernel runs it, then interrupt like Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(60);
    while fs.scrub_status()?.is_none() {
        ensure!(
            Instant::now() < deadline,
            "the example's scrub never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )?;
    let out = child.wait_with_output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(5) && err.contains("resume with:") && err.contains(path),
        "after Ctrl-C: {:?}: {err}",
        out.status,
    );
    ensure!(
        fs.scrub_status()?.is_none(),
        "the scrub still runs after Ctrl-C"
    );
    let out = scrub(&["resume", path, "--json", "--state-dir", dir])?;
    let doc = json(&out)?;
    ensure!(
        out.status.code() == Some(0)
            && doc["outcome"]["verdict"] == "clean"
            && doc["outcome"]["origin"]["kind"] == "resumed",
        "resume: {:?} {doc}",
        out.status,
    );
    Ok(())
}
