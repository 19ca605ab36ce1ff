//! Auto-grow: when data use passes `grow_threshold` and the volume group has free extents,
//! grow the LV by `grow_step` (at least `grow_step_min`) up to `grow_max`, then the
//! filesystem online (`resize max`). Never shrinks. At the maximum, or with the VG full, it
//! reports and does nothing. A filesystem smaller than its LV (an `lvextend` without resize)
//! is first grown to fill it.

use super::{Ctx, Outcome, Priority, Task, TaskReport};
use crate::doctor::{is_lvm_device, lv_of_device, lvm_backend};
use btrfs_kit::{ByteSize, ResizeTarget};
use lvm_kit::{Bytes, LvmBackend, NewSize};

const TASK: Task = Task::Grow;

/// The grow task.
pub(crate) fn run(ctx: &Ctx) -> TaskReport {
    match grow(ctx) {
        Ok(r) => r,
        Err(message) => TaskReport::new(TASK, Outcome::Failed, message),
    }
}

fn grow(ctx: &Ctx) -> Result<TaskReport, String> {
    let cfg = ctx.cfg;
    let fs = ctx.fs;
    let fill = fs.fill().map_err(|e| e.to_string())?;
    let used = fill.data_used_ratio * 100.0;
    let with_used = |r: TaskReport| r.figure("data_used_percent", used);
    let Some(max) = cfg.grow_max else {
        return Ok(with_used(TaskReport::new(
            TASK,
            Outcome::NotDue,
            format!("off: set maintain.grow_max (data {used:.1} % used)"),
        )));
    };
    if used < cfg.grow_threshold {
        return Ok(with_used(TaskReport::new(
            TASK,
            Outcome::NotDue,
            format!(
                "data {used:.1} % used, below the grow threshold {} %",
                cfg.grow_threshold
            ),
        )));
    }
    let devices = fs.devices().map_err(|e| e.to_string())?;
    let [device] = devices.as_slice() else {
        return Ok(with_used(TaskReport::new(
            TASK,
            Outcome::NeedsHuman,
            format!("data {used:.1} % used, but the filesystem has {} devices: grow it by hand (add a device)", devices.len()),
        )));
    };
    if !is_lvm_device(&device.path) {
        return Ok(with_used(TaskReport::new(
            TASK,
            Outcome::NeedsHuman,
            format!(
                "data {used:.1} % used, but {} is not an LVM logical volume: nothing to grow; free space or move to a larger device",
                device.path.display()
            ),
        )));
    }
    let lvm = lvm_backend(&ctx.opts.lvm_devices).map_err(|e| e.to_string())?;
    let report = lvm
        .report()
        .map_err(|e| format!("the LVM report failed: {e}"))?;
    let lv = lv_of_device(&report, &device.path)
        .ok_or_else(|| {
            format!(
                "no LV in the LVM report has the device {}",
                device.path.display()
            )
        })?
        .clone();
    let vg = report
        .find_vg(&lv.vg_name)
        .map_err(|e| e.to_string())?
        .clone();
    let name = lv.full_name();
    let extent = vg.extent_size.get().max(1);
    let figures = |r: TaskReport, lv_size: u64, vg_free: u64| {
        with_used(r)
            .figure("lv_size_bytes", lv_size as f64)
            .figure("vg_free_bytes", vg_free as f64)
            .figure("grow_max_bytes", max.0.get() as f64)
    };
    let fs_size = device.total_bytes.bytes();
    if lv.size.get() >= fs_size + extent {
        ctx.step(
            Priority::Notice,
            TASK,
            &format!(
                "the filesystem ({}) is smaller than its LV {name} ({}): resize max",
                ByteSize(fs_size),
                ByteSize(lv.size.get())
            ),
        );
        let grown = fs
            .resize(device.devid, ResizeTarget::Max)
            .map_err(|e| e.to_string())?;
        return Ok(figures(
            TaskReport::new(
                TASK,
                Outcome::Done,
                format!(
                    "grew the filesystem to fill {name}: {} -> {grown}",
                    ByteSize(fs_size)
                ),
            ),
            lv.size.get(),
            vg.free.get(),
        ));
    }
    if lv.size >= max.0 {
        return Ok(figures(
            TaskReport::new(
                TASK,
                Outcome::NeedsHuman,
                format!(
                    "data {used:.1} % used, but {name} is at the maximum {} (maintain.grow_max): not grown; free space or raise grow_max",
                    ByteSize(lv.size.get())
                ),
            ),
            lv.size.get(),
            vg.free.get(),
        ));
    }
    if vg.free.get() < extent {
        return Ok(figures(
            TaskReport::new(
                TASK,
                Outcome::NeedsHuman,
                format!(
                    "data {used:.1} % used, but volume group {} is full ({} free): not grown; add a disk (`vgextend {} DISK`) or free space",
                    vg.name,
                    ByteSize(vg.free.get()),
                    vg.name
                ),
            ),
            lv.size.get(),
            vg.free.get(),
        ));
    }
    let size = lv.size.get();
    let step = cfg.grow_step.of(size).max(cfg.grow_step_min.0.get());
    let wanted = (size + step).min(max.0.get());
    let possible = size + vg.free.get() / extent * extent;
    let target = wanted.min(possible);
    let short = target < wanted;
    ctx.step(
        Priority::Notice,
        TASK,
        &format!(
            "data {used:.1} % used (threshold {} %): lvextend {name} {} -> {}{}",
            cfg.grow_threshold,
            ByteSize(size),
            ByteSize(target),
            if short { " (all the VG has free)" } else { "" }
        ),
    );
    let grown = lvm
        .lv_extend(&lv.vg_name, &lv.name, NewSize::To(Bytes(target)))
        .map_err(|e| format!("lvextend {name}: {e}"))?;
    let fs_new = fs
        .resize(device.devid, ResizeTarget::Max)
        .map_err(|e| format!("{name} grew to {}, but the filesystem resize failed: {e}; run `btrfs filesystem resize max {}`", ByteSize(grown.size.get()), ctx.opts.path.display()))?;
    let vg_free = vg.free.get().saturating_sub(grown.size.get() - size);
    let after = fs.fill().map(|f| f.data_used_ratio * 100.0).unwrap_or(used);
    ctx.step(
        Priority::Notice,
        TASK,
        &format!("resize max: the filesystem is now {fs_new}; data {after:.1} % used"),
    );
    let at_max = grown.size >= max.0;
    Ok(figures(
        TaskReport::new(
            TASK,
            Outcome::Done,
            format!(
                "grew {name} {} -> {} and the filesystem to {fs_new}; data {used:.1} % -> {after:.1} % used{}",
                ByteSize(size),
                ByteSize(grown.size.get()),
                if at_max {
                    " (now at grow_max)"
                } else if short {
                    " (the VG is now full)"
                } else {
                    ""
                }
            ),
        )
        .figure("grown_bytes", (grown.size.get() - size) as f64),
        grown.size.get(),
        vg_free,
    ))
}
