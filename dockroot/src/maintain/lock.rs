//! One `maintain` at a time per filesystem: an advisory lock (`flock`) on
//! `<lock_dir>/maintain-<fsid>.lock`. The holder writes its pid and start time into the file, so
//! a second run can say who holds it. The kernel drops the lock when the holder exits, also
//! after a crash or `kill -9`: a stale file never blocks anyone.

use opskit::HolderLock;
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

/// The lock of one filesystem, held until dropped.
#[derive(Debug)]
pub struct MaintainLock {
    lock: HolderLock,
}

/// Who holds a lock, as its holder wrote it: opskit's, shown here as
/// `process PID since RFC3339`.
pub use opskit::Holder;

/// `process PID since RFC3339`, or `holder unknown`.
fn describe(holder: &Option<Holder>) -> String {
    match holder {
        Some(h) => format!("process {} since {}", h.pid, super::time::rfc3339(h.since)),
        None => "holder unknown".into(),
    }
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error("another maintain run holds {}: {}; wait for it (or run with --wait)", path.display(), describe(holder))]
    Held {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, if it said.
        holder: Option<Holder>,
    },
    /// The lock file could not be created or locked.
    #[error("lock {}: {source}; check that the lock directory exists and is writable (maintain.lock_dir)", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The lock file of `fsid` in `dir`.
pub fn lock_path(dir: &Path, fsid: Uuid) -> PathBuf {
    dir.join(format!("maintain-{fsid}.lock"))
}

/// Reads who holds the lock at `path`, as written by its holder.
pub fn holder(path: &Path) -> Option<Holder> {
    opskit::lock_holder(path)
}

impl From<opskit::LockError> for LockError {
    fn from(e: opskit::LockError) -> Self {
        match e {
            opskit::LockError::Held { path, holder } => LockError::Held { path, holder },
            opskit::LockError::Io { path, source } => LockError::Io { path, source },
        }
    }
}

impl MaintainLock {
    /// Takes the lock of `fsid` at once, or fails with [`LockError::Held`].
    pub fn try_take(dir: &Path, fsid: Uuid) -> Result<MaintainLock, LockError> {
        let path = lock_path(dir, fsid);
        std::fs::create_dir_all(dir).map_err(|source| LockError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(MaintainLock {
            lock: HolderLock::try_take(&path)?,
        })
    }

    /// Takes the lock, waiting while another run holds it; `stop` is asked every
    /// `poll` and gives up with [`LockError::Held`] when it says so (a signal).
    pub fn take_waiting(
        dir: &Path,
        fsid: Uuid,
        poll: Duration,
        stop: &mut dyn FnMut(Duration) -> bool,
        mut waiting: impl FnMut(&LockError),
    ) -> Result<MaintainLock, LockError> {
        let path = lock_path(dir, fsid);
        std::fs::create_dir_all(dir).map_err(|source| LockError::Io {
            path: path.clone(),
            source,
        })?;
        let lock = HolderLock::take_waiting(&path, poll, stop, |e| match e {
            opskit::LockError::Held { path, holder } => waiting(&LockError::Held {
                path: path.clone(),
                holder: holder.clone(),
            }),
            opskit::LockError::Io { .. } => {}
        })?;
        Ok(MaintainLock { lock })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        self.lock.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let fsid = Uuid::new_v4();
        let first = MaintainLock::try_take(dir.path(), fsid).unwrap();
        match MaintainLock::try_take(dir.path(), fsid) {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder.unwrap().pid, std::process::id())
            }
            other => panic!("{other:?}"),
        }
        // Another filesystem has its own lock.
        MaintainLock::try_take(dir.path(), Uuid::new_v4()).unwrap();
        drop(first);
        MaintainLock::try_take(dir.path(), fsid).unwrap();
    }
}
