//! `maintain`: one run of the upkeep policy, made to be started by a timer. Each task judges
//! from measurements whether it is due and does as little as it can:
//!
//! | task | when | what |
//! |---|---|---|
//! | `grow` | data use ≥ `grow_threshold` (80 %), the LV below `grow_max`, free extents in the VG | `lvextend` by `grow_step` (10 %, at least 1 GiB), then the filesystem online (`resize max`); never shrinks |
//! | `balance` | unallocated < `unallocated_target` and some data chunk below `balance_usage_max` | relocates the least-used data chunks, a few per call (`usage`+`limit`, or `vrange` for one), until the target is reached or nothing qualifies; after ENOSPC the next step is smaller |
//! | `scrub` | the last completed scrub is older than `scrub_interval_days` (30) | scrubs, or resumes a cancelled or interrupted scrub |
//! | `trim` | the last trim is older than `trim_interval_days` (7) | `FITRIM` |
//! | `defrag` | only with `defrag = "dry-run"` | reports what a defragmentation would rewrite and unshare |
//!
//! A run holds one advisory lock per filesystem ([`lock`]); a balance or another exclusive
//! operation that someone else started is left alone. SIGINT/SIGTERM stop the run at the next
//! clean point: a running balance is paused and then cancelled (kept paused with
//! `keep_paused`), a scrub is cancelled and resumed by the next run. Every step is one line on
//! stdout ([`log`]), the last run of each task is kept in a state file ([`state`]).
//!
//! Exit codes: see [`EXIT_CODES`].

mod balance;
pub mod config;
mod grow;
pub mod lock;
pub mod log;
mod scrub;
pub mod state;
mod tasks;
pub mod time;

pub use config::{Amount, DefragMode, MaintainConfig, MaintainConfigError};
pub use lock::{LockError, MaintainLock};
pub use log::{Log, LogPrefix, Priority};
pub use state::{MaintainState, StateError, TaskRecord};

use btrfs_kit::Filesystem;
use opskit::Interrupts;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use uuid::Uuid;

/// The exit codes of `maintain`.
pub const EXIT_CODES: &str = "maintain: 0 ok (every task done or not due), 1 something needs a human (the LV cannot grow: \
at its maximum or the VG is full; a balance hit ENOSPC and the unallocated target is not reached; a scrub found errors; \
someone else's balance is paused), 2 a task failed (the message says which and why; the other tasks ran), \
3 bad command line or configuration, 4 another run holds the lock (nothing done; --wait waits instead), \
5 stopped by SIGINT/SIGTERM part-way (nothing left paused unless keep_paused; the next run continues).";

/// Exit code: something needs a human.
pub const EXIT_NEEDS_HUMAN: u8 = 1;
/// Exit code: a task failed.
pub const EXIT_TASK_FAILED: u8 = 2;
/// Exit code: another run holds the lock.
pub const EXIT_LOCKED: u8 = 4;
/// Exit code: stopped by a signal.
pub const EXIT_STOPPED: u8 = 5;

/// A task of the upkeep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Task {
    /// Grow the LV and the filesystem.
    Grow,
    /// Return nearly empty chunks to the unallocated pool.
    Balance,
    /// Verify checksums, repair from good copies.
    Scrub,
    /// Discard unused space.
    Trim,
    /// Report what a defragmentation would do (dry run).
    Defrag,
}

impl Task {
    /// Every task, in the order a run does them: grow first (room for the balance), scrub
    /// after the balance (it verifies what moved), trim after both.
    pub const ALL: [Task; 5] = [
        Task::Grow,
        Task::Balance,
        Task::Scrub,
        Task::Trim,
        Task::Defrag,
    ];

    /// The lowercase name (state file, metrics, output).
    pub fn name(self) -> &'static str {
        match self {
            Task::Grow => "grow",
            Task::Balance => "balance",
            Task::Scrub => "scrub",
            Task::Trim => "trim",
            Task::Defrag => "defrag",
        }
    }
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It did its work.
    Done,
    /// It was not due (or is switched off): nothing done.
    NotDue,
    /// It was due but left alone (someone else's operation runs, the device cannot).
    Skipped,
    /// It could not do what is needed: a human should look.
    NeedsHuman,
    /// It failed.
    Failed,
    /// A signal stopped it; the next run continues.
    Stopped,
}

