//! The kernel versions that matter for Docker on btrfs: a table of changes, each with the
//! release that brought it and why it matters, judged against the running kernel.
//!
//! Sources: btrfs-progs' `Documentation/Kernel-by-version.rst` and `Feature-by-version.rst`
//! (each row names the release under which those files list the change). Distribution kernels
//! often carry fixes back to older releases, so a missing row is a reason to look, not proof.

use crate::report::{Check, Figure, Status, Unit};
use serde::Serialize;
use std::fmt;

/// A kernel release, as `major.minor` (the patch level does not matter for this table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Release {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl Release {
    /// `major.minor`.
    pub const fn new(major: u32, minor: u32) -> Self {
        Release { major, minor }
    }

    /// Parses the start of a `uname -r` string: `6.18.44-fc-v1045` → 6.18, `6.1.0-56-amd64`
    /// → 6.1, `5.15.0-91-generic` → 5.15, `6.9-rc1` → 6.9.
    pub fn parse(release: &str) -> Option<Release> {
        let text = release.trim();
        let digits = |s: &str| -> Option<(u32, usize)> {
            let n = s.bytes().take_while(u8::is_ascii_digit).count();
            Some((s[..n].parse().ok()?, n))
        };
        let (major, n) = digits(text)?;
        let (minor, _) = digits(text[n..].strip_prefix('.')?)?;
        Some(Release { major, minor })
    }

    /// The running kernel's release (`uname -r`).
    pub fn running() -> Option<(String, Release)> {
        let uts = nix::sys::utsname::uname().ok()?;
        let text = uts.release().to_string_lossy().into_owned();
        let release = Release::parse(&text)?;
        Some((text, release))
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// How much a missing change matters to a Docker data root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Impact {
    /// Operators hit it: running without it is a warning.
    Warning,
    /// Worth knowing; not a warning.
    Info,
}

/// One change of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KernelChange {
    /// The first release with the change.
    pub since: Release,
    /// What changed and why it matters here, in one line.
    pub reason: &'static str,
    /// How much it matters when missing.
    pub impact: Impact,
}

const fn change(major: u32, minor: u32, impact: Impact, reason: &'static str) -> KernelChange {
    KernelChange {
        since: Release::new(major, minor),
        reason,
        impact,
    }
}

/// The table, oldest first.
pub const CHANGES: &[KernelChange] = &[
    change(3, 18, Impact::Warning, "empty block groups are removed automatically; before, chunks emptied by deletes stay allocated until a balance"),
    change(4, 18, Impact::Info, "unprivileged subvolume listing (GET_SUBVOL_INFO, GET_SUBVOL_ROOTREF, INO_LOOKUP_USER)"),
    change(5, 1, Impact::Warning, "better ENOSPC handling on highly fragmented filesystems"),
    change(5, 2, Impact::Warning, "balance with qgroups no longer extremely slow (Docker's --storage-opt size= turns qgroups on)"),
    change(5, 7, Impact::Info, "a balance cancel takes effect quickly instead of after the current chunk"),
    change(5, 9, Impact::Info, "a fatal signal stops a running balance (Ctrl-C of btrfs balance cancels it)"),
    change(5, 10, Impact::Info, "sysfs exclusive_operation names a running balance, resize or device operation"),
    change(5, 15, Impact::Warning, "improved flushing logic fixes early ENOSPC on some workloads"),
    change(5, 19, Impact::Info, "automatic block group reclaim on non-zoned filesystems (sysfs allocation/<type>/bg_reclaim_threshold)"),
    change(6, 2, Impact::Warning, "emergency flush reserve avoids most transaction aborts on ENOSPC; discard=async by default"),
    change(6, 8, Impact::Warning, "metadata over-reservation no longer leaves empty metadata block groups (workaround: balance -musage=1)"),
    change(6, 10, Impact::Info, "a potential endless loop in block group reclaim fixed"),
    change(6, 11, Impact::Info, "qgroups of deleted subvolumes are removed automatically; dynamic block group reclaim (sysfs dynamic_reclaim)"),
];

/// The changes `release` lacks, oldest first.
pub fn missing(release: Release) -> impl Iterator<Item = &'static KernelChange> {
    CHANGES.iter().filter(move |c| c.since > release)
}

