//! What would make a recursive delete fail part-way: a plain value with no dependency on the
//! rest of the crate, so the error type can carry it.

use std::fmt;
use std::path::PathBuf;

/// Something that would make a delete fail part-way, found before anything was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeleteProblem {
    /// A subvolume of the tree could not be resolved (e.g. permissions on its path).
    Unreachable {
        /// Its id.
        id: u64,
        /// Its path, as far as it was resolved.
        path: Option<PathBuf>,
        /// Why.
        reason: String,
    },
    /// The subvolume is the filesystem's default one, which the kernel will not delete.
    DefaultSubvolume {
        /// Its path.
        path: PathBuf,
        /// Its id.
        id: u64,
    },
    /// The subvolume is mounted elsewhere (`subvol=` / `subvolid=`).
    MountedElsewhere {
        /// Its path.
        path: PathBuf,
        /// Where it is mounted.
        mount_point: PathBuf,
    },
    /// Something is mounted on the target or inside the tree.
    MountInside {
        /// The mount point.
        mount_point: PathBuf,
    },
    /// An active swap file lies in the tree.
    Swapfile {
        /// The swap file.
        file: PathBuf,
    },
    /// The filesystem is mounted read-only.
    ReadOnlyFilesystem,
    /// The subvolume holding the target is read-only (and is not being deleted).
    ReadOnlyHolder {
        /// The read-only subvolume.
        holder: PathBuf,
    },
    /// An attribute flag makes the kernel refuse (even root): append-only or immutable.
    Attribute {
        /// The subvolume root or directory that carries it.
        path: PathBuf,
        /// `append-only` or `immutable`.
        flag: &'static str,
    },
    /// The caller lacks a right the kernel will ask for.
    NotPermitted {
        /// What it concerns.
        path: PathBuf,
        /// What is needed.
        needs: &'static str,
    },
}

impl fmt::Display for DeleteProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeleteProblem::Unreachable { id, path, reason } => write!(
                f,
                "nested subvolume {id}{} could not be resolved ({reason}): run as root, or fix the permissions on its path",
                path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default()
            ),
            DeleteProblem::DefaultSubvolume { path, id } => write!(
                f,
                "{} (subvolume {id}) is the default subvolume: set another default first (Filesystem::set_default_subvolume)",
                path.display()
            ),
            DeleteProblem::MountedElsewhere { path, mount_point } => write!(
                f,
                "{} is mounted on {}: unmount it first",
                path.display(),
                mount_point.display()
            ),
            DeleteProblem::MountInside { mount_point } => write!(
                f,
                "something is mounted on {}: unmount it first",
                mount_point.display()
            ),
            DeleteProblem::Swapfile { file } => write!(
                f,
                "{} is an active swap file: swapoff it first",
                file.display()
            ),
            DeleteProblem::ReadOnlyFilesystem => {
                f.write_str("the filesystem is mounted read-only: remount it read-write")
            }
            DeleteProblem::ReadOnlyHolder { holder } => write!(
                f,
                "it lies in the read-only subvolume {}: make that writable first (subvolume::set_read_only)",
                holder.display()
            ),
            DeleteProblem::Attribute { path, flag } => write!(
                f,
                "{} is {flag}: clear the attribute first (chattr -{})",
                path.display(),
                if *flag == "immutable" { 'i' } else { 'a' }
            ),
            DeleteProblem::NotPermitted { path, needs } => {
                write!(f, "{}: this needs {needs}", path.display())
            }
        }
    }
}
