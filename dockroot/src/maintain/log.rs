//! What `maintain` prints, one line per step, made for the journal: each line starts with a
//! syslog priority prefix (`<6>` info, `<5>` notice, `<4>` warning, `<3>` error) that journald
//! turns into the entry's priority (`SyslogLevelPrefix=yes`, systemd's default), so
//! `journalctl -p warning -u 'dockroot-maintain@*'` shows what needs a human. With `--json`
//! every line is a JSON object instead (JSON lines), each with `ts` (Unix seconds) and
//! `event`: `run` (start, lock), `step`, `task` (a task's end with its figures) and, last, `end`
//! with the exit code and the whole report.

use crate::outln;
use serde::Serialize;
use std::collections::BTreeMap;

/// Now, in Unix seconds with milliseconds (the `ts` of every JSON line).
fn timestamp() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_millis() as f64) / 1000.0)
        .unwrap_or(0.0)
}

/// A line's syslog priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// A task failed.
    Err,
    /// Something needs a human.
    Warning,
    /// Something changed (a balance relocated chunks, the LV grew).
    Notice,
    /// Progress and what was judged.
    Info,
}

impl Priority {
    /// The syslog number: 3, 4, 5, 6.
    pub fn number(self) -> u8 {
        match self {
            Priority::Err => 3,
            Priority::Warning => 4,
            Priority::Notice => 5,
            Priority::Info => 6,
        }
    }
}

/// When to print the `<N>` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogPrefix {
    /// When stdout goes to the journal (systemd sets `JOURNAL_STREAM`).
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The step-by-step output of one run.
#[derive(Debug, Clone)]
pub struct Log {
    prefix: bool,
    json: bool,
}

impl Log {
    /// A log printing JSON lines (`json`) or text lines with the prefix as `mode` says.
    pub fn new(mode: LogPrefix, json: bool) -> Log {
        let prefix = match mode {
            LogPrefix::Always => true,
            LogPrefix::Never => false,
            LogPrefix::Auto => std::env::var_os("JOURNAL_STREAM").is_some(),
        };
        Log { prefix, json }
    }

    /// Whether lines are JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// One step of `task`.
    pub fn step(&self, priority: Priority, task: &str, message: &str) {
        if self.json {
            let line = serde_json::json!({
                "ts": timestamp(),
                "event": "step",
                "task": task,
                "priority": priority,
                "message": message,
            });
            outln!("{line}");
        } else {
            self.text(priority, &format!("{task}: {message}"));
        }
    }

    /// A task's end, with its figures.
    pub fn task_end(
        &self,
        priority: Priority,
        task: &str,
        outcome: &str,
        summary: &str,
        figures: &BTreeMap<String, f64>,
    ) {
        if self.json {
            let line = serde_json::json!({
                "ts": timestamp(),
                "event": "task",
                "task": task,
                "priority": priority,
                "outcome": outcome,
                "summary": summary,
                "figures": figures,
            });
            outln!("{line}");
        } else {
            self.text(priority, &format!("{task}: {outcome}: {summary}"));
        }
    }

    /// A line of the run itself (start, lock, summary).
    pub fn run_line(&self, priority: Priority, message: &str, extra: serde_json::Value) {
        if self.json {
            let mut line = serde_json::json!({
                "ts": timestamp(),
                "event": "run",
                "priority": priority,
                "message": message,
            });
            if let (Some(obj), serde_json::Value::Object(more)) = (line.as_object_mut(), extra) {
                obj.extend(more);
            }
            outln!("{line}");
        } else {
            self.text(priority, message);
        }
    }

    fn text(&self, priority: Priority, message: &str) {
        if self.prefix {
            outln!("<{}>{message}", priority.number());
        } else {
            outln!("{message}");
        }
    }
}
