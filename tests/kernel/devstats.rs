//! Device error counters and the health calls without privileges, and the oracle tier:
//! scrub counters against `btrfs scrub start -BRd -r`, device counters against
//! `btrfs device stats`, multi-device usage against `btrfs filesystem usage -b`.

use crate::corrupt::{copies, damage_copy};
use crate::data::{write_file, MIB};
use crate::progs::Progs;
use crate::space::usage_equals_progs;
use crate::unprivileged::{expect_probe, probe_open, probe_result};
use btrfs_kit::scrub::ScrubRequest;
use btrfs_kit::sysfs::{AllocationKind, FsSysfs};
use btrfs_kit::{Error, ErrorKind, Filesystem, Profile};
use std::collections::BTreeMap;
use testkit::ensure;
use testkit::fixture::{FsKind, LoopDevice, MultiScratch, Scratch, SparseFile};
use testkit::harness::{Failed, Trial};

/// The environment variable that makes the test binary act as the unprivileged probe.
const PROBE_ENV: &str = "BTRFS_LVM_HEALTH_PROBE";

testkit::register!(table: trials);
/// The trials built from parameters (one per profile or setting), named here.
fn trials() -> Vec<Trial> {
    vec![
        testkit::harness::oracle("devstats::oracle::usage_matches_progs_raid1", || {
            usage_matches(2, Profile::Raid1, Profile::Raid1)
        }),
        testkit::harness::oracle("devstats::oracle::usage_matches_progs_raid10", || {
            usage_matches(4, Profile::Raid10, Profile::Raid10)
        }),
    ]
}

/// In the child: what each call gives an unprivileged caller, one `name=result` per line.
pub fn child_probe() -> Option<i32> {
    let path = std::env::var_os(PROBE_ENV)?;
    let describe = probe_result;
    let Some(fs) = probe_open(&path) else {
        return Some(0);
    };
    println!("device_stats={}", describe(fs.device_stats(1).map(drop)));
    println!(
        "reset_device_stats={}",
        describe(fs.reset_device_stats(1).map(drop))
    );
    println!("scrub_status={}", describe(fs.scrub_status().map(drop)));
    println!(
        "scrub={}",
        describe(fs.scrub(&ScrubRequest::new().no_state()).map(drop))
    );
    println!(
        "files_at_logical={}",
        describe(fs.files_at_logical(0).map(drop))
    );
    let sysfs = FsSysfs::for_fs(&fs);
    println!(
        "sysfs_read={}",
        describe(
            sysfs
                .as_ref()
                .map_err(|e| Error::invalid_arguments("sysfs", e.to_string()))
                .and_then(|s| s.allocations())
                .map(drop)
        )
    );
    if let Ok(s) = sysfs {
        println!(
            "sysfs_write={}",
            describe(s.set_bg_reclaim_threshold(AllocationKind::Data, 0))
        );
    }
    Some(0)
}

testkit::register!(root: unprivileged_reads_counters_but_cannot_reset_or_scrub);
fn unprivileged_reads_counters_but_cannot_reset_or_scrub() -> Result<(), Failed> {
    let scratch = MultiScratch::new(1, 512 * MIB, Profile::Single, Profile::Dup)?;
    expect_probe(
        &[(PROBE_ENV, scratch.path().as_os_str())],
        &[
            ("device_stats", "ok"),
            ("reset_device_stats", "permission-denied"),
            ("scrub_status", "permission-denied"),
            ("scrub", "permission-denied"),
            ("files_at_logical", "permission-denied"),
            ("sysfs_read", "ok"),
            ("sysfs_write", "permission-denied"),
        ],
    )
}

/// `btrfs scrub start -BRd` output: per device id, the raw counters.
fn progs_scrub_counters(text: &str) -> Result<BTreeMap<u64, BTreeMap<String, u64>>, Failed> {
    let mut out: BTreeMap<u64, BTreeMap<String, u64>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(rest) = line.split_once("(id ").map(|(_, r)| r) {
            current = rest.split(')').next().and_then(|n| n.parse().ok());
            continue;
        }
        if let (Some(devid), Some((key, value))) = (current, line.trim().split_once(':')) {
            if let Ok(v) = value.trim().parse::<u64>() {
                out.entry(devid)
                    .or_default()
                    .insert(key.trim().to_string(), v);
            }
        }
    }
    ensure!(!out.is_empty(), "no per-device counters in:\n{text}");
    Ok(out)
}

