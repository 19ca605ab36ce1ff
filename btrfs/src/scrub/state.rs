//! The per-filesystem scrub state file: where each device's scrub got to (so a cancelled or
//! interrupted scrub can resume after a restart, a reboot or a crash) and the last completed
//! scrub (so a monitor can say "last scrub 40 days ago, 3 uncorrectable errors").
//!
//! One file per fsid, `<dir>/<fsid>.scrub`, in a directory the caller chooses
//! ([`DEFAULT_STATE_DIR`](super::DEFAULT_STATE_DIR) by default). It is replaced atomically:
//! written to `<fsid>.scrub.tmp`, fsynced, renamed over the old one, and the directory
//! fsynced, so a crash leaves either the old or the new file, never a torn one. The format is
//! line-based text (`kind key=value ...`), versioned on its first line; unknown keys are
//! ignored.

use super::outcome::ScrubVerdict;
use super::progress::ScrubProgress;
use crate::error::{Error, ErrorKind, Result};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

const MAGIC: &str = "btrfs-kit scrub state";
const VERSION: u32 = 1;

/// The last scrub that went through every device.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ScrubSummary {
    /// When it started (its first run, if resumed).
    pub started: SystemTime,
    /// When it finished.
    pub finished: SystemTime,
    /// Its verdict: clean, corrected or uncorrectable.
    pub verdict: ScrubVerdict,
    /// Whether it only read.
    pub read_only: bool,
    /// How many devices it covered.
    pub devices: u64,
    /// Its counters over all devices and runs (errors, bytes).
    pub totals: ScrubProgress,
    /// How many damaged files it named (0 when none or not known).
    pub damaged_files: u64,
}

impl ScrubSummary {
    /// How long ago it finished (zero if the clock went backwards).
    pub fn age(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.finished)
            .unwrap_or_default()
    }
}

/// What the process that recorded an unfinished scrub last said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "status", rename_all = "lowercase")
)]
pub enum RunStatus {
    /// Running in process `pid` (during boot `boot_id`). If that process is gone, the scrub
    /// was interrupted (crash, kill, reboot) and can be resumed.
    Running {
        /// The process id.
        pid: u32,
        /// `/proc/sys/kernel/random/boot_id` when it was recorded.
        boot_id: String,
    },
    /// Cancelled.
    Cancelled,
    /// A device's scrub failed.
    Failed,
}

/// One device of an unfinished scrub.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DeviceRecord {
    /// The device id.
    pub devid: u64,
    /// The physical start of the requested range.
    pub start: u64,
    /// The physical end of the requested range.
    pub end: u64,
    /// Whether this device's scrub reached the end.
    pub finished: bool,
    /// Its counters over all runs so far; `last_physical` is where a resume continues.
    pub progress: ScrubProgress,
}

impl DeviceRecord {
    /// Where a resume of this device starts.
    pub fn resume_at(&self) -> u64 {
        self.start.max(self.progress.last_physical)
    }
}

/// A scrub that has not gone through every device yet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct UnfinishedScrub {
    /// When it first started.
    pub started: SystemTime,
    /// When this record was written.
    pub updated: SystemTime,
    /// Whether it only reads.
    pub read_only: bool,
    /// What its process last said.
    pub status: RunStatus,
    /// Its devices.
    pub devices: Vec<DeviceRecord>,
}

impl UnfinishedScrub {
    /// Whether the process that records it still runs (same boot, process alive, not us):
    /// then it is not to be resumed but watched.
    pub fn is_running_elsewhere(&self) -> bool {
        match &self.status {
            RunStatus::Running { pid, boot_id } => {
                *pid != std::process::id()
                    && current_boot_id().as_deref() == Some(boot_id.as_str())
                    && Path::new(&format!("/proc/{pid}")).exists()
            }
            _ => false,
        }
    }
}

/// The recorded scrub state of one filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ScrubState {
    /// The filesystem.
    pub fsid: Uuid,
    /// The last scrub that completed (went through every device).
    pub last_completed: Option<ScrubSummary>,
    /// A scrub cancelled, failed or interrupted, which a resume continues.
    pub unfinished: Option<UnfinishedScrub>,
}

/// This boot's id, to tell a recorded running scrub of an earlier boot.
pub(crate) fn current_boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

