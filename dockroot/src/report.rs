//! The result model every report shares: a [`Check`] has a [`Status`], the figures it judged,
//! one line saying what it found and one saying what to do. `doctor` prints them, `check`
//! turns the space ones into a monitoring-plugin line, and the metrics exporter (to come) turns
//! each into `dockroot_check_status{check="..."}` and its figures into gauges.

use serde::Serialize;
use std::fmt;

/// A check's verdict, ordered from best to worst for reporting (unknown sorts between warning
/// and critical, as monitoring systems rank it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// Needs attention soon.
    Warning,
    /// Needs attention now.
    Critical,
    /// Could not be judged (the reason says why).
    Unknown,
}

impl Status {
    /// The monitoring-plugin exit code: 0 ok, 1 warning, 2 critical, 3 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    /// How bad it is, for picking the worst: ok < warning < unknown < critical.
    pub fn severity(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Unknown => 2,
            Status::Critical => 3,
        }
    }

    /// The upper-case name monitoring systems print: `OK`, `WARNING`, `CRITICAL`, `UNKNOWN`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }

    /// The worst of several statuses (ok when there are none).
    pub fn worst(statuses: impl IntoIterator<Item = Status>) -> Status {
        statuses
            .into_iter()
            .max_by_key(|s| s.severity())
            .unwrap_or(Status::Ok)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Unknown => "unknown",
        })
    }
}

/// The unit of a [`Figure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Bytes (`B` in performance data).
    Bytes,
    /// A percentage, 0–100 (`%`).
    Percent,
    /// A plain count.
    Count,
}

impl Unit {
    /// The unit of measurement in monitoring-plugin performance data.
    pub fn uom(self) -> &'static str {
        match self {
            Unit::Bytes => "B",
            Unit::Percent => "%",
            Unit::Count => "",
        }
    }
}

/// Which side of a threshold is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Values above the threshold alert (used space).
    Above,
    /// Values below the threshold alert (unallocated space).
    Below,
}

/// One measured value a check judged, with the thresholds it was judged against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// A short label, stable across releases (performance data and metrics use it), e.g. `used`.
    pub label: &'static str,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: Unit,
    /// Warning threshold, if the figure has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn: Option<f64>,
    /// Critical threshold, if the figure has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crit: Option<f64>,
    /// Which side of the thresholds is bad.
    pub direction: Direction,
    /// The lowest possible value, if known (0 for sizes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The highest possible value, if known (the filesystem's size for used bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Figure {
    /// A figure with no thresholds and no bounds.
    pub fn new(label: &'static str, value: f64, unit: Unit) -> Self {
        Figure {
            label,
            value,
            unit,
            warn: None,
            crit: None,
            direction: Direction::Above,
            min: None,
            max: None,
        }
    }

    /// A byte figure in `0..=max`.
    pub fn bytes(label: &'static str, value: u64, max: Option<u64>) -> Self {
        Figure {
            min: Some(0.0),
            max: max.map(|m| m as f64),
            ..Figure::new(label, value as f64, Unit::Bytes)
        }
    }

    /// Sets thresholds that alert above them.
    pub fn alert_above(mut self, warn: f64, crit: f64) -> Self {
        (self.warn, self.crit, self.direction) = (Some(warn), Some(crit), Direction::Above);
        self
    }

    /// Sets thresholds that alert below them.
    pub fn alert_below(mut self, warn: f64, crit: f64) -> Self {
        (self.warn, self.crit, self.direction) = (Some(warn), Some(crit), Direction::Below);
        self
    }
}

/// The verdict of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// A stable identifier, e.g. `space.used` (JSON, metrics and `--only` use it).
    pub id: &'static str,
    /// The verdict.
    pub status: Status,
    /// What was found, in one line, with the figure in words.
    pub summary: String,
    /// What to do, in one line (empty when nothing is to be done).
    pub action: String,
    /// The measured values.
    pub figures: Vec<Figure>,
    /// Every object the check found at fault, by name (e.g. each orphaned layer subvolume),
    /// complete: the summary names only a few. Left out of JSON when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
}

impl Check {
    /// A check with a verdict and a summary; no action, no figures.
    pub fn new(id: &'static str, status: Status, summary: impl Into<String>) -> Self {
        Check {
            id,
            status,
            summary: summary.into(),
            action: String::new(),
            figures: Vec::new(),
            items: Vec::new(),
        }
    }

    /// An ok check.
    pub fn ok(id: &'static str, summary: impl Into<String>) -> Self {
        Check::new(id, Status::Ok, summary)
    }

    /// A check that could not be judged, with the reason.
    pub fn unknown(id: &'static str, reason: impl Into<String>) -> Self {
        Check::new(id, Status::Unknown, reason)
    }

    /// Sets what to do.
    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.action = action.into();
        self
    }

    /// Adds a figure.
    pub fn figure(mut self, figure: Figure) -> Self {
        self.figures.push(figure);
        self
    }

    /// Sets the objects found at fault (see [`items`](Check::items)).
    pub fn items(mut self, items: impl IntoIterator<Item = String>) -> Self {
        self.items = items.into_iter().collect();
        self
    }
}

/// A set of checks on one data root.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The data root examined.
    pub path: std::path::PathBuf,
    /// The worst status of all checks.
    pub status: Status,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// A report over `checks`; its status is the worst of theirs.
    pub fn new(path: impl Into<std::path::PathBuf>, checks: Vec<Check>) -> Self {
        Report {
            path: path.into(),
            status: Status::worst(checks.iter().map(|c| c.status)),
            checks,
        }
    }

    /// The check with `id`, if it ran.
    pub fn get(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// Judges `value` against thresholds: above (or below) `crit` is critical, then `warn`.
pub fn judge(value: f64, warn: f64, crit: f64, direction: Direction) -> Status {
    let past = |t: f64| match direction {
        Direction::Above => value >= t,
        Direction::Below => value < t,
    };
    if past(crit) {
        Status::Critical
    } else if past(warn) {
        Status::Warning
    } else {
        Status::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_status_ranks_critical_over_unknown_over_warning() {
        use Status::*;
        assert_eq!(Status::worst([Ok, Warning]), Warning);
        assert_eq!(Status::worst([Ok, Unknown, Warning]), Unknown);
        assert_eq!(Status::worst([Critical, Unknown]), Critical);
        assert_eq!(Status::worst([]), Ok);
        assert_eq!(
            [Ok, Warning, Critical, Unknown].map(Status::exit_code),
            [0, 1, 2, 3]
        );
    }

    #[test]
    fn thresholds_in_both_directions() {
        assert_eq!(judge(79.9, 80.0, 90.0, Direction::Above), Status::Ok);
        assert_eq!(judge(80.0, 80.0, 90.0, Direction::Above), Status::Warning);
        assert_eq!(judge(95.0, 80.0, 90.0, Direction::Above), Status::Critical);
        assert_eq!(judge(5.0, 2.0, 1.0, Direction::Below), Status::Ok);
        assert_eq!(judge(1.5, 2.0, 1.0, Direction::Below), Status::Warning);
        assert_eq!(judge(0.5, 2.0, 1.0, Direction::Below), Status::Critical);
    }
}
