//! Space info, filesystem info and device usage against btrfs-progs (the oracle).

use crate::util::{number_after, progs, write_file, MIB};
use btrfs_kit::{BlockGroupKind, ChecksumType, Filesystem, Profile};
use testkit::ensure;
use testkit::harness::{Failed, Trial};
use std::path::Path;
use testkit::fixture::{BtrfsOptions, FsKind, Scratch};

pub fn trials() -> Vec<Trial> {
    testkit::trials![
        oracle:
            info_matches_mkfs_and_superblock,
            space_info_matches_btrfs_filesystem_df,
            usage_matches_btrfs_filesystem_usage;
    ]
}

fn scratch_with_data() -> Result<Scratch, Failed> {
    let options = BtrfsOptions {
        metadata: Some("dup".into()),
        label: Some("docker".into()),
        ..Default::default()
    };
    let scratch = Scratch::new(1024 * MIB, FsKind::Btrfs(options))?;
    for i in 0..3 {
        write_file(&scratch.path().join(format!("f{i}")), 40 * MIB, i)?;
    }
    Filesystem::open(scratch.path())?.sync()?;
    Ok(scratch)
}

fn info_matches_mkfs_and_superblock() -> Result<(), Failed> {
    let scratch = scratch_with_data()?;
    let fs = Filesystem::open(scratch.path())?;
    let info = fs.info()?;
    ensure!(info.label == "docker", "label {:?}", info.label);
    ensure!(
        info.checksum == ChecksumType::Crc32c,
        "checksum {}",
        info.checksum
    );
    let dump = progs(&["inspect-internal", "dump-super"], scratch.device())?;
    let field = |name: &str| {
        dump.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    ensure!(
        info.fsid.to_string() == field("fsid"),
        "fsid {} vs dump-super {}",
        info.fsid,
        field("fsid")
    );
    ensure!(
        info.nodesize.bytes().to_string() == field("nodesize"),
        "nodesize differs from dump-super"
    );
    ensure!(
        info.sectorsize.bytes().to_string() == field("sectorsize"),
        "sectorsize differs from dump-super"
    );
    let devices = fs.devices()?;
    ensure!(devices.len() == 1, "{} devices", devices.len());
    ensure!(
        devices[0].path == scratch.device(),
        "device path {:?}",
        devices[0].path
    );
    ensure!(
        devices[0].total_bytes.bytes() == 1024 * MIB,
        "device size {}",
        devices[0].total_bytes
    );
    ensure!(info.generation > 0, "generation is zero");
    Ok(())
}

fn space_info_matches_btrfs_filesystem_df() -> Result<(), Failed> {
    let scratch = scratch_with_data()?;
    let fs = Filesystem::open(scratch.path())?;
    let ours = fs.space_info()?;
    let df = progs(&["filesystem", "df", "-b"], scratch.path())?;
    let mut seen = 0;
    for line in df.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let (kind, profile) = name
            .split_once(", ")
            .ok_or(format!("odd df line {line:?}"))?;
        let kind = match kind {
            "Data" => BlockGroupKind::Data,
            "Metadata" => BlockGroupKind::Metadata,
            "System" => BlockGroupKind::System,
            "Data+Metadata" => BlockGroupKind::Mixed,
            "GlobalReserve" => BlockGroupKind::GlobalReserve,
            other => return Err(format!("unknown kind {other:?}").into()),
        };
        let profile: Profile = profile.to_ascii_lowercase().parse()?;
        let total = number_after(rest, "total=").ok_or("no total")?;
        let used = number_after(rest, "used=").ok_or("no used")?;
        let entry = ours
            .iter()
            .find(|s| s.kind == kind && s.profile == profile)
            .ok_or(format!("we have no entry for {line:?}; ours: {ours:?}"))?;
        ensure!(
            entry.total.bytes() == total,
            "{line}: our total {}",
            entry.total.bytes()
        );
        ensure!(
            entry.used.bytes() == used,
            "{line}: our used {}",
            entry.used.bytes()
        );
        seen += 1;
    }
    ensure!(
        seen == ours.len() && seen >= 4,
        "df has {seen} lines, we have {}",
        ours.len()
    );
    Ok(())
}

