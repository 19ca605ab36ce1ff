//! `commit_stats` (Linux 6.0+): transaction commit counts and durations.

use super::FsSysfs;
use crate::error::Result;
use std::time::Duration;

/// Transaction commits since mount, from `commit_stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CommitStats {
    /// Commits since mount.
    pub commits: u64,
    /// How long the commit in progress has run (`cur_commit_ms`; `None` on kernels without it).
    pub current: Option<Duration>,
    /// Duration of the last commit.
    pub last: Duration,
    /// Longest commit since mount (or since [`FsSysfs::reset_commit_stats`]).
    pub max: Duration,
    /// All commits together.
    pub total: Duration,
}

impl CommitStats {
    /// Decodes `key value` lines; `None` when a required key is missing.
    pub fn parse(text: &str) -> Option<CommitStats> {
        let value = |key: &str| -> Option<u64> {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok()).flatten()
            })
        };
        let ms = |key: &str| value(key).map(Duration::from_millis);
        Some(CommitStats {
            commits: value("commits")?,
            current: ms("cur_commit_ms"),
            last: ms("last_commit_ms")?,
            max: ms("max_commit_ms")?,
            total: ms("total_commit_ms")?,
        })
    }

    /// Average commit duration (zero before the first commit).
    pub fn average(&self) -> Duration {
        if self.commits == 0 {
            Duration::ZERO
        } else {
            self.total / self.commits as u32
        }
    }
}

impl FsSysfs {
    /// Commit statistics; `None` before Linux 6.0.
    pub fn commit_stats(&self) -> Result<Option<CommitStats>> {
        self.knob("commit_stats").parse(CommitStats::parse)
    }

    /// Resets the maximum commit duration (needs CAP_SYS_RESOURCE).
    pub fn reset_commit_stats(&self) -> Result<()> {
        self.knob("commit_stats").write_needing(
            "reset commit_stats",
            "0",
            "Linux 6.0 (commit_stats)",
            "0",
            "CAP_SYS_RESOURCE (which some containers drop even for root)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_the_current_commit() {
        let s = CommitStats::parse(
            "commits 4\ncur_commit_ms 0\nlast_commit_ms 3\nmax_commit_ms 9\ntotal_commit_ms 20\n",
        )
        .unwrap();
        assert_eq!(s.commits, 4);
        assert_eq!(s.current, Some(Duration::ZERO));
        assert_eq!(s.max, Duration::from_millis(9));
        assert_eq!(s.average(), Duration::from_millis(5));
        let old =
            CommitStats::parse("commits 1\nlast_commit_ms 1\nmax_commit_ms 1\ntotal_commit_ms 1\n")
                .unwrap();
        assert_eq!(old.current, None);
        assert_eq!(CommitStats::parse("commits x\n"), None);
    }
}
