//! How a scrub ended.

use super::damage::DamageReport;
use super::progress::ScrubProgress;
use rustix::io::Errno;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use uuid::Uuid;

/// The verdict of a scrub, from best to worst news (the worst that applies wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum ScrubVerdict {
    /// Every device was scrubbed; no error found.
    Clean,
    /// Every device was scrubbed; every error found was repaired from a good copy.
    Corrected,
    /// Cancelled (on request, or the scrub was interrupted) before every device was done; no
    /// uncorrectable error found so far. Resume it.
    Cancelled,
    /// A device's scrub stopped with an error (see the devices); no uncorrectable error found.
    Failed,
    /// Uncorrectable errors: data or metadata without a good copy (also when the scrub was
    /// then cancelled or failed).
    Uncorrectable,
}

impl ScrubVerdict {
    /// The name used in state files and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ScrubVerdict::Clean => "clean",
            ScrubVerdict::Corrected => "corrected",
            ScrubVerdict::Cancelled => "cancelled",
            ScrubVerdict::Failed => "failed",
            ScrubVerdict::Uncorrectable => "uncorrectable",
        }
    }
}

impl fmt::Display for ScrubVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ScrubVerdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            ScrubVerdict::Clean,
            ScrubVerdict::Corrected,
            ScrubVerdict::Cancelled,
            ScrubVerdict::Failed,
            ScrubVerdict::Uncorrectable,
        ]
        .into_iter()
        .find(|v| v.name() == s)
        .ok_or_else(|| format!("unknown scrub verdict {s:?}"))
    }
}

/// How one device's scrub ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "state", rename_all = "lowercase")
)]
pub enum DeviceScrubState {
    /// Scrubbed to the end of the range.
    Finished,
    /// Finished in an earlier run of a resumed scrub; not scrubbed again.
    Skipped,
    /// Cancelled; resume continues from `progress.last_physical`.
    Cancelled,
    /// The kernel stopped it with an error.
    Failed {
        /// The errno.
        #[cfg_attr(feature = "serde", serde(serialize_with = "errno_name"))]
        errno: Errno,
        /// What it means and what to do.
        message: String,
    },
}

#[cfg(feature = "serde")]
fn errno_name<S: serde::Serializer>(e: &Errno, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(crate::errno_text::name(*e))
}

impl DeviceScrubState {
    /// Whether the device needs no more scrubbing (finished now or before).
    pub fn is_done(&self) -> bool {
        matches!(self, DeviceScrubState::Finished | DeviceScrubState::Skipped)
    }
}

/// One device of a scrub.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DeviceScrub {
    /// The device id.
    pub devid: u64,
    /// Its path.
    pub path: PathBuf,
    /// How it ended.
    pub state: DeviceScrubState,
    /// Where this run started (physical byte offset; above 0 for a resumed device).
    pub started_at: u64,
    /// This run's counters.
    pub this_run: ScrubProgress,
    /// The counters of every run of this scrub so far (equal to `this_run` unless resumed).
    pub progress: ScrubProgress,
}

/// Where a scrub started from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "kind", rename_all = "kebab-case")
)]
pub enum ResumeOrigin {
    /// A new scrub, from the start of each device.
    Fresh,
    /// Resumed a scrub started at `started`, from the positions recorded for each device.
    Resumed {
        /// When the resumed scrub first started.
        started: SystemTime,
    },
    /// A resume was asked for but nothing was recorded to resume, so it started from the
    /// beginning of each device.
    NothingToResume {
        /// Why: no state file, or the last scrub had completed.
        reason: String,
    },
}

/// The result of a scrub run.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ScrubOutcome {
    /// The verdict.
    pub verdict: ScrubVerdict,
    /// The filesystem.
    pub fsid: Uuid,
    /// Whether it only read (no repairs).
    pub read_only: bool,
    /// When the scrub started (for a resumed one: its first run).
    pub started: SystemTime,
    /// When this run ended.
    pub finished: SystemTime,
    /// How long this run took.
    pub duration: Duration,
    /// Per device.
    pub devices: Vec<DeviceScrub>,
    /// Counters over all devices and runs.
    pub total: ScrubProgress,
    /// Where it started from.
    pub origin: ResumeOrigin,
    /// Where the uncorrectable errors are and which files they hit; `None` when there were
    /// none or naming was not asked for.
    pub damage: Option<DamageReport>,
    /// The state file it was recorded in, if any.
    pub state_file: Option<PathBuf>,
}

impl ScrubOutcome {
    /// Whether every device was scrubbed to the end.
    pub fn completed(&self) -> bool {
        self.devices.iter().all(|d| d.state.is_done())
    }

    /// Whether [`Filesystem::scrub_resume`](crate::Filesystem::scrub_resume) would continue
    /// it (some device was cancelled or failed, and its state was recorded).
    pub fn resumable(&self) -> bool {
        self.state_file.is_some() && !self.completed()
    }

    /// Counters of this run only, over all devices.
    pub fn this_run(&self) -> ScrubProgress {
        ScrubProgress::sum(self.devices.iter().map(|d| &d.this_run))
    }

    /// The verdict for these device results and counters.
    pub(crate) fn verdict_of(devices: &[DeviceScrub], total: &ScrubProgress) -> ScrubVerdict {
        if total.uncorrectable_errors > 0 {
            ScrubVerdict::Uncorrectable
        } else if devices
            .iter()
            .any(|d| matches!(d.state, DeviceScrubState::Failed { .. }))
        {
            ScrubVerdict::Failed
        } else if !devices.iter().all(|d| d.state.is_done()) {
            ScrubVerdict::Cancelled
        } else if total.errors() > 0 || total.corrected_errors > 0 {
            ScrubVerdict::Corrected
        } else {
            ScrubVerdict::Clean
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(state: DeviceScrubState) -> DeviceScrub {
        DeviceScrub {
            devid: 1,
            path: "/dev/x".into(),
            state,
            started_at: 0,
            this_run: ScrubProgress::default(),
            progress: ScrubProgress::default(),
        }
    }

    #[test]
    fn the_worst_news_wins() {
        let clean = ScrubProgress::default();
        let fixed = ScrubProgress {
            csum_errors: 2,
            corrected_errors: 2,
            ..Default::default()
        };
        let lost = ScrubProgress {
            csum_errors: 1,
            uncorrectable_errors: 1,
            ..Default::default()
        };
        let done = [
            dev(DeviceScrubState::Finished),
            dev(DeviceScrubState::Skipped),
        ];
        let cancelled = [
            dev(DeviceScrubState::Finished),
            dev(DeviceScrubState::Cancelled),
        ];
        let failed = [dev(DeviceScrubState::Failed {
            errno: Errno::IO,
            message: "x".into(),
        })];
        assert_eq!(ScrubOutcome::verdict_of(&done, &clean), ScrubVerdict::Clean);
        assert_eq!(
            ScrubOutcome::verdict_of(&done, &fixed),
            ScrubVerdict::Corrected
        );
        assert_eq!(
            ScrubOutcome::verdict_of(&cancelled, &fixed),
            ScrubVerdict::Cancelled
        );
        assert_eq!(
            ScrubOutcome::verdict_of(&failed, &clean),
            ScrubVerdict::Failed
        );
        assert_eq!(
            ScrubOutcome::verdict_of(&cancelled, &lost),
            ScrubVerdict::Uncorrectable
        );
        for v in [ScrubVerdict::Clean, ScrubVerdict::Uncorrectable] {
            assert_eq!(v.name().parse::<ScrubVerdict>(), Ok(v));
        }
    }
}
