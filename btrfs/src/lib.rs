//! Safe btrfs management through the kernel's ioctls, without btrfs-progs.
//!
//! Open any path on a mounted btrfs filesystem with [`Filesystem::open`], then:
//!
//! * [`Filesystem::info`], [`Filesystem::devices`]: fsid, label, sizes, checksum, devices;
//! * [`Filesystem::space_info`]: `btrfs filesystem df` (works without root);
//! * [`Filesystem::usage`]: `btrfs filesystem usage`, per device (needs root);
//!   [`Filesystem::fill`]: how full data and metadata are, with a fallback without root;
//! * [`Filesystem::balance`] and friends: filtered balances, progress, pause, cancel, resume;
//! * [`Filesystem::tree_search`]: a safe iterator over `BTRFS_IOC_TREE_SEARCH`;
//! * [`subvolume`]: create, snapshot, delete, list ([`Filesystem::subvolumes`]), read-only,
//!   default subvolume, waiting for the cleaner;
//! * [`quota`]: enable quotas, qgroups, limits, rescans, usage;
//! * [`space_share`]: each subvolume's referenced, exclusive and shared data bytes, and what
//!   deleting a group of them frees, exact from the trees, without quotas (needs root);
//! * [`defrag`]: defragment files and trees, with a dry run that shows shared extents first;
//! * [`fiemap`]: a file's extent map (`FS_IOC_FIEMAP`), with shared extents flagged;
//! * [`Filesystem::trim`]: discard unused space (`FITRIM`).
//! * [`scrub`]: scrub in the background with progress, cancel and durable resume, naming the
//!   files of uncorrectable errors; [`inspect`]: which files hold a logical address;
//! * [`devstats`]: device error counters; [`sysfs`]: the typed knobs of `/sys/fs/btrfs/<fsid>/`;
//! * [`Filesystem::add_device`]: grow a filesystem onto another device.
//!
//! Errors are [`Error`]s that name the operation, the path, the cause and what to do.
//!
//! ```no_run
//! use btrfs_kit::{Filesystem, balance::{Balance, ChunkFilters}};
//!
//! # fn main() -> Result<(), btrfs_kit::Error> {
//! let fs = Filesystem::open("/var/lib/docker")?;
//! for space in fs.space_info()? {
//!     println!("{} {}: {} of {}", space.kind, space.profile, space.used, space.total);
//! }
//! // Return empty data chunks to the unallocated pool.
//! let outcome = fs.balance(&Balance::new().data(ChunkFilters::usage_below(0)))?;
//! println!("{outcome:?}");
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
// Unsafe code lives only in the ioctl layer (`ioctl.rs`, `ioctl/*.rs`), which allows it; every
// `unsafe` block there carries a `// SAFETY:` comment.
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod balance;
mod chunk;
pub mod defrag;
mod device;
pub mod devstats;
mod errno_text;
mod error;
pub mod fiemap;
pub mod format;
mod fs;
mod fstype;
mod info;
pub mod inspect;
mod ioctl;
mod le;
pub mod mkfs;
pub mod mounts;
pub mod name;
mod profile;
pub mod quota;
pub mod reflink;
mod resize;
pub mod scrub;
mod size;
mod space;
pub mod space_share;
pub mod subvolume;
pub mod sysfs;
mod tree_search;
pub mod trim;
mod usage;

pub use chunk::{BlockGroup, Chunk, Stripe};
pub use error::{Error, ErrorKind, Result};
pub use fs::Filesystem;
pub use fstype::name_of_magic;
pub use info::{ChecksumType, DeviceInfo, FsInfo};
pub use profile::{BlockGroupKind, Profile, UnknownProfile};
pub use resize::ResizeTarget;
pub use rustix::io::Errno;
pub use size::{ByteSize, InvalidSize};
pub use space::SpaceInfo;
pub use tree_search::{SearchRange, TreeItem, TreeSearch};
pub use usage::{compute_usage, Allocation, DeviceUsage, Fill, Usage};
