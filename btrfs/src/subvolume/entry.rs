//! What a subvolume listing yields ([`Entry`]: a [`Subvolume`] or an [`Unreachable`] one) and
//! how it walks ([`Order`], [`Mode`]).

use super::info::SubvolumeInfo;
use std::fmt;
use std::path::PathBuf;

/// When a subvolume is yielded relative to the ones nested in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Order {
    /// Parents before their children (e.g. to recreate a tree).
    #[default]
    PreOrder,
    /// Children before their parents (e.g. to delete a tree).
    PostOrder,
}

/// Which kernel interface the iterator uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Mode {
    /// Privileged when the caller may search trees (CAP_SYS_ADMIN), else unprivileged.
    #[default]
    Auto,
    /// TREE_SEARCH + INO_LOOKUP: sees every subvolume; needs CAP_SYS_ADMIN.
    Privileged,
    /// GET_SUBVOL_ROOTREF + INO_LOOKUP_USER: sees what the caller can reach (kernel 4.18+).
    Unprivileged,
}

/// One subvolume found below the listed path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Subvolume {
    /// The path relative to the listed path: join it to that path to reach the subvolume.
    /// Bytes, not necessarily UTF-8 (see [`crate::name`] to show it).
    #[cfg_attr(
        feature = "serde",
        serde(flatten, serialize_with = "crate::name::path_field")
    )]
    pub path: PathBuf,
    /// Nesting depth below the listed path: 1 for the outermost subvolumes found.
    pub depth: usize,
    /// What the kernel records about it.
    pub info: SubvolumeInfo,
}

/// Why a subvolume's path or info could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum UnreachableReason {
    /// The caller may not traverse a directory on its path, or open the subvolume.
    PermissionDenied,
    /// It was deleted (or moved) while the listing ran.
    Vanished,
    /// Something else is mounted over its path.
    Covered,
    /// Any other error, as text.
    Other(String),
}

impl fmt::Display for UnreachableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnreachableReason::PermissionDenied => f.write_str("permission denied"),
            UnreachableReason::Vanished => f.write_str("deleted or moved during the listing"),
            UnreachableReason::Covered => f.write_str("another filesystem is mounted over it"),
            UnreachableReason::Other(e) => f.write_str(e),
        }
    }
}

/// A subvolume known to exist (its parent lists it) whose path or info could not be resolved.
/// Subvolumes nested in it are not visited.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Unreachable {
    /// The subvolume id.
    pub id: u64,
    /// The id of the subvolume that holds it.
    pub parent_id: u64,
    /// The path relative to the listed path, when that much was resolved.
    #[cfg_attr(
        feature = "serde",
        serde(flatten, serialize_with = "crate::name::opt_path_field")
    )]
    pub path: Option<PathBuf>,
    /// Why it could not be resolved.
    pub reason: UnreachableReason,
}

/// One item of a listing.
// Unreachable entries are rare; boxing the common variant would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "kind", rename_all = "lowercase")
)]
pub enum Entry {
    /// A subvolume, with its path and info.
    Subvolume(Subvolume),
    /// A subvolume whose path or info could not be resolved.
    Unreachable(Unreachable),
}

impl Entry {
    /// The subvolume id.
    pub fn id(&self) -> u64 {
        match self {
            Entry::Subvolume(s) => s.info.id,
            Entry::Unreachable(u) => u.id,
        }
    }

    /// The subvolume, if it was resolved.
    pub fn subvolume(&self) -> Option<&Subvolume> {
        match self {
            Entry::Subvolume(s) => Some(s),
            Entry::Unreachable(_) => None,
        }
    }
}
