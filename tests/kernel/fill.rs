//! Fill-to-full, the seed's experiment: btrfs keeps working when full; ext4 for comparison.
//!
//! Each run writes a report to `$CARGO_TARGET_TMPDIR/fill-<fs>.json` and prints it.

use crate::data::{sha256_of, write_file, write_until_full, MIB};
use btrfs_kit::balance::{Balance, ChunkFilters};
use btrfs_kit::Filesystem;
use std::time::Instant;
use testkit::ensure;
use testkit::fixture::{FsKind, Scratch};
use testkit::harness::Failed;

testkit::register!(root: btrfs_survives_being_filled_to_the_brim);
fn btrfs_survives_being_filled_to_the_brim() -> Result<(), Failed> {
    fill(FsKind::Btrfs(Default::default()), "btrfs")
}

testkit::register!(root: ext4_fill_for_comparison);
fn ext4_fill_for_comparison() -> Result<(), Failed> {
    fill(FsKind::Ext4, "ext4")
}

fn fill(kind: FsKind, name: &str) -> Result<(), Failed> {
    let scratch = Scratch::new(512 * MIB, kind)?;
    let is_btrfs = name == "btrfs";
    let mut sums = Vec::new();
    for i in 0..5 {
        let path = scratch.path().join(format!("keep{i}"));
        sums.push((path.clone(), write_file(&path, 8 * MIB, 100 + i)?));
    }
    let mut held = std::fs::File::open(&sums[0].0)?;
    let started = Instant::now();
    let plug = scratch.path().join("plug");
    let plug_bytes = write_until_full(&plug)?;
    let seconds_to_full = started.elapsed().as_secs_f64();
    ensure!(plug_bytes > 100 * MIB, "only {plug_bytes} bytes fitted");

    // While full: the held file reads back correctly.
    ensure!(
        sha256_of(&mut held)? == sums[0].1,
        "held file changed while the filesystem was full"
    );
    let mut report = serde_json::json!({
        "filesystem": name,
        "size_bytes": 512 * MIB,
        "plug_bytes": plug_bytes,
        "seconds_to_enospc": seconds_to_full,
        "held_file_reads_ok_when_full": true,
    });
    if is_btrfs {
        let fs = Filesystem::open(scratch.path())?;
        let space = fs.space_info()?;
        let usage = fs.usage()?;
        ensure!(!space.is_empty(), "no space info when full");
        ensure!(
            usage.data_used_ratio() > 0.9,
            "data used ratio {:.3} when full",
            usage.data_used_ratio(),
        );
        let outcome = fs.balance(&Balance::new().data(ChunkFilters::usage_below(0)))?;
        report["data_used_ratio_when_full"] = usage.data_used_ratio().into();
        report["usage0_balance_when_full"] = format!("{outcome:?}").into();
        // A full data balance has nowhere to relocate to: when the kernel says ENOSPC it must
        // arrive as NoSpace (it may also manage, e.g. by packing chunks tighter).
        let full = fs.balance(&Balance::new().data(ChunkFilters::all()));
        match &full {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), btrfs_kit::ErrorKind::NoSpace) => {}
            Err(e) => return Err(format!("full data balance on a full filesystem: {e}").into()),
        }
        report["full_data_balance_when_full"] = match full {
            Ok(outcome) => format!("{outcome:?}"),
            Err(e) => e.to_string(),
        }
        .into();
    }

    // Delete the plug: writes succeed again and every file is intact.
    std::fs::remove_file(&plug)?;
    if is_btrfs {
        Filesystem::open(scratch.path())?.sync()?;
    } else {
        nix::unistd::sync();
    }
    write_file(&scratch.path().join("after"), 32 * MIB, 7)?;
    for (path, sum) in &sums {
        ensure!(
            sha256_of(std::fs::File::open(path)?)? == *sum,
            "{} changed",
            path.display()
        );
    }
    report["write_after_delete_ok"] = true.into();
    report["checksums_intact"] = true.into();
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fill-{name}.json"));
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("fill report ({}): {report}", out.display());
    Ok(())
}
