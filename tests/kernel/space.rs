//! Space info, filesystem info and device usage against btrfs-progs (the oracle).

use crate::data::{write_file, MIB};
use crate::progs::{number_after, Progs, ProgsMultiDevice};
use btrfs_kit::balance::{Balance, ChunkFilters};
use btrfs_kit::mkfs::{mkfs, MkfsOptions};
use btrfs_kit::{BlockGroupKind, ByteSize, ChecksumType, DeviceUsage, Filesystem, Profile};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::FileExt;
use std::path::Path;
use testkit::ensure;
use testkit::fixture::{BtrfsOptions, FsKind, LoopDevice, Mount, Scratch, SparseFile};
use testkit::harness::Failed;

/// A native filesystem of `fs_size` bytes on a loop device of `device_size` bytes, mounted:
/// the rest of the device is slack.
fn with_slack(device_size: u64, fs_size: u64) -> Result<(SparseFile, LoopDevice, Mount), Failed> {
    let image = SparseFile::new(device_size)?;
    let dev = LoopDevice::attach(image.path())?;
    let mut o = MkfsOptions::default();
    o.size = Some(fs_size);
    mkfs(dev.path(), &o)?;
    let mnt = Mount::new(dev.path(), "btrfs", "")?;
    Ok((image, dev, mnt))
}

testkit::register!(root: usage_reports_device_slack);
/// Device slack (block device size minus what btrfs uses) in the library and the example, on
/// a filesystem made smaller than its device.
fn usage_reports_device_slack() -> Result<(), Failed> {
    let (device_size, fs_size) = (1024 * MIB, 768 * MIB);
    let (_image, dev, mnt) = with_slack(device_size, fs_size)?;
    let fs = Filesystem::open(mnt.path())?;
    let devices = fs.devices()?;
    let d = devices.first().ok_or("no device")?;
    ensure!(
        d.device_size.map(|s| s.bytes()) == Some(device_size) && d.total_bytes.bytes() == fs_size,
        "device {}: size {:?}, btrfs uses {}",
        dev.path().display(),
        d.device_size,
        d.total_bytes,
    );
    ensure!(!d.missing, "a present device is not missing");
    let usage = fs.usage()?;
    let slack = device_size - fs_size;
    ensure!(
        usage.device_slack.bytes() == slack && usage.devices[0].slack.bytes() == slack,
        "slack: overall {}, device {}, expected {slack}",
        usage.device_slack,
        usage.devices[0].slack,
    );
    let path = mnt.path().to_str().ok_or("path")?;
    let out = crate::example_bin::run("usage", &[path, "--json"])?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    ensure!(
        report["usage"]["device_slack"].as_u64() == Some(slack)
            && report["usage"]["devices"][0]["slack"].as_u64() == Some(slack)
            && report["usage"]["devices"][0]["missing"] == false,
        "usage --json: {}",
        report["usage"],
    );
    let text =
        String::from_utf8_lossy(&crate::example_bin::run("usage", &[path])?.stdout).into_owned();
    ensure!(
        text.contains(&format!(
            "Device slack:       {:>12}",
            ByteSize(slack).to_string()
        )),
        "usage text has no device slack line:\n{text}",
    );
    Ok(())
}

testkit::register!(oracle: usage_matches_with_several_profiles_at_once);
/// Data in single and dup chunks and metadata in dup and single at once: the free estimate
/// is btrfs-progs' to the byte (it was one byte above, from adding the fractions before
/// truncating).
fn usage_matches_with_several_profiles_at_once() -> Result<(), Failed> {
    let scratch = scratch_with_data()?;
    let fs = Filesystem::open(scratch.path())?;
    let data: ChunkFilters = "convert=dup,limit=1".parse()?;
    let meta: ChunkFilters = "convert=single,limit=1".parse()?;
    fs.balance(&Balance::new().data(data).metadata(meta).force(true))?;
    fs.sync()?;
    let ours = fs.usage()?;
    let profiles = |kind| -> BTreeSet<Profile> {
        ours.space
            .iter()
            .filter(|s| s.kind == kind && s.total.bytes() > 0)
            .map(|s| s.profile)
            .collect()
    };
    ensure!(
        profiles(BlockGroupKind::Data).len() == 2,
        "setup: data profiles {:?}",
        profiles(BlockGroupKind::Data),
    );
    usage_equals_progs(scratch.path())
}