impl Outcome {
    /// Every outcome, for metrics.
    pub const ALL: [Outcome; 6] = [
        Outcome::Done,
        Outcome::NotDue,
        Outcome::Skipped,
        Outcome::NeedsHuman,
        Outcome::Failed,
        Outcome::Stopped,
    ];

    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::NotDue => "not-due",
            Outcome::Skipped => "skipped",
            Outcome::NeedsHuman => "needs-human",
            Outcome::Failed => "failed",
            Outcome::Stopped => "stopped",
        }
    }

    fn priority(self) -> Priority {
        match self {
            Outcome::Done => Priority::Notice,
            Outcome::NotDue | Outcome::Skipped => Priority::Info,
            Outcome::NeedsHuman => Priority::Warning,
            Outcome::Failed => Priority::Err,
            Outcome::Stopped => Priority::Notice,
        }
    }
}

/// What one task did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskReport {
    /// The task.
    pub task: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// What it did or why not, in one line.
    pub summary: String,
    /// Its figures, e.g. `relocated_chunks`, `unallocated_bytes`.
    pub figures: BTreeMap<String, f64>,
}

impl TaskReport {
    pub(crate) fn new(task: Task, outcome: Outcome, summary: impl Into<String>) -> Self {
        TaskReport {
            task: task.name(),
            outcome,
            summary: summary.into(),
            figures: BTreeMap::new(),
        }
    }

    pub(crate) fn figure(mut self, name: &str, value: impl Into<f64>) -> Self {
        self.figures.insert(name.into(), value.into());
        self
    }
}

/// What a whole run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// The filesystem's mount path as given.
    pub path: PathBuf,
    /// Its fsid.
    pub fsid: Uuid,
    /// When the run started (Unix seconds).
    pub started: u64,
    /// The tasks, in order.
    pub tasks: Vec<TaskReport>,
    /// Whether a signal stopped the run.
    pub stopped: bool,
}

