//! One `maintain` at a time per filesystem: an advisory lock (`flock`) on
//! `<lock_dir>/maintain-<fsid>.lock`. The holder writes its pid and start time into the file, so
//! a second run can say who holds it. The kernel drops the lock when the holder exits, also
//! after a crash or `kill -9`: a stale file never blocks anyone.

use nix::fcntl::{Flock, FlockArg};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// The lock of one filesystem, held until dropped.
#[derive(Debug)]
pub struct MaintainLock {
    _file: Flock<std::fs::File>,
    path: PathBuf,
}

/// Who holds a lock, as its holder wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's process id.
    pub pid: u32,
    /// When it took the lock (Unix seconds).
    pub since: u64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "process {} since {}",
            self.pid,
            super::time::rfc3339(self.since)
        )
    }
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error("another maintain run holds {}: {}; wait for it (or run with --wait)", path.display(), holder.as_ref().map(|h| h.to_string()).unwrap_or_else(|| "holder unknown".into()))]
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
    let text = std::fs::read_to_string(path).ok()?;
    let field = |key: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.parse::<u64>().ok())
    };
    Some(Holder {
        pid: u32::try_from(field("pid=")?).ok()?,
        since: field("since=")?,
    })
}

impl MaintainLock {
    /// Takes the lock of `fsid` at once, or fails with [`LockError::Held`].
    pub fn try_take(dir: &Path, fsid: Uuid) -> Result<MaintainLock, LockError> {
        let path = lock_path(dir, fsid);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(LockError::Held {
                    holder: holder(&path),
                    path,
                })
            }
            Err((_, e)) => return Err(io(e.into())),
        };
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let note = format!("pid={} since={since}\n", std::process::id());
        (|| {
            locked.set_len(0)?;
            locked.rewind()?;
            locked.write_all(note.as_bytes())?;
            locked.sync_data()
        })()
        .map_err(io)?;
        Ok(MaintainLock {
            _file: locked,
            path,
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
        let mut told = false;
        loop {
            match Self::try_take(dir, fsid) {
                Err(e @ LockError::Held { .. }) => {
                    if !told {
                        waiting(&e);
                        told = true;
                    }
                    if stop(poll) {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
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