testkit::register!(oracle: usage_matches_with_device_slack);
/// With device slack (and two data profiles), the overall figures and btrfs-progs' "Device
/// slack" agree.
fn usage_matches_with_device_slack() -> Result<(), Failed> {
    let (_image, _dev, mnt) = with_slack(1024 * MIB, 700 * MIB + 12_345 * 4096)?;
    for i in 0..3 {
        write_file(&mnt.path().join(format!("f{i}")), 23 * MIB + i * 4096, i)?;
    }
    let fs = Filesystem::open(mnt.path())?;
    // Two data profiles make the data ratio fractional, where the order of truncation shows.
    fs.balance(&Balance::new().data("convert=dup,limit=1".parse()?))?;
    fs.sync()?;
    let ours = fs.usage()?;
    ensure!(ours.device_slack.bytes() > 0, "setup: no slack");
    usage_equals_progs(mnt.path())
}

testkit::register!(oracle: usage_matches_degraded_raid1_with_a_missing_device);
/// raid1 over two loop devices, one removed for good and the other mounted `-o degraded`: the
/// missing device is explicit (`missing: true`, `<missing>` in text) and every figure equals
/// btrfs-progs'.
fn usage_matches_degraded_raid1_with_a_missing_device() -> Result<(), Failed> {
    let mut multi =
        ProgsMultiDevice::new(&[1024 * MIB, 1024 * MIB], &["-d", "raid1", "-m", "raid1"])?;
    write_file(&multi.path().join("f"), 50 * MIB, 1)?;
    multi.remove_and_mount_degraded(1)?;
    let fs = Filesystem::open(multi.path())?;
    let ours = fs.usage()?;
    let missing: Vec<u64> = ours
        .devices
        .iter()
        .filter(|d| d.missing)
        .map(|d| d.devid)
        .collect();
    ensure!(
        missing == [2],
        "missing devices {missing:?}: {:?}",
        ours.devices
    );
    ensure!(
        ours.devices
            .iter()
            .all(|d| d.missing == d.path.as_os_str().is_empty()),
        "missing exactly where no path is known",
    );
    ensure!(
        ours.device_missing == ours.devices[1].size && ours.devices[1].slack.bytes() == 0,
        "missing size {}, its slack {}",
        ours.device_missing,
        ours.devices[1].slack,
    );
    usage_equals_progs(multi.path())?;
    let path = multi.path().to_str().ok_or("path")?;
    let out = crate::example_bin::run("usage", &[path, "--json"])?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let devices = report["usage"]["devices"].as_array().ok_or("no devices")?;
    ensure!(
        devices[1]["missing"] == true && devices[0]["missing"] == false,
        "usage --json devices: {devices:?}",
    );
    let text =
        String::from_utf8_lossy(&crate::example_bin::run("usage", &[path])?.stdout).into_owned();
    ensure!(
        text.lines().any(|l| l.starts_with("Device 2 <missing>:")),
        "usage text names no missing device:\n{text}",
    );
    Ok(())
}

