//! Space: how full data and metadata are, whether the next chunks fit in unallocated space,
//! and whether the global reserve is in use.

use super::Context;
use crate::report::{judge, Check, Direction, Figure, Status, Unit};
use btrfs_kit::{BlockGroupKind, ByteSize, Fill};

const FREE_SPACE_HINT: &str = "free space (`docker system prune`, `dockroot doctor --fix-orphans`), or grow the LV and the filesystem";

/// Note added to figures computed without root (allocated chunks only).
fn basis(fill: &Fill) -> &'static str {
    if fill.is_exact() {
        ""
    } else {
        " (of allocated chunks only: run as root for the exact figure)"
    }
}

/// Data used and capacity: exact as root, allocated chunks otherwise.
fn data_bytes(fill: &Fill) -> (u64, u64) {
    match &fill.usage {
        Some(u) => {
            let (used, capacity) = u.data_fill();
            (used.bytes(), capacity.bytes())
        }
        None => sum(fill, BlockGroupKind::holds_data),
    }
}

fn sum(fill: &Fill, pick: fn(BlockGroupKind) -> bool) -> (u64, u64) {
    fill.space
        .iter()
        .filter(|s| pick(s.kind))
        .fold((0, 0), |(u, t), s| {
            (u + s.used.bytes(), t + s.total.bytes())
        })
}

/// How full one kind of space is, judged against its thresholds.
struct Fullness<'a> {
    id: &'static str,
    /// `data` or `metadata`, for the summary.
    what: &'static str,
    /// Extra words after the figures.
    note: &'static str,
    /// The byte figure's label.
    label: &'static str,
    percent: f64,
    used: u64,
    capacity: u64,
    warn: f64,
    crit: f64,
    /// What to do when not ok.
    action: &'static str,
    fill: &'a Fill,
}

impl Fullness<'_> {
    fn check(self) -> Check {
        let status = judge(self.percent, self.warn, self.crit, Direction::Above);
        let check = Check::new(
            self.id,
            status,
            format!(
                "{} {:.1} % used ({} of {}{}){}",
                self.what,
                self.percent,
                ByteSize(self.used),
                ByteSize(self.capacity),
                self.note,
                basis(self.fill)
            ),
        )
        .figure(
            Figure::bytes(self.label, self.used, Some(self.capacity)).alert_above(
                self.capacity as f64 * self.warn / 100.0,
                self.capacity as f64 * self.crit / 100.0,
            ),
        );
        if status == Status::Ok {
            check
        } else {
            check.action(self.action)
        }
    }
}

/// `space.used`.
pub fn used(ctx: &Context) -> Result<Check, Check> {
    const ID: &str = "space.used";
    let fill = ctx.fill(ID)?;
    let t = &ctx.target.thresholds;
    let percent = fill.data_used_ratio * 100.0;
    let (used, capacity) = data_bytes(fill);
    let check = Fullness {
        id: ID,
        what: "data",
        note: "",
        label: "used",
        percent,
        used,
        capacity,
        warn: t.used_warn,
        crit: t.used_crit,
        action: FREE_SPACE_HINT,
        fill,
    }
    .check();
    Ok(check.figure(
        Figure {
            min: Some(0.0),
            max: Some(100.0),
            ..Figure::new("used_percent", percent, Unit::Percent)
        }
        .alert_above(t.used_warn, t.used_crit),
    ))
}

/// `space.unallocated`: the real cause of "no space left while df shows free": data chunks
/// hold free space, but no new metadata chunk fits.
pub fn unallocated(ctx: &Context) -> Result<Check, Check> {
    const ID: &str = "space.unallocated";
    let fill = ctx.fill(ID)?;
    let Some(usage) = &fill.usage else {
        return Err(super::needs_root(ID, "unallocated space (the chunk tree)"));
    };
    let unallocated = usage.unallocated().bytes();
    let meta = usage.next_chunk_raw(BlockGroupKind::Metadata).bytes();
    let data = usage.next_chunk_raw(BlockGroupKind::Data).bytes();
    let (warn, crit) = ((meta + data) as f64, meta as f64);
    let status = judge(unallocated as f64, warn, crit, Direction::Below);
    let figure = Figure::bytes("unallocated", unallocated, Some(usage.device_size.bytes()))
        .alert_below(warn, crit);
    let summary = format!(
        "{} unallocated; the next metadata chunk takes {}, a data chunk {}",
        ByteSize(unallocated),
        ByteSize(meta),
        ByteSize(data)
    );
    let check = Check::new(ID, status, summary).figure(figure);
    Ok(match status {
        Status::Ok => check,
        Status::Critical => check.action(format!(
            "no room for a new metadata chunk: writes can fail with ENOSPC while data chunks show free space. Return nearly empty data chunks: `btrfs balance start -dusage=10 {}` (raise the percentage step by step), or grow the filesystem",
            ctx.path().display()
        )),
        _ => check.action(format!(
            "return nearly empty chunks to the pool: `btrfs balance start -dusage=10 {}`, or grow the filesystem",
            ctx.path().display()
        )),
    })
}

/// `space.metadata`.
pub fn metadata(ctx: &Context) -> Result<Check, Check> {
    const ID: &str = "space.metadata";
    let fill = ctx.fill(ID)?;
    let t = &ctx.target.thresholds;
    let (used, capacity) = match &fill.usage {
        Some(u) => {
            let (used, capacity) = u.metadata_fill();
            (used.bytes(), capacity.bytes())
        }
        None => sum(fill, |k| {
            matches!(k, BlockGroupKind::Metadata | BlockGroupKind::Mixed)
        }),
    };
    Ok(Fullness {
        id: ID,
        what: "metadata",
        note: ", global reserve included",
        label: "metadata",
        percent: fill.metadata_used_ratio * 100.0,
        used,
        capacity,
        warn: t.metadata_warn,
        crit: t.metadata_crit,
        action: "metadata grows with files and snapshots: remove unused images and containers (each layer is a subvolume), orphans (`dockroot doctor --fix-orphans`), or grow the filesystem",
        fill,
    }
    .check())
}

/// `space.global-reserve`: the kernel dips into it only when metadata is exhausted.
pub fn global_reserve(ctx: &Context) -> Result<Check, Check> {
    const ID: &str = "space.global-reserve";
    let fill = ctx.fill(ID)?;
    let Some(reserve) = fill
        .space
        .iter()
        .find(|s| s.kind == BlockGroupKind::GlobalReserve)
    else {
        return Err(Check::unknown(ID, "the kernel reports no global reserve"));
    };
    let (used, size) = (reserve.used.bytes(), reserve.total.bytes());
    let figure =
        Figure::bytes("global_reserve_used", used, Some(size)).alert_above(1.0, size as f64 / 2.0);
    let status = if used == 0 {
        Status::Ok
    } else if used * 2 >= size {
        Status::Critical
    } else {
        Status::Warning
    };
    let check = Check::new(
        ID,
        status,
        format!(
            "global reserve {} of {} in use",
            ByteSize(used),
            ByteSize(size)
        ),
    )
    .figure(figure);
    Ok(if status == Status::Ok {
        check
    } else {
        check.action("metadata is exhausted and the kernel is using its emergency reserve: free space or grow the filesystem now; deletes may need `btrfs balance start -dusage=0` first")
    })
}
