//! Running balances one after another (a [`DailyPolicy`](super::DailyPolicy), or a single
//! request), with what each step did: skipped steps no chunk qualifies for, unallocated space
//! before and after, steps that hit ENOSPC (reported, and the sequence goes on), and a stop at
//! the first step that was paused or cancelled.
//!
//! ENOSPC is a step's outcome, not an error of the sequence: on a full filesystem a relocation
//! may find no room, which harms nothing (the chunks stay where they were), and the later steps
//! are the ones most needed then (btrfsmaintenance carries on after such a step too).
//!
//! How a step runs (blocking, in the background with a progress bar, reacting to signals) is
//! the caller's: give a [`StepRunner`].

use super::request::Balance;
use super::run::BalanceOutcome;
use crate::error::{ErrorKind, Result};
use crate::fs::Filesystem;
use crate::size::ByteSize;

/// One step of a [`Sequence`].
// A sequence holds a handful of steps: boxing the request would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Start this balance.
    Start(Balance),
    /// Resume the paused balance.
    Resume,
}

impl std::fmt::Display for Step {
    /// The request in btrfs-progs' syntax (`-dusage=5`), or `--resume`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Start(request) => write!(f, "{request}"),
            Step::Resume => f.write_str("--resume"),
        }
    }
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum StepState {
    /// The kernel processed every selected chunk.
    Completed,
    /// No chunk qualified (judged from the block groups): the kernel was not asked.
    Skipped,
    /// Paused on request: the balance waits in the kernel for a resume.
    Paused,
    /// Cancelled on request.
    Cancelled,
    /// The kernel found no room to relocate some selected chunk (ENOSPC): the chunks it could
    /// move are moved, the others stay where they were, nothing is harmed. The kernel returns
    /// no counters with ENOSPC, so the step's `considered` and `relocated` are 0; its
    /// unallocated space before and after show what it achieved.
    #[cfg_attr(feature = "serde", serde(rename = "enospc"))]
    NoSpace,
}

impl StepState {
    /// The name, as in JSON: `completed`, `skipped`, `paused`, `cancelled`, `enospc`.
    pub fn name(self) -> &'static str {
        match self {
            StepState::Completed => "completed",
            StepState::Skipped => "skipped",
            StepState::Paused => "paused",
            StepState::Cancelled => "cancelled",
            StepState::NoSpace => "enospc",
        }
    }
}

impl std::fmt::Display for StepState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct StepReport {
    /// The request in btrfs-progs' syntax, or `--resume`.
    pub request: String,
    /// How it ended.
    pub state: StepState,
    /// Chunks the kernel looked at.
    pub considered: u64,
    /// Chunks it relocated.
    pub relocated: u64,
    /// Unallocated bytes before the step.
    #[cfg_attr(feature = "serde", serde(serialize_with = "bytes"))]
    pub unallocated_before: ByteSize,
    /// Unallocated bytes after it.
    #[cfg_attr(feature = "serde", serde(serialize_with = "bytes"))]
    pub unallocated_after: ByteSize,
}

#[cfg(feature = "serde")]
fn bytes<S: serde::Serializer>(size: &ByteSize, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(size.bytes())
}

/// How a whole sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum SequenceState {
    /// Every step completed or was skipped.
    Completed,
    /// Every step ran, and at least one hit ENOSPC ([`StepState::NoSpace`]); the others
    /// completed or were skipped. Free space or grow the filesystem, then run it again.
    #[cfg_attr(feature = "serde", serde(rename = "enospc"))]
    NoSpace,
    /// A step was paused; the balance waits in the kernel (resume it, or cancel it).
    Paused,
    /// A step was cancelled.
    Cancelled,
    /// The runner stopped the sequence between two steps (e.g. on a signal); nothing is
    /// left paused, and running the sequence again continues the work.
    Stopped,
}

/// What a sequence did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SequenceReport {
    /// How it ended.
    pub state: SequenceState,
    /// The steps that ran or were skipped, in order.
    pub steps: Vec<StepReport>,
}

impl SequenceReport {
    /// Chunks considered by all steps.
    pub fn considered(&self) -> u64 {
        self.steps.iter().map(|s| s.considered).sum()
    }