testkit::register!(oracle: usage_matches_on_multi_device_profiles);
/// Every multi-device profile, on devices of uneven sizes, with data written: btrfs-progs'
/// figures to the byte (RAID5/6 through their per-device chunk info).
fn usage_matches_on_multi_device_profiles() -> Result<(), Failed> {
    let sizes = [1024 * MIB, 1280 * MIB, 1536 * MIB, 1792 * MIB];
    for (data, meta) in [
        ("raid0", "raid1"),
        ("raid1", "raid1c3"),
        ("raid10", "raid1c4"),
        ("raid5", "raid1"),
        ("raid6", "raid1c3"),
        ("single", "dup"),
    ] {
        let multi = ProgsMultiDevice::new(&sizes, &["-d", data, "-m", meta])?;
        for i in 0..3 {
            write_file(&multi.path().join(format!("f{i}")), 37 * MIB + i * 4096, i)?;
        }
        let fs = Filesystem::open(multi.path())?;
        fs.sync()?;
        usage_equals_progs(multi.path())
            .map_err(|e| format!("-d {data} -m {meta}: {}", e.message().unwrap_or("")))?;
    }
    Ok(())
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

testkit::register!(oracle: info_matches_mkfs_and_superblock);
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
    // The superblock's metadata_uuid field (offset 0x23b of the primary copy at 64 KiB): zero
    // unless the METADATA_UUID incompat flag is set (mkfs never sets it).
    let mut raw = [0u8; 16];
    std::fs::File::open(scratch.device())?.read_exact_at(&mut raw, 0x10000 + 0x23b)?;
    ensure!(raw == [0; 16], "metadata_uuid on disk: {raw:?}");
    for oracle in Progs::BOTH {
        let dump = oracle.run(&["inspect-internal", "dump-super"], scratch.device())?;
        let field = |name: &str| {
            dump.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                .unwrap_or_default()
        };
        for (name, ours) in [
            ("fsid", info.fsid.to_string()),
            ("nodesize", info.nodesize.bytes().to_string()),
            ("sectorsize", info.sectorsize.bytes().to_string()),
        ] {
            ensure!(
                ours == field(name),
                "{name} {ours} vs {}'s dump-super {}",
                oracle.name(),
                field(name),
            );
        }
        // 6.2 prints the fsid as metadata_uuid when the flag is unset (the uuid the kernel
        // uses for tree blocks then); since 6.5 (commit 1d988f36, "dump-super: print actual
        // metadata_uuid value") it prints the field as stored, zero. dump-super is a dump of
        // the stored bytes: 7.3 is right; the effective metadata uuid is the fsid either way.
        let want = match oracle {
            Progs::Debian => info.fsid.to_string(),
            Progs::Sid => "00000000-0000-0000-0000-000000000000".to_string(),
        };
        ensure!(
            field("metadata_uuid") == want,
            "{}: metadata_uuid {:?}, expected {want}",
            oracle.name(),
            field("metadata_uuid"),
        );
    }
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

testkit::register!(oracle: space_info_matches_btrfs_filesystem_df);
fn space_info_matches_btrfs_filesystem_df() -> Result<(), Failed> {
    let scratch = scratch_with_data()?;
    let fs = Filesystem::open(scratch.path())?;
    let ours = fs.space_info()?;
    for oracle in Progs::BOTH {
        let df = oracle.run(&["filesystem", "df", "-b"], scratch.path())?;
        df_equals(&df, &ours)
            .map_err(|e| format!("{}: {}", oracle.name(), e.message().unwrap_or_default()))?;
    }
    Ok(())
}

/// Every line of `btrfs filesystem df -b` equals our SPACE_INFO entry of its kind and profile.
fn df_equals(df: &str, ours: &[btrfs_kit::SpaceInfo]) -> Result<(), Failed> {
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

testkit::register!(oracle: usage_matches_btrfs_filesystem_usage);
fn usage_matches_btrfs_filesystem_usage() -> Result<(), Failed> {
    let scratch = scratch_with_data()?;
    let devices = Filesystem::open(scratch.path())?.usage()?.devices.len();
    ensure!(devices == 1, "{devices} devices");
    usage_equals_progs(scratch.path())
}

/// Every figure of `btrfs filesystem usage -b` equals ours: the overall ones (to the byte,
/// ratios to the two decimals printed) and each device's allocation per kind and profile and
/// its unallocated bytes, a missing device being btrfs-progs' `missing`.
pub fn usage_equals_progs(path: &Path) -> Result<(), Failed> {
    let fs = Filesystem::open(path)?;
    // The kernel may still add or drop an empty chunk (the cleaner removes unused block
    // groups in the background): compare only a btrfs-progs reading bracketed by two equal
    // readings of ours.
    for oracle in Progs::BOTH {
        usage_equals(&fs, oracle, path)
            .map_err(|e| format!("{}: {}", oracle.name(), e.message().unwrap_or_default()))?;
    }
    Ok(())
}

/// [`usage_equals_progs`] for one oracle.
fn usage_equals(fs: &Filesystem, oracle: Progs, path: &Path) -> Result<(), Failed> {
    let mut attempts = 0;
    let (ours, text) = loop {
        let before = fs.usage()?;
        let text = oracle.run(&["filesystem", "usage", "-b"], path)?;
        if fs.usage()? == before {
            break (before, text);
        }
        attempts += 1;
        ensure!(attempts < 20, "the allocation never settled");
        fs.sync()?;
    };
    let get = |key: &str| number_after(&text, key).ok_or(format!("no {key:?} in:\n{text}"));
    let pairs = [
        ("Device size:", ours.device_size.bytes()),
        ("Device allocated:", ours.device_allocated.bytes()),
        ("Device unallocated:", ours.device_unallocated.bytes()),
        ("Device missing:", ours.device_missing.bytes()),
        ("Device slack:", ours.device_slack.bytes()),
        ("Used:", ours.used.bytes()),
        ("Free (estimated):", ours.free_estimated.bytes()),
        ("(min:", ours.free_min.bytes()),
        ("Global reserve:", ours.global_reserve.bytes()),
    ];
    for (key, value) in pairs {
        let theirs = get(key)?;
        ensure!(
            theirs == value,
            "{key} btrfs-progs says {theirs}, we say {value}\n{text}"
        );
    }
    let ratio = |key: &str| -> Result<String, Failed> {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .ok_or(format!("no {key}"))?;
        Ok(line
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_string())
    };
    ensure!(
        ratio("Data ratio:")? == format!("{:.2}", ours.data_ratio),
        "data ratio: theirs {}, ours {}",
        ratio("Data ratio:")?,
        ours.data_ratio,
    );
    ensure!(
        ratio("Metadata ratio:")? == format!("{:.2}", ours.metadata_ratio),
        "metadata ratio: theirs {}, ours {}",
        ratio("Metadata ratio:")?,
        ours.metadata_ratio,
    );
    // Per-device sections: "Data,single: Size:..." (or "Unallocated:") followed by one
    // "   /dev/loopN\t<bytes>" line per device (`missing` for a missing one), then a blank line.
    let name = |d: &DeviceUsage| {
        if d.missing {
            "missing".to_string()
        } else {
            d.path.to_string_lossy().into_owned()
        }
    };
    let mut sections = 0;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let header = line.split(':').next().unwrap_or_default();
        let unallocated = header == "Unallocated";
        let group = header
            .split_once(',')
            .filter(|_| line.contains("Size:"))
            .map(|(kind, profile)| {
                Ok::<_, Failed>((kind, profile.to_ascii_lowercase().parse::<Profile>()?))
            })
            .transpose()?;
        if !unallocated && group.is_none() {
            continue;
        }
        let mut theirs = BTreeMap::new();
        while let Some(l) = lines.next_if(|l| !l.trim().is_empty()) {
            let (dev, bytes) = l
                .trim()
                .rsplit_once(char::is_whitespace)
                .ok_or(format!("odd device line {l:?}"))?;
            theirs.insert(dev.trim().to_string(), bytes.parse::<u64>()?);
        }
        let mut mine = BTreeMap::new();
        for d in &ours.devices {
            let bytes = match group {
                None => Some(d.unallocated.bytes()),
                Some((kind, profile)) => d
                    .allocated
                    .iter()
                    .find(|a| a.kind.to_string() == kind && a.profile == profile)
                    .map(|a| a.bytes.bytes()),
            };
            if let Some(bytes) = bytes {
                mine.insert(name(d), bytes);
            }
        }
        ensure!(theirs == mine, "{line}: theirs {theirs:?}, ours {mine:?}");
        sections += 1;
    }
    let groups: BTreeSet<_> = ours
        .devices
        .iter()
        .flat_map(|d| d.allocated.iter().map(|a| (a.kind, a.profile)))
        .collect();
    ensure!(
        sections == groups.len() + 1,
        "compared {sections} sections, we have {} kinds and profiles",
        groups.len(),
    );
    Ok(())
}
