//! The LV under the filesystem: room to grow in its volume group, and whether the filesystem
//! uses all of it.

use super::{needs_root, Context};
use crate::report::{Check, Figure, Status};
use btrfs_kit::ByteSize;
use lvm_kit::{LogicalVolume, LvmBackend, Report, VolumeGroup};
use std::path::{Path, PathBuf};

const VG_FREE: &str = "lvm.vg-free";
const FILLS: &str = "lvm.fs-fills-lv";

/// The lvm2 CLI backend, confined to `devices` when given.
pub fn backend(devices: &[PathBuf]) -> Result<lvm_kit::CliBackend, lvm_kit::Error> {
    let cli = lvm_kit::CliBackend::new();
    if devices.is_empty() {
        return Ok(cli);
    }
    Ok(cli.with_confinement(&lvm_kit::Confinement::new(devices.iter().cloned())?))
}

/// The device number of a block device node.
fn rdev(path: &Path) -> Option<u64> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(path).ok()?;
    meta.file_type().is_block_device().then(|| meta.rdev())
}

/// The LV whose device is `device` (compared by device number: `/dev/vg/lv`,
/// `/dev/mapper/vg-lv` and `/dev/dm-N` name the same node).
pub fn lv_of_device<'r>(report: &'r Report, device: &Path) -> Option<&'r LogicalVolume> {
    let target = rdev(device)?;
    report.lvs.iter().find(|lv| {
        [&lv.path, &lv.dm_path]
            .iter()
            .any(|p| rdev(p) == Some(target))
    })
}

/// Both LVM checks.
pub fn checks(ctx: &Context) -> (Check, Check) {
    match lv_and_vg(ctx) {
        Ok(Some((lv, vg, fs_size))) => (vg_free(ctx, &lv, &vg), fills(&lv, &vg, fs_size, ctx)),
        Ok(None) => {
            let why = "the filesystem is not on an LVM logical volume: nothing to grow";
            (Check::ok(VG_FREE, why), Check::ok(FILLS, why))
        }
        Err(reason) => (
            Check::unknown(VG_FREE, reason.clone()),
            Check::unknown(FILLS, reason),
        ),
    }
}

type Found = (LogicalVolume, VolumeGroup, u64);

/// Whether the block device `device` is an LVM logical volume, from sysfs (a device-mapper
/// device whose dm uuid starts with `LVM-`): no lvm2 process needed to rule LVM out.
pub fn is_lvm_device(device: &Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(meta) = std::fs::metadata(device) else {
        return false;
    };
    if !meta.file_type().is_block_device() {
        return false;
    }
    let (major, minor) = (
        nix::sys::stat::major(meta.rdev()),
        nix::sys::stat::minor(meta.rdev()),
    );
    std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/dm/uuid"))
        .is_ok_and(|u| u.starts_with("LVM-"))
}

fn lv_and_vg(ctx: &Context) -> Result<Option<Found>, String> {
    let fs = ctx.btrfs(VG_FREE).map_err(|c| c.summary)?;
    let devices = fs.devices().map_err(|e| e.to_string())?;
    if !devices.iter().any(|d| is_lvm_device(&d.path)) {
        return Ok(None);
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(needs_root(VG_FREE, "the LVM report").summary);
    }
    let lvm = backend(&ctx.target.lvm_devices).map_err(|e| e.to_string())?;
    let report = lvm
        .report()
        .map_err(|e| format!("the LVM report failed: {e}"))?;
    for device in &devices {
        if let Some(lv) = lv_of_device(&report, &device.path) {
            let vg = report
                .find_vg(&lv.vg_name)
                .map_err(|e| e.to_string())?
                .clone();
            return Ok(Some((lv.clone(), vg, device.total_bytes.bytes())));
        }
    }
    Ok(None)
}

/// `lvm.vg-free`: room to grow the LV.
fn vg_free(ctx: &Context, lv: &LogicalVolume, vg: &VolumeGroup) -> Check {
    let min = ctx.target.thresholds.vg_free_warn.0.get();
    let free = vg.free.get();
    let figure = Figure::bytes("vg_free", free, Some(vg.size.get())).alert_below(min as f64, 0.0);
    if free < min {
        Check::new(
            VG_FREE,
            Status::Warning,
            format!(
                "volume group {} has {} free (less than {}): no room to grow {}",
                vg.name,
                ByteSize(free),
                ByteSize(min),
                lv.full_name()
            ),
        )
        .action(format!(
            "add a disk to the volume group (`pvcreate DISK && vgextend {} DISK`) or free space in it",
            vg.name
        ))
        .figure(figure)
    } else {
        Check::ok(
            VG_FREE,
            format!(
                "volume group {} has {} free to grow {} ({})",
                vg.name,
                ByteSize(free),
                lv.full_name(),
                ByteSize(lv.size.get())
            ),
        )
        .figure(figure)
    }
}

/// `lvm.fs-fills-lv`: a filesystem smaller than its LV leaves space unused (an `lvextend`
/// without a filesystem resize).
fn fills(lv: &LogicalVolume, vg: &VolumeGroup, fs_size: u64, ctx: &Context) -> Check {
    let lv_size = lv.size.get();
    let unused = lv_size.saturating_sub(fs_size);
    let figure = Figure::bytes("lv_unused", unused, Some(lv_size));
    let size_figure = Figure::bytes("lv_size", lv_size, None);
    // Anything below one extent is rounding; btrfs also keeps its size a multiple of 4 KiB.
    if unused >= vg.extent_size.get().max(1 << 20) {
        Check::new(
            FILLS,
            Status::Warning,
            format!(
                "the filesystem uses {} of the {} LV {}: {} unused",
                ByteSize(fs_size),
                ByteSize(lv_size),
                lv.full_name(),
                ByteSize(unused)
            ),
        )
        .action(format!(
            "grow it online: `btrfs filesystem resize max {}`",
            ctx.path().display()
        ))
        .figure(figure)
        .figure(size_figure.clone())
    } else {
        Check::ok(
            FILLS,
            format!(
                "the filesystem fills the LV {} ({})",
                lv.full_name(),
                ByteSize(lv_size)
            ),
        )
        .figure(figure)
        .figure(size_figure.clone())
    }
}
