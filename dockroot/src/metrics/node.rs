//! The figures node_exporter's btrfs collector exports, under its names and labels exactly
//! (node_exporter 1.5, Debian 12's `prometheus-node-exporter`, with procfs 0.8), so dashboards
//! and alerts built on `node_btrfs_*` keep working:
//!
//! * from sysfs (`/sys/fs/btrfs/<fsid>/`): `node_btrfs_info{label,uuid}`,
//!   `node_btrfs_global_rsv_size_bytes{uuid}`, `node_btrfs_reserved_bytes{block_group_type,uuid}`
//!   for `data`, `metadata`, `system`, and per profile directory (`mode`: `single`, `dup`,
//!   `raid1`...) `node_btrfs_used_bytes`, `node_btrfs_size_bytes` and
//!   `node_btrfs_allocation_ratio{block_group_type,mode,uuid}` (1 for single and raid0, 2 for
//!   dup, raid1 and raid10, n/(n-1) for raid5 and n/(n-2) for raid6 over n devices, 0 for
//!   anything else, as node_exporter computes it);
//! * from the ioctls (`DEV_INFO`, `GET_DEV_STATS`), per device:
//!   `node_btrfs_device_size_bytes`, `node_btrfs_device_unused_bytes` (size − used) and the
//!   counter `node_btrfs_device_errors_total{type}` (`write`, `read`, `flush`, `corruption`,
//!   `generation`), labelled `device` (the device path's last component, e.g. `loop3`),
//!   `btrfs_dev_uuid` and `uuid`.
//!
//! `uuid` is the content of sysfs' `metadata_uuid` (the directory's name when that is
//! missing). node_exporter pairs the ioctl figures with the sysfs ones by that uuid; when it
//! differs from the fsid (a filesystem whose `metadata_uuid` was changed with `btrfstune -m`)
//! it finds no pair and exports only `node_btrfs_device_size_bytes{device,uuid}` from sysfs'
//! `devices/<name>/size`, and so does this.

use super::exposition::Exposition;
use btrfs_kit::sysfs::{AllocationKind, FsSysfs};
use btrfs_kit::Filesystem;
use std::path::Path;

fn read(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The `uuid` label node_exporter gives the filesystem whose sysfs directory is `sysfs`.
pub fn uuid_label(sysfs: &FsSysfs) -> String {
    read(sysfs.path(), "metadata_uuid")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            sysfs
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
}

/// node_exporter's allocation ratio of a profile directory over `devices` devices.
pub fn allocation_ratio(mode: &str, devices: usize) -> f64 {
    let n = devices as f64;
    match mode {
        "single" | "raid0" => 1.0,
        "dup" | "raid1" | "raid10" => 2.0,
        "raid5" => n / (n - 1.0),
        "raid6" => n / (n - 2.0),
        _ => 0.0,
    }
}

/// Adds the `node_btrfs_*` families of `fs` to `e`.
pub fn add(e: &mut Exposition, fs: &Filesystem, sysfs: &FsSysfs) -> btrfs_kit::Result<()> {
    let dir = sysfs.path();
    let uuid = uuid_label(sysfs);
    let u = uuid.as_str();
    let label = read(dir, "label").unwrap_or_default();
    e.gauge(
        "node_btrfs_info",
        "Filesystem information",
        &[("label", &label), ("uuid", u)],
        1.0,
    );
    let rsv = read(dir, "allocation/global_rsv_size")
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0);
    e.gauge(
        "node_btrfs_global_rsv_size_bytes",
        "Size of global reserve.",
        &[("uuid", u)],
        rsv,
    );
    let sysfs_devices: Vec<String> = std::fs::read_dir(dir.join("devices"))
        .map(|rd| {
            rd.flatten()
                .map(|d| d.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for kind in [
        AllocationKind::Data,
        AllocationKind::Metadata,
        AllocationKind::System,
    ] {
        let t = kind.dir_name();
        let alloc = sysfs.allocation(kind)?;
        e.gauge(
            "node_btrfs_reserved_bytes",
            "Amount of space reserved for a data type",
            &[("block_group_type", t), ("uuid", u)],
            alloc.as_ref().map_or(0.0, |a| a.reserved.bytes() as f64),
        );
        for p in alloc.iter().flat_map(|a| &a.profiles) {
            let mode = p.profile.name();
            let labels = [("block_group_type", t), ("mode", mode), ("uuid", u)];
            e.gauge(
                "node_btrfs_used_bytes",
                "Amount of used space by a layout/data type",
                &labels,
                p.used.bytes() as f64,
            );
            e.gauge(
                "node_btrfs_size_bytes",
                "Amount of space allocated for a layout/data type",
                &labels,
                p.total.bytes() as f64,
            );
            e.gauge(
                "node_btrfs_allocation_ratio",
                "Data allocation ratio for a layout/data type",
                &labels,
                allocation_ratio(mode, sysfs_devices.len()),
            );
        }
    }
    let fsid = fs.info()?.fsid;
    if uuid.replace('-', "") != fsid.simple().to_string() {
        for name in &sysfs_devices {
            let sectors = read(dir, &format!("devices/{name}/size"))
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0);
            e.gauge(
                "node_btrfs_device_size_bytes",
                "Size of a device that is part of the filesystem.",
                &[("device", name), ("uuid", u)],
                sectors * 512.0,
            );
        }
        return Ok(());
    }
    let devices = fs.devices()?;
    let mut stats = Vec::with_capacity(devices.len());
    for d in &devices {
        stats.push(fs.device_stats(d.devid)?);
    }
    for d in &devices {
        let name = d
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dev_uuid = d.uuid.to_string();
        let labels = [
            ("btrfs_dev_uuid", dev_uuid.as_str()),
            ("device", name.as_str()),
            ("uuid", u),
        ];
        e.gauge(
            "node_btrfs_device_size_bytes",
            "Size of a device that is part of the filesystem.",
            &labels,
            d.total_bytes.bytes() as f64,
        );
        e.gauge(
            "node_btrfs_device_unused_bytes",
            "Unused bytes unused on a device that is part of the filesystem.",
            &labels,
            d.total_bytes.bytes().saturating_sub(d.used_bytes.bytes()) as f64,
        );
    }
    for (d, s) in devices.iter().zip(&stats) {
        let name = d
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dev_uuid = d.uuid.to_string();
        for (kind, value) in [
            ("write", s.write_errs),
            ("read", s.read_errs),
            ("flush", s.flush_errs),
            ("corruption", s.corruption_errs),
            ("generation", s.generation_errs),
        ] {
            e.counter(
                "node_btrfs_device_errors_total",
                "Errors reported for the device",
                &[
                    ("btrfs_dev_uuid", dev_uuid.as_str()),
                    ("device", name.as_str()),
                    ("type", kind),
                    ("uuid", u),
                ],
                value as f64,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ratios_follow_node_exporter() {
        use super::allocation_ratio as r;
        assert_eq!(r("single", 1), 1.0);
        assert_eq!(r("dup", 1), 2.0);
        assert_eq!(r("raid10", 4), 2.0);
        assert_eq!(r("raid5", 3), 1.5);
        assert_eq!(r("raid6", 4), 2.0);
        assert_eq!(r("raid1c3", 3), 0.0);
    }
}
