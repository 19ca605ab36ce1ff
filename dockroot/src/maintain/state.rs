//! The state file: the last run of each task on one filesystem (`<state_dir>/<fsid>.json`),
//! written atomically (temporary file, fsync, rename, fsync of the directory), so a crash
//! leaves the old record or the new one. `maintain` reads it to know what is due; `metrics`
//! exports it.

use super::Outcome;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The last run of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// When it ran (Unix seconds).
    pub time: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// What it did, in one line.
    pub summary: String,
    /// Its figures (bytes, chunks, errors...).
    #[serde(default)]
    pub figures: BTreeMap<String, f64>,
    /// When this task last did its work (done, or needed a human after acting), for what is
    /// due by the calendar (trim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_done: Option<u64>,
}

/// The state of one filesystem.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MaintainState {
    /// The filesystem.
    pub fsid: Option<Uuid>,
    /// The last `maintain` run: when, and its exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<(u64, u8)>,
    /// Each task's last run, by task name.
    #[serde(default)]
    pub tasks: BTreeMap<String, TaskRecord>,
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}; check maintain.state_dir (a damaged file can be deleted: the tasks then count as never run)", path.display())]
pub struct StateError {
    op: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

impl MaintainState {
    /// The file of `fsid` in `dir`.
    pub fn file(dir: &Path, fsid: Uuid) -> PathBuf {
        dir.join(format!("{fsid}.json"))
    }

    /// Reads the state of `fsid` (empty when there is no file yet).
    pub fn load(dir: &Path, fsid: Uuid) -> Result<MaintainState, StateError> {
        let path = Self::file(dir, fsid);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError {
                op: "parse the state file",
                path,
                source: e.into(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(MaintainState {
                fsid: Some(fsid),
                ..Default::default()
            }),
            Err(source) => Err(StateError {
                op: "read the state file",
                path,
                source,
            }),
        }
    }

    /// Writes the state of `fsid` atomically.
    pub fn save(&self, dir: &Path, fsid: Uuid) -> Result<(), StateError> {
        let path = Self::file(dir, fsid);
        let err = |op, source| StateError {
            op,
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| err("create the state directory of", e))?;
        let text = serde_json::to_vec_pretty(self).expect("state serialises");
        opskit::write_atomically(&path, &text, 0o644).map_err(|e| err("write", e))
    }

    /// The record of `task`, if it ever ran.
    pub fn task(&self, task: &str) -> Option<&TaskRecord> {
        self.tasks.get(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let fsid = Uuid::new_v4();
        let mut s = MaintainState::load(dir.path(), fsid).unwrap();
        assert!(s.tasks.is_empty());
        s.tasks.insert(
            "trim".into(),
            TaskRecord {
                time: 5,
                outcome: Outcome::Done,
                summary: "trimmed".into(),
                figures: [("trimmed_bytes".to_string(), 4096.0)].into(),
                last_done: Some(5),
            },
        );
        s.save(dir.path(), fsid).unwrap();
        assert_eq!(MaintainState::load(dir.path(), fsid).unwrap(), s);
        std::fs::write(MaintainState::file(dir.path(), fsid), "{").unwrap();
        assert!(MaintainState::load(dir.path(), fsid).is_err());
    }
}
