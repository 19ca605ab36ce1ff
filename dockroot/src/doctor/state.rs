//! Where the data root lives, and the filesystem's state: read-only, balance, exclusive
//! operations, quotas.

use super::{needs_root, Context};
use crate::report::{Check, Figure, Status, Unit};
use btrfs_kit::ErrorKind;

const PROVISION_HINT: &str = "give Docker a filesystem of its own: stop Docker, move the old data aside, then `dockroot provision --vg VG --size 10g`";

/// `mount.own-filesystem`: the article's first finding, Docker's data on the root filesystem.
pub fn own_filesystem(ctx: &Context) -> Check {
    const ID: &str = "mount.own-filesystem";
    let mount = match ctx.mount(ID) {
        Ok(m) => m,
        Err(c) => {
            return match &ctx.root {
                Err(e) => Check::new(ID, Status::Critical, e.clone())
                    .action("create it with `dockroot provision`, or give the data root's path"),
                Ok(_) => c,
            }
        }
    };
    let root = ctx.root.as_ref().expect("a mount was found for it");
    if root == std::path::Path::new("/") {
        return Check::new(
            ID,
            Status::Critical,
            "the data root is / itself: the root filesystem",
        )
        .action(PROVISION_HINT);
    }
    let on = |m: &btrfs_kit::mounts::Mount| {
        if m.mount_point == std::path::Path::new("/") {
            "the root filesystem".to_string()
        } else {
            format!("{}'s filesystem", m.mount_point.display())
        }
    };
    if &mount.mount_point != root {
        return Check::new(
            ID,
            Status::Critical,
            format!(
                "{} is not a mount point: it is on {} ({} on {}), which Docker can fill",
                root.display(),
                on(mount),
                mount.fstype,
                mount.source.display()
            ),
        )
        .action(PROVISION_HINT);
    }
    let parent = root
        .parent()
        .and_then(|p| ctx.mounts.as_ref().ok().and_then(|t| t.containing(p)));
    if let Some(parent) = parent.filter(|p| p.device == mount.device) {
        return Check::new(
            ID,
            Status::Critical,
            format!(
                "{} is mounted, but from the same filesystem as {} ({} {}, a bind mount of {}): Docker still fills that filesystem",
                root.display(),
                on(parent),
                mount.fstype,
                mount.source.display(),
                mount.root.display()
            ),
        )
        .action(PROVISION_HINT);
    }
    Check::ok(
        ID,
        format!(
            "{} is a filesystem of its own ({} on {})",
            root.display(),
            mount.fstype,
            mount.source.display()
        ),
    )
}

/// `fs.btrfs`.
pub fn is_btrfs(ctx: &Context) -> Check {
    const ID: &str = "fs.btrfs";
    match &ctx.fs {
        Ok(fs) => match fs.info() {
            Ok(info) => Check::ok(
                ID,
                format!(
                    "btrfs, label {:?}, fsid {}, {} device(s)",
                    info.label, info.fsid, info.num_devices
                ),
            ),
            Err(e) => Check::unknown(ID, e.to_string()),
        },
        Err(e) => match e.kind() {
            ErrorKind::NotBtrfs { found } => Check::new(
                ID,
                Status::Critical,
                format!(
                    "{} is {found}, not btrfs: Docker's btrfs storage driver needs btrfs",
                    ctx.path().display()
                ),
            )
            .action(PROVISION_HINT),
            _ => Check::new(ID, Status::Critical, e.to_string())
                .action("give the path of Docker's data root (it must exist)"),
        },
    }
}

/// `state.read-only`: a read-only mount, or a filesystem that turned read-only (what btrfs
/// does when it aborts a transaction).
pub fn read_only(ctx: &Context) -> Result<Check, Check> {
    const ID: &str = "state.read-only";
    let mount = ctx.mount(ID)?;
    let status = Figure::new(
        "read_only",
        f64::from(u8::from(mount.is_read_only())),
        Unit::Count,
    );
    Ok(if mount.filesystem_went_read_only() {
        Check::new(
            ID,
            Status::Critical,
            format!(
                "the filesystem on {} turned read-only although mounted read-write: btrfs does that after aborting a transaction",
                mount.source.display()
            ),
        )
        .action("read `dmesg` for the BTRFS error, stop Docker, unmount, run `btrfs check --readonly`, then remount")
    } else if mount.is_read_only() {
        Check::new(
            ID,
            Status::Critical,
            format!("{} is mounted read-only: Docker cannot write", mount.mount_point.display()),
        )
        .action(format!(
            "remount it read-write: mount -o remount,rw {}",
            mount.mount_point.display()
        ))
    } else {
        Check::ok(ID, "mounted read-write")
    }
    .figure(status))
}