testkit::register!(oracle: scrub_and_device_stats_match_btrfs_progs);
fn scrub_and_device_stats_match_btrfs_progs() -> Result<(), Failed> {
    let mut scratch = MultiScratch::new(2, 512 * MIB, Profile::Raid1, Profile::Raid1)?;
    let file = scratch.path().join("f");
    write_file(&file, 4 * MIB, 9)?;
    for i in 0..4 {
        write_file(&scratch.path().join(format!("g{i}")), 8 * MIB, i)?;
    }
    let logical = damage_copy(&mut scratch, &file, MIB, 1, 3)?;
    let fs = Filesystem::open(scratch.path())?;
    let devid = copies(&fs, logical)?[1].0;
    let fs = Filesystem::open(scratch.path())?;
    // Read-only on both sides, so the damage stays for the second scrub.
    let ours = fs.scrub(&ScrubRequest::new().no_state().read_only(true))?;
    for oracle in Progs::BOTH {
        let text = oracle.run(&["scrub", "start", "-B", "-R", "-d", "-r"], scratch.path())?;
        if oracle == Progs::Debian {
            // btrfs-progs records every scrub in its own status file: remove the one the
            // host's just made (the userland's /var/lib/btrfs is read-only: 7.3 warns and
            // records nothing).
            let status = format!("/var/lib/btrfs/scrub.status.{}", fs.info()?.fsid);
            std::fs::remove_file(&status).map_err(|e| format!("remove {status}: {e}"))?;
        }
        let theirs = progs_scrub_counters(&text)?;
        ensure!(
            theirs.len() == ours.devices.len(),
            "devices: {} {:?}",
            oracle.name(),
            theirs.keys()
        );
        for d in &ours.devices {
            let t = theirs.get(&d.devid).ok_or(format!(
                "{} has no device {}",
                oracle.name(),
                d.devid
            ))?;
            for (name, value) in d.this_run.named() {
                let their = t.get(name).copied();
                ensure!(
                    their == Some(value),
                    "device {} {name}: {} {their:?}, ours {value}",
                    d.devid,
                    oracle.name(),
                );
            }
        }
    }
    ensure!(
        ours.total.csum_errors == 3,
        "our counters: {:?}",
        ours.total
    );
    // Device counters after the three scrubs.
    for oracle in Progs::BOTH {
        device_stats_equal(&fs, &oracle.run(&["device", "stats"], scratch.path())?)
            .map_err(|e| format!("{}: {}", oracle.name(), e.message().unwrap_or_default()))?;
    }
    ensure!(
        fs.device_stats(devid)?.corruption_errs >= 9,
        "three scrubs of three bad sectors"
    );
    Ok(())
}

/// Every counter of `btrfs device stats` equals ours.
fn device_stats_equal(fs: &Filesystem, text: &str) -> Result<(), Failed> {
    for s in fs.device_stats_all()? {
        let path = fs
            .devices()?
            .into_iter()
            .find(|d| d.devid == s.devid)
            .ok_or("device vanished")?
            .path;
        for (name, value) in s.named() {
            let key = format!("[{}].{name}", path.display());
            let line = text
                .lines()
                .find(|l| l.starts_with(&key))
                .ok_or(format!("no {key} in:\n{text}"))?;
            let their: u64 = line.split_whitespace().last().unwrap_or("").parse()?;
            ensure!(their == value, "{key}: btrfs-progs {their}, ours {value}");
        }
    }
    Ok(())
}

fn usage_matches(devices: usize, data: Profile, meta: Profile) -> Result<(), Failed> {
    let scratch = MultiScratch::new(devices, 512 * MIB, data, meta)?;
    for i in 0..5 {
        write_file(&scratch.path().join(format!("f{i}")), 16 * MIB, i)?;
    }
    Filesystem::open(scratch.path())?.sync()?;
    usage_equals_progs(scratch.path())
}

testkit::register!(root: add_device_refuses_signatures_busy_devices_and_files);
fn add_device_refuses_signatures_busy_devices_and_files() -> Result<(), Failed> {
    let scratch = MultiScratch::new(2, 512 * MIB, Profile::Raid1, Profile::Raid1)?;
    let fs = Filesystem::open(scratch.path())?;
    // A device of this very filesystem: mounted, so refused before the kernel is asked.
    match fs.add_device(scratch.device(1)) {
        Err(e) if matches!(e.kind(), ErrorKind::DeviceBusy { .. }) => {
            ensure!(e.to_string().contains("mounted"), "{}", e.to_string())
        }
        other => return Err(format!("adding a member device: {other:?}").into()),
    }
    // A device holding another filesystem: refused unless overwriting is asked for.
    let ext4 = Scratch::new(256 * MIB, FsKind::Ext4)?.into_image()?;
    let loop_dev = LoopDevice::attach(ext4.path())?;
    match fs.add_device(loop_dev.path()) {
        Err(e) if matches!(e.kind(), ErrorKind::ExistingFilesystem { .. }) => {
            ensure!(e.to_string().contains("ext"), "{}", e.to_string())
        }
        other => return Err(format!("adding an ext4 device: {other:?}").into()),
    }
    // A regular file is not a block device.
    let file = SparseFile::new(256 * MIB)?;
    match fs
        .add_device(file.path())
        .map_err(btrfs_kit::Error::into_kind)
    {
        Err(ErrorKind::InvalidArguments { reason, .. }) => {
            ensure!(reason.contains("loop device"), "{}", reason)
        }
        other => return Err(format!("adding a regular file: {other:?}").into()),
    }
    // Overwriting: the ext4 device joins, and the kernel lists it with its size.
    let added = fs.add_device_overwriting(loop_dev.path())?;
    let devices = fs.devices()?.len();
    // Unmount before the added loop device is detached.
    drop(fs);
    drop(scratch);
    drop(loop_dev);
    ensure!(
        added.devid == 3 && added.total_bytes.bytes() == 256 * MIB && devices == 3,
        "added {added:?}, {devices} devices",
    );
    Ok(())
}
