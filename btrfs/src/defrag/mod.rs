//! Defragmentation (`BTRFS_IOC_DEFRAG_RANGE`) of a file or a directory tree, with a dry run that
//! shows what it would cost in shared space first.
//!
//! Defragmenting rewrites a file's small extents into larger ones. An extent that the file shares
//! with a snapshot or a reflinked copy (Docker image layers are exactly that) is copied, not
//! moved: the snapshot keeps the old one, so **used space grows by every shared byte rewritten**.
//! Therefore:
//!
//! * [`plan_file`] / [`plan_tree`] are dry runs: per file the extent count (`FS_IOC_FIEMAP`),
//!   how many extents are shared (`FIEMAP_EXTENT_SHARED`), which extents the kernel would rewrite
//!   and how many shared bytes that would unshare;
//! * [`defragment_file`] / [`defragment_tree`] refuse files with shared extents that would be
//!   rewritten ([`ErrorKind::SharedExtents`](crate::ErrorKind::SharedExtents); skipped in a tree) unless
//!   [`DefragOptions::allow_shared`] is set.
//!
//! The tree functions stream: they hold one open directory at a time and open each file
//! relative to it (per file an `openat`, an `fstat`, one `FS_IOC_FIEMAP` for up to 256 extents
//! and a `close`), so their memory does not grow with the number of files.
//!
//! ```no_run
//! use btrfs_kit::defrag::{self, DefragOptions, WalkOptions};
//! use std::ops::ControlFlow;
//!
//! # fn main() -> Result<(), btrfs_kit::Error> {
//! let options = DefragOptions::default();
//! let plan = defrag::plan_tree("/var/lib/docker", &options, &WalkOptions::default(), |_, _| {
//!     ControlFlow::Continue(())
//! })?;
//! if plan.totals.would_unshare.bytes() == 0 {
//!     defrag::defragment_tree("/var/lib/docker", &options, &WalkOptions::default(), |_, _| {
//!         ControlFlow::Continue(())
//!     })?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Permissions (the kernel's rule): defragmenting a regular file needs write permission on it
//! (the descriptor may be read-only, so running executables can be defragmented) or
//! `CAP_SYS_ADMIN`; read-only mounts and read-only subvolumes refuse with EROFS; an active swap
//! file with ETXTBSY. The dry run needs only read access.

mod file;
mod options;
mod plan;
mod tree;
mod walk;

pub use file::{defragment_file, plan_file};
pub use options::{Compression, DefragOptions, UnknownCompression, DEFAULT_EXTENT_THRESHOLD};
pub use plan::{plan_extents, FilePlan};
pub use tree::{
    defragment_tree, plan_tree, FileOutcome, SkipReason, TreeProgress, TreeReport, TreeTotals,
};
pub use walk::{walk, Boundary, BoundaryKind, Walk, WalkOptions};