/// `state.balance`: running is fine (the daily upkeep), paused needs a decision.
pub fn balance(ctx: &Context) -> Result<Check, Check> {
    const ID: &str = "state.balance";
    let fs = ctx.btrfs(ID)?;
    let status = match fs.balance_status() {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), ErrorKind::PermissionDenied { .. }) => {
            return Err(needs_root(ID, "the balance status"))
        }
        Err(e) => return Err(Check::unknown(ID, e.to_string())),
    };
    Ok(match status {
        None => Check::ok(ID, "no balance running or paused"),
        Some(s) if s.running => Check::ok(
            ID,
            format!(
                "a balance is running ({}): {} of about {} chunks relocated",
                s.request, s.progress.relocated, s.progress.expected
            ),
        ),
        Some(s) => Check::new(
            ID,
            Status::Warning,
            format!(
                "a balance is paused ({}, {} of about {} chunks relocated); it resumes by itself at the next mount unless mounted with skip_balance",
                s.request, s.progress.relocated, s.progress.expected
            ),
        )
        .action(format!(
            "resume it (`btrfs balance resume {0}`) or cancel it (`btrfs balance cancel {0}`)",
            ctx.path().display()
        )),
    })
}

/// `state.exclusive-operation`: a resize, device add/remove/replace or paused balance blocks
/// other exclusive operations.
pub fn exclusive_operation(ctx: &Context) -> Result<Check, Check> {
    use btrfs_kit::sysfs::{ExclusiveOperation as Op, FsSysfs};
    const ID: &str = "state.exclusive-operation";
    let fs = ctx.btrfs(ID)?;
    let op = FsSysfs::for_fs(fs)
        .and_then(|s| s.exclusive_operation())
        .map_err(|e| Check::unknown(ID, e.to_string()))?;
    Ok(match op {
        None => Check::unknown(
            ID,
            "the kernel does not report exclusive operations (sysfs exclusive_operation needs 5.10)",
        ),
        Some(Op::None) => Check::ok(ID, "no exclusive operation running"),
        Some(Op::Balance) => Check::ok(ID, "a balance is running (see state.balance)"),
        Some(Op::BalancePaused) => Check::new(
            ID,
            Status::Warning,
            "a paused balance holds the exclusive-operation lock: resize and device removal wait for it",
        )
        .action("resume or cancel the balance"),
        Some(op) => Check::new(
            ID,
            Status::Warning,
            format!("an exclusive operation is running: {op}; balance, resize and device operations are refused until it ends"),
        )
        .action("let it finish; if it hangs, read `dmesg`"),
    })
}

/// The quota status, or why it cannot be read.
fn quota(ctx: &Context, id: &'static str) -> Result<Option<btrfs_kit::quota::QuotaStatus>, Check> {
    let fs = ctx.btrfs(id)?;
    match fs.quota_status() {
        Ok(s) => Ok(s.filter(|s| s.enabled)),
        Err(e) if matches!(e.kind(), ErrorKind::PermissionDenied { .. }) => {
            Err(needs_root(id, "the quota status"))
        }
        Err(e) => Err(Check::unknown(id, e.to_string())),
    }
}

/// `quota.subvolumes`: qgroups on with very many subvolumes make every snapshot deletion and
/// balance pay for the accounting.
pub fn quota_subvolumes(ctx: &Context) -> Result<Check, Check> {
    const ID: &str = "quota.subvolumes";
    if quota(ctx, ID)?.is_none() {
        return Ok(Check::ok(ID, "quotas are off"));
    }
    let fs = ctx.btrfs(ID)?;
    let qgroups = fs
        .qgroups()
        .map_err(|e| Check::unknown(ID, e.to_string()))?;
    let count = qgroups.iter().filter(|q| q.id.level() == 0).count() as u64;
    let limit = ctx.target.thresholds.quota_subvolumes;
    let figure = Figure::new("quota_subvolumes", count as f64, Unit::Count)
        .alert_above(limit as f64, f64::INFINITY);
    Ok(if count > limit {
        Check::new(
            ID,
            Status::Warning,
            format!("quotas are on with {count} subvolume qgroups (more than {limit}): every snapshot deletion and balance pays for qgroup accounting"),
        )
        .action(format!(
            "turn quotas off unless containers need --storage-opt size= (`btrfs quota disable {}`)",
            ctx.path().display()
        ))
    } else {
        Check::ok(ID, format!("quotas are on with {count} subvolume qgroups"))
    }
    .figure(figure))
}

/// `quota.consistency`: counts marked inconsistent (e.g. after Docker removed a container that
/// had a size limit) stop limits from being enforced until a rescan.
pub fn quota_consistency(ctx: &Context) -> Result<Check, Check> {
    const ID: &str = "quota.consistency";
    let Some(status) = quota(ctx, ID)? else {
        return Ok(Check::ok(ID, "quotas are off"));
    };
    let figure = Figure::new(
        "quota_inconsistent",
        f64::from(u8::from(status.inconsistent)),
        Unit::Count,
    );
    Ok(if status.rescan_running {
        Check::ok(ID, "a quota rescan is running")
    } else if status.inconsistent {
        Check::new(
            ID,
            Status::Warning,
            "qgroup counts are marked inconsistent: container size limits (--storage-opt size=) are not enforced until a rescan",
        )
        .action(format!(
            "`dockroot doctor --fix {}` runs the rescan",
            ctx.path().display()
        ))
    } else {
        Check::ok(ID, "quotas are on and consistent")
    }
    .figure(figure))
}