fn time_text(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

fn parse_time(s: &str) -> Option<SystemTime> {
    let (secs, nanos) = s.split_once('.').unwrap_or((s, "0"));
    Some(UNIX_EPOCH + Duration::new(secs.parse().ok()?, nanos.parse().ok()?))
}

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

impl ScrubState {
    /// A state with nothing recorded yet.
    pub fn empty(fsid: Uuid) -> Self {
        ScrubState {
            fsid,
            last_completed: None,
            unfinished: None,
        }
    }

    /// The state file of `fsid` in `dir`.
    pub fn file(dir: &Path, fsid: Uuid) -> PathBuf {
        dir.join(format!("{fsid}.scrub"))
    }

    /// Loads the state of `fsid` from `dir`; `None` when nothing was recorded.
    pub fn load(dir: &Path, fsid: Uuid) -> Result<Option<ScrubState>> {
        let path = Self::file(dir, fsid);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::new(
                    "load scrub state",
                    path,
                    ErrorKind::StateFile {
                        detail: format!("cannot read it: {e}"),
                    },
                ))
            }
        };
        Self::parse(&text)
            .map(Some)
            .map_err(|detail| Error::new("load scrub state", path, ErrorKind::StateFile { detail: format!("{detail}; delete the file to start over (a resume then starts from the beginning)") }))
    }

    /// The last scrub that went through every device.
    pub fn last_completed(&self) -> Option<&ScrubSummary> {
        self.last_completed.as_ref()
    }

    /// The scrub a resume would continue, if any.
    pub fn unfinished(&self) -> Option<&UnfinishedScrub> {
        self.unfinished.as_ref()
    }

    /// Removes the state file of `fsid` in `dir`; whether there was one.
    pub fn delete(dir: &Path, fsid: Uuid) -> Result<bool> {
        let path = Self::file(dir, fsid);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::new(
                "delete scrub state",
                path,
                ErrorKind::StateFile {
                    detail: e.to_string(),
                },
            )),
        }
    }

    /// The file's text.
    pub(crate) fn to_text(&self) -> String {
        let mut out = format!("{MAGIC} {VERSION}\nfsid {}\n", self.fsid);
        if let Some(s) = &self.last_completed {
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
        if let Some(u) = &self.unfinished {
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

    /// Writes the state to `dir` atomically and durably (temp file, fsync, rename, fsync of
    /// the directory), creating `dir` (mode 0700) if needed.
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let path = Self::file(dir, self.fsid);
        let fail = |what: &str, e: std::io::Error| {
            Error::new(
                "save scrub state",
                path.clone(),
                ErrorKind::StateFile {
                    detail: format!("{what}: {e}; check that the state directory is writable"),
                },
            )
        };
        create_private_dir(dir).map_err(|e| fail("create the directory", e))?;
        let tmp = dir.join(format!("{}.scrub.tmp", self.fsid));
        let mut file = std::fs::File::create(&tmp).map_err(|e| fail("create the temp file", e))?;
        file.write_all(self.to_text().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| fail("write the temp file", e))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(|e| fail("rename the temp file", e))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail("sync the directory", e))
    }
}

/// Creates `dir` and its parents; a directory this creates is private (0700).
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ScrubState {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let counters = ScrubProgress {
            data_bytes: crate::ByteSize(1 << 30),
            csum_errors: 3,
            uncorrectable_errors: 3,
            last_physical: 4096,
            ..Default::default()
        };
        ScrubState {
            fsid: Uuid::from_u128(0x1234),
            last_completed: Some(ScrubSummary {
                started: t,
                finished: t + Duration::from_secs(60),
                verdict: ScrubVerdict::Uncorrectable,
                read_only: false,
                devices: 2,
                totals: counters,
                damaged_files: 2,
            }),
            unfinished: Some(UnfinishedScrub {
                started: t,
                updated: t,
                read_only: true,
                status: RunStatus::Running {
                    pid: 42,
                    boot_id: "b00t".into(),
                },
                devices: vec![
                    DeviceRecord {
                        devid: 1,
                        start: 0,
                        end: u64::MAX,
                        finished: true,
                        progress: counters,
                    },
                    DeviceRecord {
                        devid: 3,
                        start: 1 << 20,
                        end: u64::MAX,
                        finished: false,
                        progress: ScrubProgress::default(),
                    },
                ],
            }),
        }
    }

    #[test]
    fn round_trips_through_text() {
        let s = sample();
        assert_eq!(ScrubState::parse(&s.to_text()), Ok(s.clone()));
        let empty = ScrubState::empty(Uuid::from_u128(7));
        assert_eq!(ScrubState::parse(&empty.to_text()), Ok(empty));
        let cancelled = ScrubState {
            unfinished: s.unfinished.clone().map(|u| UnfinishedScrub {
                status: RunStatus::Cancelled,
                ..u
            }),
            ..s
        };
        assert_eq!(ScrubState::parse(&cancelled.to_text()), Ok(cancelled));
    }

    #[test]
    fn resume_starts_at_the_recorded_position_within_the_range() {
        let s = sample();
        let devices = &s.unfinished.as_ref().unwrap().devices;
        assert_eq!(devices[0].resume_at(), 4096);
        assert_eq!(devices[1].resume_at(), 1 << 20);
    }

    #[test]
    fn refuses_other_files_and_versions() {
        assert!(ScrubState::parse("hello\n").is_err());
        assert!(ScrubState::parse("btrfs-kit scrub state 9\nfsid 1\n")
            .unwrap_err()
            .contains("version 9"));
        assert!(ScrubState::parse("btrfs-kit scrub state 1\n").is_err());
        let bad = sample()
            .to_text()
            .replace("verdict=uncorrectable", "verdict=maybe");
        assert!(ScrubState::parse(&bad).is_err());
    }

    #[test]
    fn saves_atomically_and_loads_back() {
        let dir = std::env::temp_dir().join(format!("btrfs-kit-state-{}", std::process::id()));
        let s = sample();
        s.save(&dir.join("sub")).unwrap();
        let loaded = ScrubState::load(&dir.join("sub"), s.fsid).unwrap();
        assert_eq!(loaded, Some(s.clone()));
        assert!(!dir
            .join("sub")
            .join(format!("{}.scrub.tmp", s.fsid))
            .exists());
        assert!(ScrubState::delete(&dir.join("sub"), s.fsid).unwrap());
        assert_eq!(ScrubState::load(&dir.join("sub"), s.fsid).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
