//! The scrub state file's format: one JSON document,
//! `{"format": "btrfs-kit scrub state", "version": 2, "fsid": ..., "last_completed": ...,
//! "unfinished": ...}`. Times are Unix seconds and nanoseconds; counters are named as in
//! btrfs-progs' scrub status file (`csum_errors`, `last_physical`...); unknown fields are
//! ignored, so a later version may add some.

use super::progress::ScrubProgress;
use super::state::{DeviceRecord, RunStatus, ScrubState, ScrubSummary, UnfinishedScrub};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// The `format` field: says what the file is.
const FORMAT: &str = "btrfs-kit scrub state";
/// The `version` field (1 was the line-based text of [`super::state_v1`]).
const VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    version: u32,
    fsid: String,
    last_completed: Option<Summary>,
    unfinished: Option<Unfinished>,
}

#[derive(Serialize, Deserialize)]
struct Time {
    secs: u64,
    nanos: u32,
}

#[derive(Serialize, Deserialize)]
struct Summary {
    started: Time,
    finished: Time,
    verdict: String,
    read_only: bool,
    devices: u64,
    totals: BTreeMap<String, u64>,
    #[serde(default)]
    damaged_files: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum Status {
    Running { pid: u32, boot_id: String },
    Cancelled,
    Failed,
}

#[derive(Serialize, Deserialize)]
struct Unfinished {
    started: Time,
    updated: Time,
    read_only: bool,
    #[serde(flatten)]
    status: Status,
    devices: Vec<Device>,
}

#[derive(Serialize, Deserialize)]
struct Device {
    devid: u64,
    start: u64,
    end: u64,
    finished: bool,
    progress: BTreeMap<String, u64>,
}

impl From<SystemTime> for Time {
    fn from(t: SystemTime) -> Self {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        Time {
            secs: d.as_secs(),
            nanos: d.subsec_nanos(),
        }
    }
}

impl Time {
    fn time(&self) -> Result<SystemTime, String> {
        if self.nanos >= 1_000_000_000 {
            return Err(format!("{} nanoseconds is not a time", self.nanos));
        }
        Ok(UNIX_EPOCH + Duration::new(self.secs, self.nanos))
    }
}

fn counters(p: &ScrubProgress) -> BTreeMap<String, u64> {
    p.named().iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

fn progress(named: &BTreeMap<String, u64>) -> ScrubProgress {
    let mut p = ScrubProgress::default();
    for (k, &v) in named {
        p.set_named(k, v);
    }
    p
}

/// The file's text for `state`.
pub(crate) fn to_json(state: &ScrubState) -> String {
    let file = File {
        format: FORMAT.into(),
        version: VERSION,
        fsid: state.fsid.to_string(),
        last_completed: state.last_completed.as_ref().map(|s| Summary {
            started: s.started.into(),
            finished: s.finished.into(),
            verdict: s.verdict.to_string(),
            read_only: s.read_only,
            devices: s.devices,
            totals: counters(&s.totals),
            damaged_files: s.damaged_files,
        }),
        unfinished: state.unfinished.as_ref().map(|u| Unfinished {
            started: u.started.into(),
            updated: u.updated.into(),
            read_only: u.read_only,
            status: match &u.status {
                RunStatus::Running { pid, boot_id } => Status::Running {
                    pid: *pid,
                    boot_id: boot_id.clone(),
                },
                RunStatus::Cancelled => Status::Cancelled,
                RunStatus::Failed => Status::Failed,
            },
            devices: u
                .devices
                .iter()
                .map(|d| Device {
                    devid: d.devid,
                    start: d.start,
                    end: d.end,
                    finished: d.finished,
                    progress: counters(&d.progress),
                })
                .collect(),
        }),
    };
    let mut text = serde_json::to_string_pretty(&file).expect("plain data serializes");
    text.push('\n');
    text
}

/// Decodes the file's text; the error says what is wrong.
pub(crate) fn from_json(text: &str) -> Result<ScrubState, String> {
    let file: File = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    if file.format != FORMAT {
        return Err("not a btrfs-kit scrub state file".into());
    }
    if file.version != VERSION {
        return Err(format!(
            "state file version {}; this btrfs-kit reads version {VERSION}",
            file.version
        ));
    }
    let last_completed = match file.last_completed {
        None => None,
        Some(s) => Some(ScrubSummary {
            started: s.started.time()?,
            finished: s.finished.time()?,
            verdict: s.verdict.parse()?,
            read_only: s.read_only,
            devices: s.devices,
            totals: progress(&s.totals),
            damaged_files: s.damaged_files,
        }),
    };
    let unfinished = match file.unfinished {
        None => None,
        Some(u) => Some(UnfinishedScrub {
            started: u.started.time()?,
            updated: u.updated.time()?,
            read_only: u.read_only,
            status: match u.status {
                Status::Running { pid, boot_id } => RunStatus::Running { pid, boot_id },
                Status::Cancelled => RunStatus::Cancelled,
                Status::Failed => RunStatus::Failed,
            },
            devices: u
                .devices
                .iter()
                .map(|d| DeviceRecord {
                    devid: d.devid,
                    start: d.start,
                    end: d.end,
                    finished: d.finished,
                    progress: progress(&d.progress),
                })
                .collect(),
        }),
    };
    Ok(ScrubState {
        fsid: Uuid::parse_str(&file.fsid).map_err(|e| format!("fsid: {e}"))?,
        last_completed,
        unfinished,
    })
}