impl RunReport {
    /// The exit code (see [`EXIT_CODES`]).
    pub fn exit_code(&self) -> u8 {
        let has = |o: Outcome| self.tasks.iter().any(|t| t.outcome == o);
        if has(Outcome::Failed) {
            EXIT_TASK_FAILED
        } else if self.stopped || has(Outcome::Stopped) {
            EXIT_STOPPED
        } else if has(Outcome::NeedsHuman) {
            EXIT_NEEDS_HUMAN
        } else {
            0
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// A path on the filesystem (its mount point).
    pub path: PathBuf,
    /// The policy.
    pub config: MaintainConfig,
    /// btrfs-kit's scrub state directory (shared with `doctor`).
    pub scrub_state_dir: PathBuf,
    /// Confine LVM to these devices (empty: every device).
    pub lvm_devices: Vec<PathBuf>,
    /// The tasks to consider (each still judged due or not).
    pub tasks: Vec<Task>,
    /// Wait for another run's lock instead of exiting.
    pub wait: bool,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum MaintainError {
    /// The path is not a btrfs filesystem we can open.
    #[error("{0}")]
    Open(btrfs_kit::Error),
    /// Another run holds the lock, or it could not be taken.
    #[error("{0}")]
    Lock(#[from] LockError),
    /// The state file could not be read.
    #[error("{0}")]
    State(#[from] StateError),
    /// A signal came while waiting for the lock.
    #[error("stopped by a signal while waiting for the lock")]
    Stopped,
}

impl MaintainError {
    /// The exit code (see [`EXIT_CODES`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            MaintainError::Lock(LockError::Held { .. }) => EXIT_LOCKED,
            MaintainError::Stopped => EXIT_STOPPED,
            _ => EXIT_TASK_FAILED,
        }
    }
}

/// What every task sees.
pub(crate) struct Ctx<'a> {
    pub fs: &'a Filesystem,
    pub fsid: Uuid,
    pub opts: &'a Options,
    pub cfg: &'a MaintainConfig,
    pub log: &'a Log,
    pub state: &'a MaintainState,
    pub interrupts: Option<Interrupts>,
    pub now: u64,
}

impl Ctx<'_> {
    /// Whether a signal asked the run to stop.
    pub fn stopped(&self) -> bool {
        self.interrupts.as_ref().is_some_and(|i| i.count() > 0)
    }

    /// One step line of `task`.
    pub fn step(&self, priority: Priority, task: Task, message: &str) {
        self.log.step(priority, task.name(), message);
    }

    /// Whether `days` have passed since the task last did its work (always with no record;
    /// never with 0 days).
    pub fn due_after_days(&self, task: Task, days: u64) -> Option<bool> {
        if days == 0 {
            return None;
        }
        let last = self.state.task(task.name()).and_then(|r| r.last_done);
        Some(last.is_none_or(|t| self.now.saturating_sub(t) >= days * 86_400))
    }
}

/// The fsid `BTRFS_IOC_FS_INFO` reports for `fs`.
pub fn fsid(fs: &Filesystem) -> Result<Uuid, btrfs_kit::Error> {
    Ok(fs.info()?.fsid)
}

/// Runs the upkeep once: takes the lock, runs each due task, records them, returns what was
/// done. Prints each step to `log` as it goes.
pub fn run(opts: &Options, log: &Log) -> Result<RunReport, MaintainError> {
    let interrupts = Interrupts::install().ok();
    let fs = Filesystem::open(&opts.path).map_err(MaintainError::Open)?;
    let fsid = fsid(&fs).map_err(MaintainError::Open)?;
    let cfg = &opts.config;
    let _lock = if opts.wait {
        let mut stop = |poll: Duration| match &interrupts {
            Some(i) => i.wait_beyond(0, poll) > 0,
            None => {
                std::thread::sleep(poll);
                false
            }
        };
        MaintainLock::take_waiting(
            &cfg.lock_dir,
            fsid,
            Duration::from_millis(200),
            &mut stop,
            |held| {
                log.run_line(
                    Priority::Info,
                    &format!("waiting: {held}"),
                    serde_json::json!({}),
                )
            },
        )
        .map_err(|e| {
            if interrupts.as_ref().is_some_and(|i| i.count() > 0) {
                MaintainError::Stopped
            } else {
                e.into()
            }
        })?
    } else {
        MaintainLock::try_take(&cfg.lock_dir, fsid)?
    };
    let mut state = MaintainState::load(&cfg.state_dir, fsid)?;
    let started = time::now();
    log.run_line(
        Priority::Info,
        &format!(
            "maintain {} (fsid {fsid}): tasks {}",
            opts.path.display(),
            opts.tasks
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        serde_json::json!({ "path": opts.path, "fsid": fsid }),
    );
    let mut reports = Vec::new();
    let mut stopped = false;
    for task in Task::ALL.into_iter().filter(|t| opts.tasks.contains(t)) {
        let ctx = Ctx {
            fs: &fs,
            fsid,
            opts,
            cfg,
            log,
            state: &state,
            interrupts: interrupts.clone(),
            now: time::now(),
        };
        if ctx.stopped() {
            stopped = true;
            break;
        }
        let report = match task {
            Task::Grow => grow::run(&ctx),
            Task::Balance => balance::run(&ctx),
            Task::Scrub => scrub::run(&ctx),
            Task::Trim => tasks::trim(&ctx),
            Task::Defrag => tasks::defrag(&ctx),
        };
        log.task_end(
            report.outcome.priority(),
            report.task,
            report.outcome.name(),
            &report.summary,
            &report.figures,
        );
        let previous = state.task(task.name()).and_then(|r| r.last_done);
        let did_work = matches!(report.outcome, Outcome::Done)
            || (report.outcome == Outcome::Skipped && task == Task::Trim);
        state.tasks.insert(
            task.name().into(),
            TaskRecord {
                time: time::now(),
                outcome: report.outcome,
                summary: report.summary.clone(),
                figures: report.figures.clone(),
                last_done: if did_work {
                    Some(time::now())
                } else {
                    previous
                },
            },
        );
        reports.push(report);
    }
    let mut report = RunReport {
        path: opts.path.clone(),
        fsid,
        started,
        tasks: reports,
        stopped,
    };
    state.fsid = Some(fsid);
    state.last_run = Some((time::now(), report.exit_code()));
    if let Err(e) = state.save(&cfg.state_dir, fsid) {
        report.tasks.push(TaskReport::new(
            Task::Defrag,
            Outcome::Failed,
            format!("the run's record was not saved: {e}"),
        ));
        report.tasks.last_mut().expect("pushed").task = "state";
    }
    Ok(report)
}
