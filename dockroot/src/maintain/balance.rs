//! The balance task: return nearly empty chunks to the unallocated pool, only when that is
//! worth it, a few chunks per kernel call, least-used first.
//!
//! Due when unallocated space is below `unallocated_target` and some data chunk is less than
//! `balance_usage_max` % used (judged from the block group items: no balance ioctl, no
//! transaction commit when nothing is due). Each step relocates the `balance_chunks_per_step`
//! least-used candidates: one chunk by its address (`vrange`), several with the smallest
//! `usage` ceiling that selects them and `limit`. After each step the figures are read again;
//! the run stops at the target, when nothing qualifies, or on a signal. ENOSPC halves the next
//! step; a single chunk that hits ENOSPC is left and the next one tried.
//!
//! The candidates and each step's request are btrfs-kit's (`Filesystem::least_used_chunks`,
//! `Balance::relocating`, on the library's `ChunkFilters::selects` prediction); this task
//! adds when to run, the target and the ENOSPC rules.

use super::{Ctx, Outcome, Priority, Task, TaskReport};
use btrfs_kit::balance::cli::SignalAwareRunner;
use btrfs_kit::balance::{Balance, Sequence, SequenceState, Step};
use btrfs_kit::{BlockGroup, BlockGroupKind, ByteSize, ErrorKind, Filesystem};
use std::collections::BTreeSet;

const TASK: Task = Task::Balance;

/// After this many single-chunk ENOSPCs in a row the run gives up.
const MAX_ENOSPC: u32 = 3;

/// How full a block group is, in permille (btrfs-kit's `BlockGroup::permille`).
fn permille(g: &BlockGroup) -> u64 {
    g.permille()
}

/// The candidates, least used first (btrfs-kit's `Filesystem::least_used_chunks`).
fn candidates(
    fs: &Filesystem,
    usage_max: u8,
    metadata: bool,
    excluded: &BTreeSet<u64>,
) -> btrfs_kit::Result<Vec<BlockGroup>> {
    fs.least_used_chunks(usage_max, metadata, excluded)
}

/// The request relocating `batch` (btrfs-kit's `Balance::relocating`).
fn request(batch: &[BlockGroup]) -> Balance {
    Balance::relocating(batch)
}

/// The balance task.
pub(crate) fn run(ctx: &Ctx) -> TaskReport {
    match balance(ctx) {
        Ok(r) => r,
        Err(e) => TaskReport::new(TASK, Outcome::Failed, e.to_string()),
    }
}

fn someone_elses(ctx: &Ctx) -> btrfs_kit::Result<Option<TaskReport>> {
    if let Ok(sysfs) = btrfs_kit::sysfs::FsSysfs::for_fs(ctx.fs) {
        if let Ok(Some(op)) = sysfs.exclusive_operation() {
            if op.is_running()
                && !matches!(
                    op,
                    btrfs_kit::sysfs::ExclusiveOperation::Balance
                        | btrfs_kit::sysfs::ExclusiveOperation::BalancePaused
                )
            {
                return Ok(Some(TaskReport::new(
                    TASK,
                    Outcome::Skipped,
                    format!("another exclusive operation runs ({op}), started by someone else: left alone"),
                )));
            }
        }
    }
    if let Some(status) = ctx.fs.balance_status()? {
        let p = status.progress;
        return Ok(Some(if status.running {
            TaskReport::new(
                TASK,
                Outcome::Skipped,
                format!(
                    "a balance started by someone else is running ({} of {} chunks relocated): left alone",
                    p.relocated, p.expected
                ),
            )
        } else {
            TaskReport::new(
                TASK,
                Outcome::NeedsHuman,
                format!(
                    "a balance is paused ({} of {} chunks relocated), started by someone else: left alone",
                    p.relocated, p.expected
                ),
            )
            .figure("paused", 1)
        }
        .figure("relocated_chunks", 0)));
    }
    Ok(None)
}

