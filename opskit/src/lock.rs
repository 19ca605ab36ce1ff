//! An exclusive advisory lock (`flock`) on a file whose holder writes its pid and start time
//! into it, so a second taker can say who holds it. The kernel drops the lock when the holder
//! exits, also after a crash or `kill -9`: a stale file never blocks anyone.

use rustix::fs::{flock, FlockOperation};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A lock, held until dropped.
#[derive(Debug)]
pub struct HolderLock {
    _file: std::fs::File,
    path: PathBuf,
}

/// Who holds a lock, as its holder wrote it (`pid=N since=SECS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's process id.
    pub pid: u32,
    /// When it took the lock (Unix seconds).
    pub since: u64,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else holds it.
    #[error("{} is held by {}", path.display(), holder.as_ref().map(|h| format!("process {}", h.pid)).unwrap_or_else(|| "an unknown process".into()))]
    Held {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, if it said.
        holder: Option<Holder>,
    },
    /// The lock file could not be opened, locked or written.
    #[error("lock {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
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

impl HolderLock {
    /// Takes the lock at `path` (creating the file, mode 0644 before the umask, not its
    /// directory) at once, or fails with [`LockError::Held`].
    pub fn try_take(path: &Path) -> Result<HolderLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(LockError::Held {
                    holder: holder(path),
                    path: path.to_path_buf(),
                })
            }
            Err(e) => return Err(io(e.into())),
        }
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let note = format!("pid={} since={since}\n", std::process::id());
        (|| {
            file.set_len(0)?;
            file.rewind()?;
            file.write_all(note.as_bytes())?;
            file.sync_data()
        })()
        .map_err(io)?;
        Ok(HolderLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// Takes the lock, waiting while another holds it: `waiting` is told once, then `stop` is
    /// asked every `poll` (it may sleep for that long) and gives up with [`LockError::Held`]
    /// when it says so (e.g. at a signal).
    pub fn take_waiting(
        path: &Path,
        poll: Duration,
        stop: &mut dyn FnMut(Duration) -> bool,
        mut waiting: impl FnMut(&LockError),
    ) -> Result<HolderLock, LockError> {
        let mut told = false;
        loop {
            match Self::try_take(path) {
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
        let path = dir.path().join("x.lock");
        let first = HolderLock::try_take(&path).unwrap();
        match HolderLock::try_take(&path) {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder.unwrap().pid, std::process::id())
            }
            other => panic!("{other:?}"),
        }
        let mut polls = 0;
        let waited = HolderLock::take_waiting(
            &path,
            Duration::ZERO,
            &mut |_| {
                polls += 1;
                polls == 2
            },
            |_| {},
        );
        assert!(matches!(waited, Err(LockError::Held { .. })));
        assert_eq!(polls, 2);
        drop(first);
        let again = HolderLock::try_take(&path).unwrap();
        assert_eq!(again.path(), path);
        assert!(HolderLock::try_take(&dir.path().join("none/x.lock")).is_err());
    }
}
