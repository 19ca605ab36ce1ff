//! The calendar tasks: trim (weekly by default) and the defragmentation dry run.

use super::{Ctx, DefragMode, Outcome, Priority, Task, TaskReport};
use btrfs_kit::defrag::{self, DefragOptions, WalkOptions};
use btrfs_kit::trim::TrimOptions;
use btrfs_kit::{ByteSize, ErrorKind};
use std::ops::ControlFlow;

/// `FITRIM` when the last trim is older than `trim_interval_days`.
pub(crate) fn trim(ctx: &Ctx) -> TaskReport {
    const TASK: Task = Task::Trim;
    let days = ctx.cfg.trim_interval_days;
    match ctx.due_after_days(TASK, days) {
        None => return TaskReport::new(TASK, Outcome::NotDue, "off (trim_interval_days = 0)"),
        Some(false) => {
            return TaskReport::new(
                TASK,
                Outcome::NotDue,
                format!("trimmed less than {days} day(s) ago"),
            )
        }
        Some(true) => {}
    }
    ctx.step(Priority::Info, TASK, "discarding unused space (FITRIM)");
    let started = std::time::Instant::now();
    match ctx.fs.trim(&TrimOptions::default()) {
        Ok(outcome) => TaskReport::new(
            TASK,
            Outcome::Done,
            format!(
                "{} discarded in {:.1} s",
                outcome.trimmed,
                started.elapsed().as_secs_f64()
            ),
        )
        .figure("trimmed_bytes", outcome.trimmed.bytes() as f64),
        Err(e) if matches!(e.kind(), ErrorKind::DiscardUnsupported) => TaskReport::new(
            TASK,
            Outcome::Skipped,
            format!("no device supports discard: nothing to trim; asked again in {days} day(s)"),
        ),
        Err(e) => TaskReport::new(TASK, Outcome::Failed, e.to_string()),
    }
}

/// The defragmentation dry run (`defrag = "dry-run"`): what a defragmentation of the data
/// root, layers included, would rewrite and how many shared bytes it would unshare.
pub(crate) fn defrag(ctx: &Ctx) -> TaskReport {
    const TASK: Task = Task::Defrag;
    if ctx.cfg.defrag == DefragMode::Never {
        return TaskReport::new(
            TASK,
            Outcome::NotDue,
            "never (defragmenting Docker's shared layers unshares their extents); defrag = \"dry-run\" reports what it would do",
        );
    }
    ctx.step(
        Priority::Info,
        TASK,
        "dry run: planning a defragmentation (nothing is changed)",
    );
    let walk = WalkOptions::default().cross_subvolumes(true);
    let stop = || ctx.stopped();
    let plan = defrag::plan_tree(&ctx.opts.path, &DefragOptions::default(), &walk, |_, _| {
        if stop() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    match plan {
        Ok(report) => {
            let t = &report.totals;
            let outcome = if report.stopped {
                Outcome::Stopped
            } else {
                Outcome::Done
            };
            TaskReport::new(
                TASK,
                outcome,
                format!(
                    "dry run over {} file(s), {}: {} file(s) would be rewritten ({}), unsharing {} (shared with layers or snapshots); nothing changed",
                    t.files,
                    t.bytes,
                    t.targets,
                    t.target_bytes,
                    ByteSize(t.would_unshare.bytes())
                ),
            )
            .figure("files", t.files as f64)
            .figure("target_files", t.targets as f64)
            .figure("target_bytes", t.target_bytes.bytes() as f64)
            .figure("would_unshare_bytes", t.would_unshare.bytes() as f64)
        }
        Err(e) => TaskReport::new(TASK, Outcome::Failed, e.to_string()),
    }
}
