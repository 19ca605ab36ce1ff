//! The scrub state file's first format (btrfs-kit 0.1 before JSON): line-based text,
//! `kind key=value ...`, versioned on its first line (`btrfs-kit scrub state 1`); unknown keys
//! are ignored. Only read now: [`ScrubState::load`] takes a file in this format once and
//! rewrites it as JSON.

use super::progress::ScrubProgress;
use super::state::{DeviceRecord, RunStatus, ScrubState, ScrubSummary, UnfinishedScrub};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// The first line's words before the version.
pub(crate) const MAGIC: &str = "btrfs-kit scrub state";
const VERSION: u32 = 1;

#[cfg(test)]
fn time_text(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

fn parse_time(s: &str) -> Option<SystemTime> {
    let (secs, nanos) = s.split_once('.').unwrap_or((s, "0"));
    Some(UNIX_EPOCH + Duration::new(secs.parse().ok()?, nanos.parse().ok()?))
}

#[cfg(test)]
fn counters_text(p: &ScrubProgress) -> String {
    p.named().iter().map(|(k, v)| format!(" {k}={v}")).collect()
}

/// One `kind key=value ...` line.
struct Line<'a> {
    kind: &'a str,
    fields: HashMap<&'a str, &'a str>,
}

impl<'a> Line<'a> {
    fn parse(text: &'a str) -> Line<'a> {
        let mut words = text.split_whitespace();
        let kind = words.next().unwrap_or("");
        let fields = words.filter_map(|w| w.split_once('=')).collect();
        Line { kind, fields }
    }

    fn get(&self, key: &str) -> std::result::Result<&'a str, String> {
        self.fields
            .get(key)
            .copied()
            .ok_or_else(|| format!("{} line without {key}", self.kind))
    }

    fn num(&self, key: &str) -> std::result::Result<u64, String> {
        let v = self.get(key)?;
        v.parse().map_err(|_| format!("{key}={v} is not a number"))
    }

    fn flag(&self, key: &str) -> std::result::Result<bool, String> {
        Ok(self.num(key)? != 0)
    }

    fn time(&self, key: &str) -> std::result::Result<SystemTime, String> {
        let v = self.get(key)?;
        parse_time(v).ok_or_else(|| format!("{key}={v} is not a time"))
    }

    fn counters(&self) -> ScrubProgress {
        let mut p = ScrubProgress::default();
        for (k, v) in &self.fields {
            if let Ok(v) = v.parse() {
                p.set_named(k, v);
            }
        }
        p
    }
}

/// The file's text in this format (what the previous version wrote).
#[cfg(test)]
pub(crate) fn to_text(state: &ScrubState) -> String {
    let this = state;
    let mut out = format!("{MAGIC} {VERSION}\nfsid {}\n", this.fsid);
    if let Some(s) = &this.last_completed {
        out += &format!(
            "last started={} finished={} verdict={} read_only={} devices={} damaged_files={}{}\n",
            time_text(s.started),
            time_text(s.finished),
            s.verdict,
            u8::from(s.read_only),
            s.devices,
            s.damaged_files,
            counters_text(&s.totals)
        );
    }
    if let Some(u) = &this.unfinished {
        let status = match &u.status {
            RunStatus::Running { pid, boot_id } => {
                format!("status=running pid={pid} boot={boot_id}")
            }
            RunStatus::Cancelled => "status=cancelled".into(),
            RunStatus::Failed => "status=failed".into(),
        };
        out += &format!(
            "run started={} updated={} read_only={} {status}\n",
            time_text(u.started),
            time_text(u.updated),
            u8::from(u.read_only)
        );
        for d in &u.devices {
            out += &format!(
                "device devid={} start={} end={} finished={}{}\n",
                d.devid,
                d.start,
                d.end,
                u8::from(d.finished),
                counters_text(&d.progress)
            );
        }
    }
    out
}

/// Decodes the file's text.
pub(crate) fn parse(text: &str) -> std::result::Result<ScrubState, String> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let version = first
        .strip_prefix(MAGIC)
        .and_then(|v| v.trim().parse::<u32>().ok())
        .ok_or("not a btrfs-kit scrub state file")?;
    if version != VERSION {
        return Err(format!(
            "state file version {version}; this btrfs-kit reads version {VERSION}"
        ));
    }
    let mut fsid = None;
    let mut last_completed = None;
    let mut run: Option<UnfinishedScrub> = None;
    let mut devices = Vec::new();
    for text in lines.filter(|l| !l.trim().is_empty()) {
        if let Some(id) = text.strip_prefix("fsid ") {
            fsid = Some(Uuid::parse_str(id.trim()).map_err(|e| format!("fsid: {e}"))?);
            continue;
        }
        let line = Line::parse(text);
        match line.kind {
            "last" => {
                last_completed = Some(ScrubSummary {
                    started: line.time("started")?,
                    finished: line.time("finished")?,
                    verdict: line.get("verdict")?.parse()?,
                    read_only: line.flag("read_only")?,
                    devices: line.num("devices")?,
                    totals: line.counters(),
                    damaged_files: line.num("damaged_files").unwrap_or(0),
                })
            }
            "run" => {
                let status = match line.get("status")? {
                    "running" => RunStatus::Running {
                        pid: line.num("pid")? as u32,
                        boot_id: line.get("boot")?.to_string(),
                    },
                    "cancelled" => RunStatus::Cancelled,
                    "failed" => RunStatus::Failed,
                    other => return Err(format!("unknown run status {other:?}")),
                };
                run = Some(UnfinishedScrub {
                    started: line.time("started")?,
                    updated: line.time("updated")?,
                    read_only: line.flag("read_only")?,
                    status,
                    devices: Vec::new(),
                });
            }
            "device" => devices.push(DeviceRecord {
                devid: line.num("devid")?,
                start: line.num("start")?,
                end: line.num("end")?,
                finished: line.flag("finished")?,
                progress: line.counters(),
            }),
            _ => {}
        }
    }
    if let Some(run) = &mut run {
        run.devices = devices;
    }
    Ok(ScrubState {
        fsid: fsid.ok_or("no fsid line")?,
        last_completed,
        unfinished: run,
    })
}