    /// Chunks relocated by all steps.
    pub fn relocated(&self) -> u64 {
        self.steps.iter().map(|s| s.relocated).sum()
    }
}

/// Runs the steps of a [`Sequence`] and hears what they did.
pub trait StepRunner {
    /// Asked before each step: `false` stops the sequence there
    /// ([`SequenceState::Stopped`]). The default goes on.
    fn proceed(&mut self) -> bool {
        true
    }

    /// Runs one step; `label` is its request in btrfs-progs' syntax. The default blocks in
    /// the kernel until the balance ends.
    fn run(&mut self, fs: &Filesystem, step: &Step, label: &str) -> Result<BalanceOutcome> {
        let _ = label;
        match step {
            Step::Start(request) => fs.balance(request),
            Step::Resume => fs.balance_resume(),
        }
    }

    /// Told after each step (`index` from 0 of `total`).
    fn finished(&mut self, index: usize, total: usize, report: &StepReport) {
        let _ = (index, total, report);
    }
}

/// Runs every step blocking, with no reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Blocking;

impl StepRunner for Blocking {}

/// Balances to run in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    /// The steps.
    pub steps: Vec<Step>,
    /// Skip a step no chunk qualifies for, judged from the block groups
    /// ([`Filesystem::balance_candidates`]): every balance call costs the kernel two
    /// transaction commits even when it relocates nothing.
    pub skip_unneeded: bool,
}

impl Sequence {
    /// A sequence of one step, never skipped.
    pub fn single(step: Step) -> Self {
        Sequence {
            steps: vec![step],
            skip_unneeded: false,
        }
    }

    /// Runs the steps in order through `runner` and stops at the first one that is paused or
    /// cancelled, or when the runner says so. A step whose balance fails with ENOSPC
    /// ([`ErrorKind::NoSpace`](crate::ErrorKind::NoSpace)) is reported as [`StepState::NoSpace`] and
    /// the sequence goes on. Reads the unallocated space once per step (each step's "after" is
    /// the next one's "before"). Needs CAP_SYS_ADMIN. Any other error from a step ends the
    /// sequence with that error.
    pub fn run(&self, fs: &Filesystem, runner: &mut dyn StepRunner) -> Result<SequenceReport> {
        let total = self.steps.len();
        let mut steps = Vec::with_capacity(total);
        let mut unallocated = fs.usage()?.unallocated();
        for (index, step) in self.steps.iter().enumerate() {
            if !runner.proceed() {
                return Ok(SequenceReport {
                    state: SequenceState::Stopped,
                    steps,
                });
            }
            let label = step.to_string();
            let skip = match step {
                Step::Start(request) if self.skip_unneeded => {
                    fs.balance_candidates(request)? == Some(0)
                }
                _ => false,
            };
            let before = unallocated;
            let (state, considered, relocated) = if skip {
                (StepState::Skipped, 0, 0)
            } else {
                let outcome = match runner.run(fs, step, &label) {
                    Err(e) if matches!(e.kind(), ErrorKind::NoSpace) => None,
                    result => Some(result?),
                };
                unallocated = fs.usage()?.unallocated();
                match outcome {
                    None => (StepState::NoSpace, 0, 0),
                    Some(outcome) => {
                        let state = match outcome {
                            BalanceOutcome::Completed { .. } => StepState::Completed,
                            BalanceOutcome::Paused(_) => StepState::Paused,
                            BalanceOutcome::Cancelled(_) => StepState::Cancelled,
                        };
                        (state, outcome.considered(), outcome.relocated())
                    }
                }
            };
            let report = StepReport {
                request: label,
                state,
                considered,
                relocated,
                unallocated_before: before,
                unallocated_after: unallocated,
            };
            runner.finished(index, total, &report);
            steps.push(report);
            let end = match state {
                StepState::Paused => Some(SequenceState::Paused),
                StepState::Cancelled => Some(SequenceState::Cancelled),
                StepState::Completed | StepState::Skipped | StepState::NoSpace => None,
            };
            if let Some(state) = end {
                return Ok(SequenceReport { state, steps });
            }
        }
        let state = if steps.iter().any(|s| s.state == StepState::NoSpace) {
            SequenceState::NoSpace
        } else {
            SequenceState::Completed
        };
        Ok(SequenceReport { state, steps })
    }
}