/// The `kernel` check: warning when a change of [`Impact::Warning`] is missing.
pub fn judge(text: &str, release: Release) -> Check {
    let lacking: Vec<&KernelChange> = missing(release).collect();
    let warnings: Vec<&&KernelChange> = lacking
        .iter()
        .filter(|c| c.impact == Impact::Warning)
        .collect();
    let figure = Figure::new("kernel_missing_changes", lacking.len() as f64, Unit::Count);
    let Some(newest) = warnings.last() else {
        let mut summary = format!("kernel {text} has every btrfs change this tool knows to matter");
        if !lacking.is_empty() {
            summary = format!(
                "kernel {text}: no ENOSPC or balance fix missing; lacks {} minor change(s): {}",
                lacking.len(),
                lacking
                    .iter()
                    .map(|c| format!("{} {}", c.since, c.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        return Check::ok("kernel", summary).figure(figure);
    };
    let list = warnings
        .iter()
        .map(|c| format!("{}: {}", c.since, c.reason))
        .collect::<Vec<_>>()
        .join("; ");
    Check::new(
        "kernel",
        Status::Warning,
        format!("kernel {text} lacks: {list}"),
    )
    .action(format!(
        "run kernel {} or newer (or check that your distribution backported these fixes)",
        newest.since
    ))
    .figure(figure)
}

/// The `kernel` check on the running kernel.
pub fn check() -> Check {
    match Release::running() {
        Some((text, release)) => judge(&text, release),
        None => Check::unknown("kernel", "cannot read the kernel release (uname)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_distribution_release_strings() {
        for (text, want) in [
            ("6.18.44-fc-v1045", (6, 18)),
            ("6.1.0-56-amd64", (6, 1)),
            ("5.15.0-91-generic", (5, 15)),
            ("6.9-rc1", (6, 9)),
            ("4.19.0+", (4, 19)),
            ("3.10.0-1160.el7.x86_64", (3, 10)),
            ("6.2", (6, 2)),
        ] {
            assert_eq!(
                Release::parse(text),
                Some(Release::new(want.0, want.1)),
                "{text}"
            );
        }
        for bad in ["", "linux", "6", "6.", "x.1"] {
            assert_eq!(Release::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_table_is_sorted_and_every_row_says_why() {
        assert!(CHANGES.windows(2).all(|w| w[0].since <= w[1].since));
        assert!(CHANGES.iter().all(|c| c.reason.len() > 20));
        // The rows the issue asks for.
        for (v, word) in [
            ((5, 2), "qgroups"),
            ((5, 15), "ENOSPC"),
            ((5, 19), "bg_reclaim_threshold"),
            ((6, 2), "discard=async"),
            ((6, 8), "empty metadata block groups"),
        ] {
            let row = CHANGES
                .iter()
                .find(|c| c.since == Release::new(v.0, v.1))
                .unwrap_or_else(|| panic!("no row for {v:?}"));
            assert!(row.reason.contains(word), "{v:?}: {}", row.reason);
        }
    }

    #[test]
    fn judges_given_releases() {
        // Current kernels have everything.
        let c = judge("6.18.44-fc-v1045", Release::new(6, 18));
        assert_eq!(c.status, Status::Ok, "{}", c.summary);
        assert_eq!(c.figures[0].value, 0.0);
        // 6.10 lacks only informational changes (6.11): still ok, and says which.
        let c = judge("6.10.3", Release::new(6, 10));
        assert_eq!(c.status, Status::Ok, "{}", c.summary);
        assert!(c.summary.contains("6.11"), "{}", c.summary);
        // Debian 12's 6.1 lacks the 6.2 and 6.8 fixes.
        let c = judge("6.1.0-56-amd64", Release::new(6, 1));
        assert_eq!(c.status, Status::Warning);
        assert!(
            c.summary.contains("6.2:") && c.summary.contains("6.8:"),
            "{}",
            c.summary
        );
        assert!(!c.summary.contains("5.15:"), "{}", c.summary);
        assert!(c.action.contains("6.8 or newer"), "{}", c.action);
        // Ubuntu 20.04's 5.4 also lacks the early-ENOSPC fix of 5.15.
        let c = judge("5.4.0-150-generic", Release::new(5, 4));
        assert_eq!(c.status, Status::Warning);
        assert!(c.summary.contains("5.15:") && !c.summary.contains("5.2:"));
        // RHEL 7's 3.10 lacks the automatic removal of empty block groups.
        let c = judge("3.10.0-1160.el7.x86_64", Release::new(3, 10));
        assert!(c.summary.contains("3.18:"), "{}", c.summary);
        assert_eq!(missing(Release::new(3, 10)).count(), CHANGES.len());
        // Exactly at a row's release the change is present.
        assert!(missing(Release::new(6, 8)).all(|c| c.since > Release::new(6, 8)));
        assert!(!judge("6.8.0", Release::new(6, 8)).summary.contains("6.8:"));
    }
}
