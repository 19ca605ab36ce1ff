//! Subvolumes and snapshots: create, snapshot (also recursively), delete (by path, by id,
//! recursively), identify, describe, list (a streaming iterator, privileged or not), the
//! read-only property, the default subvolume and waiting for deleted subvolumes to be cleaned.
//!
//! ```no_run
//! use btrfs_kit::{Filesystem, subvolume::{self, Entry, SnapshotOptions}};
//!
//! # fn main() -> Result<(), btrfs_kit::Error> {
//! subvolume::create("/mnt/data/layer1")?;
//! subvolume::snapshot("/mnt/data/layer1", "/mnt/data/layer2", &SnapshotOptions::read_only())?;
//! let fs = Filesystem::open("/mnt/data")?;
//! for entry in fs.subvolumes().iter()? {
//!     match entry? {
//!         Entry::Subvolume(s) => println!("{} {}", s.info.id, s.path.display()),
//!         Entry::Unreachable(u) => println!("{} unreachable: {}", u.id, u.reason),
//!     }
//! }
//! subvolume::delete("/mnt/data/layer2", subvolume::Recursion::No)?;
//! # Ok(())
//! # }
//! ```

mod clean;
mod create;
mod delete;
mod delete_check;
pub(crate) mod delete_problem;
pub(crate) mod delete_progress;
mod entry;
mod info;
mod iter;
mod lookup;
mod paths;
mod privileged;
mod props;
mod unprivileged;
mod walk;

pub use create::{create, create_with, snapshot, SnapshotOptions};
pub use delete::{delete, Recursion};
pub use delete_problem::DeleteProblem;
pub use delete_progress::DeleteProgress;
pub use entry::{Entry, Mode, Order, Subvolume, Unreachable, UnreachableReason};
pub use info::SubvolumeInfo;
pub use iter::{SubvolumeIter, SubvolumeList};
pub(crate) use lookup::top_path;
pub(crate) use paths::containing_root;
pub use paths::{is_subvolume, subvolume_id};
pub use props::{force_read_write, info, is_read_only, set_read_only, set_received, Received};
/// The uuid type of [`SubvolumeInfo`]'s uuids (re-exported from the `uuid` crate).
pub use uuid::Uuid;

/// The id of the top-level subvolume (`BTRFS_FS_TREE_OBJECTID`), which always exists.
pub const TOP_LEVEL_ID: u64 = btrfs_sys::BTRFS_FS_TREE_OBJECTID as u64;

/// The inode number of every subvolume's root directory (`BTRFS_FIRST_FREE_OBJECTID`).
pub(crate) const ROOT_DIR_INO: u64 = btrfs_sys::BTRFS_FIRST_FREE_OBJECTID as u64;
