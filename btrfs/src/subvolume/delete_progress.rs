//! How far a recursive delete that failed part-way got: no dependency on the rest of the
//! crate (the cause's type is a parameter), so the error type can carry it.

use std::path::PathBuf;

/// How far a delete that failed part-way got ([`crate::ErrorKind::DeleteIncomplete`]; `E` is
/// [`crate::Error`] there: generic so that this module does not depend on the error type).
#[derive(Debug)]
pub struct DeleteProgress<E> {
    /// The subvolume whose delete failed.
    pub failed: PathBuf,
    /// Why it failed.
    pub cause: E,
    /// The subvolumes deleted, in order.
    pub deleted: Vec<PathBuf>,
    /// The subvolumes left, the failed one first.
    pub not_deleted: Vec<PathBuf>,
    /// The read-only subvolumes made writable for the delete and made read-only again.
    pub restored_read_only: Vec<PathBuf>,
    /// Those that could not be made read-only again, each with why.
    pub not_restored: Vec<String>,
}

impl<E: std::fmt::Display> std::fmt::Display for DeleteProgress<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "failed deleting {} ({}); deleted {}; not deleted {}",
            self.failed.display(),
            self.cause,
            listed(&self.deleted),
            listed(&self.not_deleted)
        )?;
        if !self.restored_read_only.is_empty() {
            write!(
                f,
                "; made read-only again {}",
                listed(&self.restored_read_only)
            )?;
        }
        if !self.not_restored.is_empty() {
            write!(
                f,
                "; could not make read-only again: {}",
                self.not_restored.join("; ")
            )?;
        }
        Ok(())
    }
}

/// `N (p1, p2, ...)`, or `none`.
fn listed(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    format!("{} ({})", paths.len(), shown.join(", "))
}