fn balance(ctx: &Ctx) -> btrfs_kit::Result<TaskReport> {
    let cfg = ctx.cfg;
    let fs = ctx.fs;
    let left_paused_by_us = ctx
        .state
        .task(TASK.name())
        .is_some_and(|r| r.figures.get("left_paused") == Some(&1.0));
    let paused_now = fs.balance_status()?.is_some_and(|s| !s.running);
    let usage = fs.usage()?;
    let target = cfg.unallocated_target.of(usage.device_size.bytes());
    let start = usage.unallocated().bytes();
    let mut unallocated = start;
    let base = |r: TaskReport, unallocated: u64| {
        r.figure("unallocated_bytes", unallocated as f64)
            .figure("unallocated_target_bytes", target as f64)
    };
    let mut runner = ctx.interrupts.clone().map(|i| {
        SignalAwareRunner::new(
            i,
            false,
            format!("dockroot maintain {}", ctx.opts.path.display()),
        )
    });
    let mut relocated = 0u64;
    let mut steps = 0u32;
    if left_paused_by_us && paused_now {
        ctx.step(
            Priority::Info,
            TASK,
            "resuming the balance the last run left paused",
        );
        steps += 1;
        match run_step(fs, runner.as_mut(), Step::Resume)? {
            Ran::Report(report) => {
                relocated += report.relocated();
                if report.state != SequenceState::Completed {
                    return Ok(base(
                        stopped(ctx, fs, report.state, relocated)?,
                        unallocated,
                    ));
                }
            }
            Ran::NoSpace => ctx.step(
                Priority::Warning,
                TASK,
                "the resumed balance hit ENOSPC; going on with measured steps",
            ),
        }
        unallocated = fs.usage()?.unallocated().bytes();
    } else if let Some(report) = someone_elses(ctx)? {
        return Ok(base(report, unallocated));
    }
    if unallocated >= target && steps == 0 {
        return Ok(base(
            TaskReport::new(
                TASK,
                Outcome::NotDue,
                format!(
                    "{} unallocated, at least the target {}: nothing to do",
                    ByteSize(unallocated),
                    ByteSize(target)
                ),
            ),
            unallocated,
        )
        .figure("relocated_chunks", 0));
    }
    let mut excluded = BTreeSet::new();
    let mut step_size = cfg.balance_chunks_per_step.max(1) as usize;
    let mut enospc = 0u32;
    let mut enospc_total = 0u32;
    let mut empty_steps = 0u32;
    let mut found = 0usize;
    let max_steps = 2 * fs.block_groups()?.len() as u32 + 8;
    let why_end;
    loop {
        if unallocated >= target {
            why_end = format!("reached the target {}", ByteSize(target));
            break;
        }
        if ctx.stopped() {
            return Ok(base(
                stopped(ctx, fs, SequenceState::Stopped, relocated)?,
                unallocated,
            ));
        }
        let list = candidates(fs, cfg.balance_usage_max, cfg.balance_metadata, &excluded)?;
        if steps == 0 {
            found = list.len();
        }
        let Some(first) = list.first() else {
            why_end = format!(
                "no {}chunk is less than {} % used",
                if cfg.balance_metadata { "" } else { "data " },
                cfg.balance_usage_max
            );
            break;
        };
        if steps >= max_steps {
            why_end = format!("stopped after {steps} steps");
            break;
        }
        let batch: Vec<BlockGroup> = list
            .iter()
            .filter(|g| g.kind == first.kind)
            .take(if first.kind == BlockGroupKind::Data {
                step_size
            } else {
                1
            })
            .cloned()
            .collect();
        let req = request(&batch);
        let label = req.to_string();
        ctx.step(
            Priority::Info,
            TASK,
            &format!(
                "step {}: {label} ({} chunk(s), least used {:.1} %; unallocated {}, target {})",
                steps + 1,
                batch.len(),
                permille(first) as f64 / 10.0,
                ByteSize(unallocated),
                ByteSize(target)
            ),
        );
        steps += 1;
        match run_step(fs, runner.as_mut(), Step::Start(req)) {
            Ok(Ran::Report(report)) => {
                let moved = report.relocated();
                relocated += moved;
                if report.state != SequenceState::Completed {
                    return Ok(base(
                        stopped(ctx, fs, report.state, relocated)?,
                        fs.usage()?.unallocated().bytes(),
                    ));
                }
                enospc = 0;
                let after = fs.usage()?.unallocated().bytes();
                ctx.step(
                    Priority::Info,
                    TASK,
                    &format!(
                        "step {steps}: relocated {moved} chunk(s); unallocated {} -> {}",
                        ByteSize(unallocated),
                        ByteSize(after)
                    ),
                );
                unallocated = after;
                if moved == 0 {
                    // The items were older than the kernel's view: leave these chunks.
                    excluded.extend(batch.iter().map(|g| g.logical));
                    empty_steps += 1;
                    if empty_steps >= 3 {
                        why_end = "the kernel found nothing to relocate".into();
                        break;
                    }
                } else {
                    empty_steps = 0;
                }
            }
            Ok(Ran::NoSpace) => {
                enospc_total += 1;
                if batch.len() > 1 {
                    step_size = (batch.len() / 2).max(1);
                    ctx.step(
                        Priority::Warning,
                        TASK,
                        &format!("step {steps}: ENOSPC (no space to relocate {} chunks); next step: {step_size} chunk(s)", batch.len()),
                    );
                } else {
                    enospc += 1;
                    excluded.insert(first.logical);
                    ctx.step(
                        Priority::Warning,
                        TASK,
                        &format!(
                            "step {steps}: ENOSPC relocating the chunk at {} ({:.1} % used): left in place, trying the next",
                            first.logical,
                            permille(first) as f64 / 10.0
                        ),
                    );
                    if enospc >= MAX_ENOSPC {
                        why_end = format!("{enospc} chunks in a row hit ENOSPC");
                        break;
                    }
                }
                unallocated = fs.usage()?.unallocated().bytes();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::BalanceAlreadyRunning | ErrorKind::ExclusiveOperationRunning { .. }
                ) =>
            {
                return Ok(base(
                    TaskReport::new(
                        TASK,
                        Outcome::Skipped,
                        format!("someone else started a balance or another exclusive operation during the run: left alone after {relocated} chunk(s)"),
                    ),
                    unallocated,
                )
                .figure("relocated_chunks", relocated as f64));
            }
            Err(e) => return Err(e),
        }
    }
    // Nothing of ours may stay paused (a pause requested by a signal that raced the end).
    let reached = unallocated >= target;
    let summary = format!(
        "{} chunk(s) relocated in {steps} step(s) ({found} candidate(s)); unallocated {} -> {} (target {}): {why_end}{}",
        relocated,
        ByteSize(start),
        ByteSize(unallocated),
        ByteSize(target),
        if enospc_total > 0 { format!("; {enospc_total} step(s) hit ENOSPC") } else { String::new() }
    );
    let outcome = if enospc_total > 0 && !reached {
        Outcome::NeedsHuman
    } else if relocated > 0 {
        Outcome::Done
    } else {
        Outcome::NotDue
    };
    let summary = if outcome == Outcome::NeedsHuman {
        format!(
            "{summary}: free space (delete images: `docker system prune`) or grow the filesystem"
        )
    } else {
        summary
    };
    Ok(base(TaskReport::new(TASK, outcome, summary), unallocated)
        .figure("relocated_chunks", relocated as f64)
        .figure("steps", steps)
        .figure("enospc_steps", enospc_total)
        .figure("candidates", found as f64))
}