fn usage_matches_btrfs_filesystem_usage() -> Result<(), Failed> {
    let scratch = scratch_with_data()?;
    usage_equals_progs(scratch.path())
}

/// Compares `usage()` of the filesystem at `path` with `btrfs filesystem usage -b`: the
/// overall figures, the ratios, and every device's line in every section.
pub fn usage_equals_progs(path: &Path) -> Result<(), Failed> {
    let fs = Filesystem::open(path)?;
    // The kernel may still add or drop an empty chunk (the cleaner removes unused block
    // groups in the background): compare only a btrfs-progs reading bracketed by two equal
    // readings of ours.
    let mut attempts = 0;
    let (ours, text) = loop {
        let before = fs.usage()?;
        let text = progs(&["filesystem", "usage", "-b"], path)?;
        if fs.usage()? == before {
            break (before, text);
        }
        attempts += 1;
        ensure!(attempts < 20, "the allocation never settled");
        fs.sync()?;
    };
    let get = |key: &str| number_after(&text, key).ok_or(format!("no {key:?} in usage output"));
    let pairs = [
        ("Device size:", ours.device_size.bytes()),
        ("Device allocated:", ours.device_allocated.bytes()),
        ("Device unallocated:", ours.device_unallocated.bytes()),
        ("Device missing:", ours.device_missing.bytes()),
        ("Used:", ours.used.bytes()),
        ("Free (estimated):", ours.free_estimated.bytes()),
        ("(min:", ours.free_min.bytes()),
        ("Global reserve:", ours.global_reserve.bytes()),
    ];
    for (key, value) in pairs {
        let theirs = get(key)?;
        ensure!(
            theirs == value,
            "{key} btrfs-progs says {theirs}, we say {value}"
        );
    }
    let ratio = |key: &str| -> Result<f64, Failed> {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .ok_or(format!("no {key}"))?;
        Ok(line.split_whitespace().last().unwrap_or_default().parse()?)
    };
    ensure!(
        (ratio("Data ratio:")? - ours.data_ratio).abs() < 0.01,
        "data ratio differs"
    );
    ensure!(
        (ratio("Metadata ratio:")? - ours.metadata_ratio).abs() < 0.01,
        "metadata ratio differs"
    );
    // Sections: "Data,RAID1: Size:..." or "Unallocated:", each followed by one
    // "   /dev/loopN\t<bytes>" line per device that has bytes there.
    let mut compared = 0;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let header = line.split(':').next().unwrap_or_default();
        let section = if header == "Unallocated" {
            None
        } else if let Some((kind, profile)) =
            header.split_once(',').filter(|_| line.contains("Size:"))
        {
            Some((
                kind.to_string(),
                profile.to_ascii_lowercase().parse::<Profile>()?,
            ))
        } else {
            continue;
        };
        while let Some(dev_line) = lines.next_if(|l| l.trim_start().starts_with('/')) {
            let device = dev_line.split_whitespace().next().unwrap_or_default();
            let theirs =
                number_after(dev_line, device).ok_or(format!("no bytes in {dev_line:?}"))?;
            let dev = ours
                .devices
                .iter()
                .find(|d| d.path.to_string_lossy() == device)
                .ok_or(format!("we have no device {device}"))?;
            let ours_bytes = match &section {
                None => dev.unallocated.bytes(),
                Some((kind, profile)) => dev
                    .allocated
                    .iter()
                    .find(|a| a.kind.to_string() == *kind && a.profile == *profile)
                    .map(|a| a.bytes.bytes())
                    .ok_or(format!("we have no allocation on {device} for {line:?}"))?,
            };
            ensure!(theirs == ours_bytes, "{line} {device}: theirs {theirs}, ours {ours_bytes}");
            compared += 1;
        }
    }
    let want: usize = ours.devices.iter().map(|d| d.allocated.len() + 1).sum();
    ensure!(compared == want, "compared {compared} device lines, we have {want}");
    Ok(())
}
