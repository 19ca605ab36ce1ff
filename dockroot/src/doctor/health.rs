//! Device health: error counters (`BTRFS_IOC_GET_DEV_STATS`) and the last scrub, from the
//! scrub state btrfs-kit records (`btrfs_kit::scrub::ScrubState`, in `paths.scrub_state_dir`).

use super::Context;
use crate::report::{Check, Figure, Status, Unit};
use btrfs_kit::scrub::{ScrubState, ScrubVerdict};
use std::time::{Duration, SystemTime};

/// `health.device-errors`: write, read, flush, corruption and generation errors per device.
/// I/O errors (write, read, flush) are critical; corruption and generation errors alone a
/// warning (a scrub may have repaired them; the counters stay until reset).
pub fn device_errors(ctx: &Context) -> Result<Check, Check> {
    const ID: &str = "health.device-errors";
    let fs = ctx.btrfs(ID)?;
    let stats = fs
        .device_stats_all()
        .map_err(|e| Check::unknown(ID, e.to_string()))?;
    let total: u64 = stats.iter().map(|s| s.total()).sum();
    let figure =
        Figure::new("device_errors", total as f64, Unit::Count).alert_above(1.0, f64::INFINITY);
    let bad: Vec<String> = stats
        .iter()
        .filter(|s| s.total() > 0)
        .map(|s| {
            let named: Vec<String> = s
                .named()
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            format!("device {}: {}", s.devid, named.join(", "))
        })
        .collect();
    if bad.is_empty() {
        return Ok(Check::ok(
            ID,
            format!("no errors counted on {} device(s)", stats.len()),
        )
        .figure(figure));
    }
    let io = stats
        .iter()
        .any(|s| s.write_errs + s.read_errs + s.flush_errs > 0);
    Ok(Check::new(
        ID,
        if io { Status::Critical } else { Status::Warning },
        format!("error counters are not zero: {}", bad.join("; ")),
    )
    .action("read `dmesg` and the device's SMART data; scrub to find and repair damage; replace a failing device; once handled, reset the counters (`btrfs device stats -z`)")
    .figure(figure))
}

fn days(d: Duration) -> u64 {
    d.as_secs() / 86_400
}

/// `health.scrub`: the last completed scrub, its errors and its age.
pub fn scrub(ctx: &Context) -> Result<Check, Check> {
    const ID: &str = "health.scrub";
    let fs = ctx.btrfs(ID)?;
    let fsid = fs
        .info()
        .map_err(|e| Check::unknown(ID, e.to_string()))?
        .fsid;
    let dir = &ctx.target.paths.scrub_state_dir;
    let max_age = ctx.target.thresholds.scrub_max_age_days;
    let state = ScrubState::load(dir, fsid).map_err(|e| Check::unknown(ID, e.to_string()))?;
    let start_hint = format!(
        "scrub it (`cargo run --example scrub -- start {}`), monthly",
        ctx.path().display()
    );
    let last = state.as_ref().and_then(|s| s.last_completed());
    let unfinished = state.as_ref().and_then(|s| s.unfinished());
    let pending = match unfinished {
        Some(u) if u.is_running_elsewhere() => "; a scrub is running now",
        Some(_) => "; an unfinished scrub can be resumed",
        None => "",
    };
    let Some(last) = last else {
        // A filesystem younger than the scrub interval needs none yet.
        let created = fs.subvolume_info().ok().and_then(|i| i.otime);
        let age = created.and_then(|t| SystemTime::now().duration_since(t).ok());
        return Ok(match age {
            Some(a) if days(a) > max_age => Check::new(
                ID,
                Status::Warning,
                format!(
                    "no completed scrub on record ({}) for a filesystem {} days old{pending}",
                    dir.display(),
                    days(a)
                ),
            )
            .action(start_hint),
            _ => Check::ok(
                ID,
                format!(
                    "no completed scrub on record yet ({}); the filesystem is younger than {max_age} days{pending}",
                    dir.display()
                ),
            ),
        });
    };
    let age = days(last.age());
    let errors = last.totals.errors();
    let figure = Figure::new("scrub_age_days", age as f64, Unit::Count)
        .alert_above(max_age as f64, f64::INFINITY);
    let summary = format!(
        "last scrub {} {age} day(s) ago: {}, {errors} error(s){}{pending}",
        if last.read_only { "(read-only)" } else { "" },
        last.verdict,
        if last.damaged_files > 0 {
            format!(", {} damaged file(s) named", last.damaged_files)
        } else {
            String::new()
        }
    )
    .replace("scrub  ", "scrub ");
    Ok(match last.verdict {
        ScrubVerdict::Uncorrectable => Check::new(ID, Status::Critical, summary)
            .action("data without a good copy: the scrub's report names the damaged files; restore them (for Docker layers: remove and pull the image again)"),
        ScrubVerdict::Corrected => Check::new(ID, Status::Warning, summary)
            .action("errors were repaired from good copies: check the device counters and `dmesg` for a failing device"),
        _ if age > max_age => Check::new(ID, Status::Warning, summary).action(start_hint),
        _ => Check::ok(ID, summary),
    }
    .figure(figure))
}