/// Runs one step through the signal-aware runner (or blocking without signal handling).
fn run_step(
    fs: &Filesystem,
    runner: Option<&mut SignalAwareRunner>,
    step: Step,
) -> btrfs_kit::Result<Ran> {
    let sequence = Sequence::single(step);
    let report = match runner {
        Some(r) => sequence.run(fs, r),
        None => sequence.run(fs, &mut btrfs_kit::balance::Blocking),
    };
    match report {
        Ok(report) if report.state == SequenceState::NoSpace => Ok(Ran::NoSpace),
        Err(e) if matches!(e.kind(), ErrorKind::NoSpace) => Ok(Ran::NoSpace),
        Ok(report) => Ok(Ran::Report(report)),
        Err(e) => Err(e),
    }
}

/// How one balance step ended.
enum Ran {
    /// The kernel ran it (completed, paused or cancelled, or the runner stopped first).
    Report(btrfs_kit::balance::SequenceReport),
    /// The kernel found no space to relocate the step's chunks (ENOSPC).
    NoSpace,
}

/// A signal stopped the balance: cancel a pause unless `keep_paused`.
fn stopped(
    ctx: &Ctx,
    fs: &Filesystem,
    state: SequenceState,
    relocated: u64,
) -> btrfs_kit::Result<TaskReport> {
    let paused = fs.balance_status()?.is_some_and(|s| !s.running);
    let keep = ctx.cfg.keep_paused && paused;
    if paused && !keep {
        match fs.balance_cancel() {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::BalanceNotRunning) => {}
            Err(e) => return Err(e),
        }
    }
    let what = if keep {
        "the balance is kept paused (keep_paused); the next run resumes it"
    } else if paused || state == SequenceState::Paused || state == SequenceState::Cancelled {
        "the balance was cancelled; nothing is left paused"
    } else {
        "stopped between two steps; nothing is left paused"
    };
    Ok(TaskReport::new(
        TASK,
        Outcome::Stopped,
        format!("stopped by a signal after {relocated} chunk(s): {what}"),
    )
    .figure("relocated_chunks", relocated as f64)
    .figure("left_paused", if keep { 1 } else { 0 }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use btrfs_kit::balance::{AddressRange, ChunkFilters, LimitFilter, UsageFilter};
    use btrfs_kit::Profile;

    fn group(logical: u64, used: u64) -> BlockGroup {
        BlockGroup {
            logical,
            length: ByteSize(1000),
            used: ByteSize(used),
            kind: BlockGroupKind::Data,
            profile: Profile::Single,
        }
    }

    #[test]
    fn one_chunk_by_address_several_by_the_smallest_usage_that_selects_them() {
        let one = request(&[group(4096, 10)]);
        let d = one.data.unwrap();
        assert_eq!(
            d.vrange,
            Some(AddressRange {
                start: 4096,
                end: 5096
            })
        );
        assert_eq!(d.limit, Some(LimitFilter::AtMost(1)));
        let batch = [group(0, 0), group(1000, 123), group(2000, 299)];
        let d = request(&batch).data.unwrap();
        assert_eq!(d.usage, Some(UsageFilter::Below(30)));
        assert_eq!(d.limit, Some(LimitFilter::AtMost(3)));
        // Every chunk of the batch passes the kernel's test, the next fuller one does not.
        assert!(batch.iter().all(|g| d.selects(g) != Some(false)));
        let usage_only = ChunkFilters::usage_below(30);
        assert_eq!(usage_only.selects(&group(0, 300)), Some(false));
        assert!(batch.iter().all(|g| usage_only.selects(g) == Some(true)));
    }
}
