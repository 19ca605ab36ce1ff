//! The scrub task: when the last completed scrub (btrfs-kit's state, shared with `doctor`) is
//! older than `scrub_interval_days`, scrub; an unfinished scrub (cancelled, or interrupted by
//! a crash or reboot) is resumed where it stopped. A signal cancels it; the next run resumes.

use super::{Ctx, Outcome, Priority, Task, TaskReport};
use btrfs_kit::scrub::{ScrubRequest, ScrubState, ScrubVerdict};
use btrfs_kit::{ByteSize, ErrorKind};
use std::time::Duration;

const TASK: Task = Task::Scrub;

/// The scrub task.
pub(crate) fn run(ctx: &Ctx) -> TaskReport {
    match scrub(ctx) {
        Ok(r) => r,
        Err(e) if matches!(e.kind(), ErrorKind::ScrubAlreadyRunning { .. }) => TaskReport::new(
            TASK,
            Outcome::Skipped,
            "a scrub started by someone else is running: left alone",
        ),
        Err(e) => TaskReport::new(TASK, Outcome::Failed, e.to_string()),
    }
}

fn scrub(ctx: &Ctx) -> btrfs_kit::Result<TaskReport> {
    let days = ctx.cfg.scrub_interval_days;
    if days == 0 {
        return Ok(TaskReport::new(
            TASK,
            Outcome::NotDue,
            "off (scrub_interval_days = 0)",
        ));
    }
    let dir = &ctx.opts.scrub_state_dir;
    let state = ScrubState::load(dir, ctx.fsid)?;
    let unfinished = state.as_ref().and_then(|s| s.unfinished());
    let last = state.as_ref().and_then(|s| s.last_completed());
    let resume = match unfinished {
        Some(u) if u.is_running_elsewhere() => {
            return Ok(TaskReport::new(
                TASK,
                Outcome::Skipped,
                "a scrub is running in another process: left alone",
            ))
        }
        Some(_) => true,
        None => false,
    };
    if !resume {
        if let Some(last) = last {
            let age = last.age();
            if age < Duration::from_secs(days * 86_400) {
                return Ok(TaskReport::new(
                    TASK,
                    Outcome::NotDue,
                    format!(
                        "last completed scrub {} day(s) ago ({}): due after {days} days",
                        age.as_secs() / 86_400,
                        last.verdict
                    ),
                )
                .figure("age_days", (age.as_secs() / 86_400) as f64));
            }
        }
    }
    let request = ScrubRequest::new().state_dir(dir.clone());
    ctx.step(
        Priority::Info,
        TASK,
        &match (resume, last) {
            (true, _) => "resuming the unfinished scrub".to_string(),
            (false, Some(l)) => format!(
                "starting: the last completed scrub is {} day(s) old",
                l.age().as_secs() / 86_400
            ),
            (false, None) => "starting: no completed scrub on record".to_string(),
        },
    );
    let handle = if resume {
        ctx.fs.scrub_resume_background(&request)?
    } else {
        ctx.fs.scrub_background(&request)?
    };
    let mut cancelled = false;
    while !handle.is_finished() {
        let signalled = match &ctx.interrupts {
            Some(i) => i.wait_beyond(0, Duration::from_millis(250)) > 0,
            None => {
                std::thread::sleep(Duration::from_millis(250));
                false
            }
        };
        if signalled && !cancelled {
            ctx.step(
                Priority::Notice,
                TASK,
                "signal: cancelling the scrub (the next run resumes it)",
            );
            match handle.cancel() {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::ScrubNotRunning) => {}
                Err(e) => return Err(e),
            }
            cancelled = true;
        }
    }
    let outcome = handle.wait()?;
    let total = &outcome.total;
    let errors = total.errors();
    let summary = format!(
        "{} in {:.1} s: {} scrubbed, {errors} error(s) ({} corrected, {} uncorrectable)",
        outcome.verdict,
        outcome.duration.as_secs_f64(),
        ByteSize(total.bytes_scrubbed().bytes()),
        total.corrected_errors,
        total.uncorrectable_errors
    );
    let (result, summary) = match outcome.verdict {
        ScrubVerdict::Clean => (Outcome::Done, summary),
        ScrubVerdict::Corrected => (
            Outcome::NeedsHuman,
            format!("{summary}: errors were repaired from good copies; check the device counters and `dmesg` for a failing device"),
        ),
        ScrubVerdict::Uncorrectable => (
            Outcome::NeedsHuman,
            format!("{summary}: data without a good copy; the files are named in the scrub state; restore them (Docker layers: remove and pull the image)"),
        ),
        ScrubVerdict::Cancelled if cancelled => (Outcome::Stopped, format!("{summary}; the next run resumes it")),
        ScrubVerdict::Cancelled => (Outcome::Skipped, format!("{summary}: cancelled by someone else; the next run resumes it")),
        ScrubVerdict::Failed => (Outcome::Failed, summary),
    };
    Ok(TaskReport::new(TASK, result, summary)
        .figure("bytes_scrubbed", total.bytes_scrubbed().bytes() as f64)
        .figure("errors", errors as f64)
        .figure("corrected_errors", total.corrected_errors as f64)
        .figure("uncorrectable_errors", total.uncorrectable_errors as f64)
        .figure("duration_seconds", outcome.duration.as_secs_f64()))
}
