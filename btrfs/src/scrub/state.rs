//! The per-filesystem scrub state file: where each device's scrub got to (so a cancelled or
//! interrupted scrub can resume after a restart, a reboot or a crash) and the last completed
//! scrub (so a monitor can say "last scrub 40 days ago, 3 uncorrectable errors").
//!
//! One file per fsid, `<dir>/<fsid>.scrub`, in a directory the caller chooses
//! ([`DEFAULT_STATE_DIR`](super::DEFAULT_STATE_DIR) by default). It is replaced atomically
//! with `opskit::write_atomically` (a temporary file in the same directory, fsynced, renamed
//! over the old one, and the directory fsynced), so a crash leaves either the old or the new
//! file, never a torn one. The format is JSON ([`super::state_json`]); a file in the first,
//! line-based format ([`super::state_v1`]) is read once and rewritten as JSON.

use super::outcome::ScrubVerdict;
use super::progress::ScrubProgress;
use super::{state_json, state_v1};
use crate::error::{Error, ErrorKind, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use uuid::Uuid;

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
        let old_format = text.starts_with(state_v1::MAGIC);
        let state = Self::parse(&text).map_err(|detail| {
            Error::new(
                "load scrub state",
                path,
                ErrorKind::StateFile {
                    detail: format!(
                        "{detail}; delete the file to start over (a resume then starts from the beginning)"
                    ),
                },
            )
        })?;
        if old_format && state.fsid == fsid {
            // Rewritten as JSON once; a reader without write access (a status as a user)
            // keeps the old file, which still reads.
            let _ = state.save(dir);
        }
        Ok(Some(state))
    }

    /// Decodes a state file's text, in JSON or in the first, line-based format.
    pub(crate) fn parse(text: &str) -> std::result::Result<ScrubState, String> {
        if text.starts_with(state_v1::MAGIC) {
            state_v1::parse(text)
        } else {
            state_json::from_json(text)
        }
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
        opskit::write_atomically(&path, state_json::to_json(self).as_bytes(), 0o600)
            .map_err(|e| fail("write it", e))
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
    use std::time::UNIX_EPOCH;

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
        let to_text = state_json::to_json;
        assert_eq!(ScrubState::parse(&to_text(&s)), Ok(s.clone()));
        let empty = ScrubState::empty(Uuid::from_u128(7));
        assert_eq!(ScrubState::parse(&to_text(&empty)), Ok(empty));
        let cancelled = ScrubState {
            unfinished: s.unfinished.clone().map(|u| UnfinishedScrub {
                status: RunStatus::Cancelled,
                ..u
            }),
            ..s
        };
        assert_eq!(ScrubState::parse(&to_text(&cancelled)), Ok(cancelled));
        // The old format still decodes to the same state.
        let s = sample();
        assert_eq!(ScrubState::parse(&state_v1::to_text(&s)), Ok(s));
    }

    #[test]
    fn reads_the_old_format_once_and_rewrites_it_as_json() {
        let dir = tempfile::tempdir().unwrap();
        let s = sample();
        // A file exactly as the previous version wrote it, not produced by the code under test.
        let old = "btrfs-kit scrub state 1\n\
fsid 00000000-0000-0000-0000-000000001234\n\
last started=1700000000.123456789 finished=1700000060.123456789 verdict=uncorrectable read_only=0 devices=2 damaged_files=2 data_bytes_scrubbed=1073741824 csum_errors=3 uncorrectable_errors=3 last_physical=4096\n\
run started=1700000000.123456789 updated=1700000000.123456789 read_only=1 status=running pid=42 boot=b00t\n\
device devid=1 start=0 end=18446744073709551615 finished=1 data_bytes_scrubbed=1073741824 csum_errors=3 uncorrectable_errors=3 last_physical=4096\n\
device devid=3 start=1048576 end=18446744073709551615 finished=0\n";
        let file = ScrubState::file(dir.path(), s.fsid);
        std::fs::write(&file, old).unwrap();
        assert_eq!(
            ScrubState::load(dir.path(), s.fsid).unwrap(),
            Some(s.clone())
        );
        let now = std::fs::read_to_string(&file).unwrap();
        let json: serde_json::Value = serde_json::from_str(&now).unwrap();
        assert_eq!(json["version"], 2, "{now}");
        assert_eq!(
            json["unfinished"]["devices"][0]["progress"]["last_physical"],
            4096
        );
        assert_eq!(ScrubState::load(dir.path(), s.fsid).unwrap(), Some(s));
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
        let bad = state_v1::to_text(&sample()).replace("verdict=uncorrectable", "verdict=maybe");
        assert!(ScrubState::parse(&bad).is_err());
        let json = state_json::to_json(&sample());
        let bad = json.replace("\"uncorrectable\"", "\"maybe\"");
        assert!(ScrubState::parse(&bad).is_err());
        let later = json.replace("\"version\": 2", "\"version\": 9");
        assert!(ScrubState::parse(&later).unwrap_err().contains("version 9"));
        assert!(ScrubState::parse("{}").is_err());
    }

    #[test]
    fn saves_atomically_and_loads_back() {
        let dir = std::env::temp_dir().join(format!("btrfs-kit-state-{}", std::process::id()));
        let s = sample();
        s.save(&dir.join("sub")).unwrap();
        let loaded = ScrubState::load(&dir.join("sub"), s.fsid).unwrap();
        assert_eq!(loaded, Some(s.clone()));
        let names: Vec<_> = std::fs::read_dir(dir.join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [format!("{}.scrub", s.fsid)],
            "no temporary file is left"
        );
        assert!(ScrubState::delete(&dir.join("sub"), s.fsid).unwrap());
        assert_eq!(ScrubState::load(&dir.join("sub"), s.fsid).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
