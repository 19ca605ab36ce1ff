//! Scrub: read every copy of every data and metadata block, verify checksums, repair from a
//! good copy, and name what cannot be repaired.
//!
//! * [`Filesystem::scrub_background`] starts a scrub on its own threads (one per device, as
//!   btrfs-progs does) and returns a [`ScrubHandle`]: progress per device and in total with
//!   the rate ([`ScrubHandle::progress`]), [`cancel`](ScrubHandle::cancel) and
//!   [`wait`](ScrubHandle::wait) for the typed [`ScrubOutcome`] ([`ScrubVerdict`]: clean,
//!   corrected, cancelled, failed, uncorrectable). [`Filesystem::scrub`] blocks.
//! * [`ScrubRequest`] picks the devices, read-only, a physical range, a per-device speed limit
//!   (through sysfs, restored afterwards) and the state directory.
//! * Each device's position is recorded durably in a state file per fsid
//!   ([`ScrubState`], default directory [`DEFAULT_STATE_DIR`]); [`Filesystem::scrub_resume`]
//!   continues a cancelled or interrupted scrub from there (after a restart, reboot or crash)
//!   and says when there was nothing to resume. [`ScrubState::load`] tells a monitor when the
//!   last scrub completed and what it found.
//! * Uncorrectable errors come with a [`DamageReport`]: the damaged sectors and the files
//!   holding them, once per subvolume (see [`damage`](self::DamageReport) for how the
//!   addresses are learned from the kernel log and checked).
//! * [`Filesystem::scrub_status`] and [`Filesystem::scrub_cancel`] act on a scrub started by
//!   anyone.
//!
//! Everything needs CAP_SYS_ADMIN; naming damaged files also reads `/dev/kmsg`.
//!
//! ```no_run
//! use btrfs_kit::{Filesystem, scrub::{ScrubRequest, ScrubVerdict}};
//!
//! # fn main() -> Result<(), btrfs_kit::Error> {
//! let fs = Filesystem::open("/var/lib/docker")?;
//! let handle = fs.scrub_background(&ScrubRequest::new())?;
//! while !handle.is_finished() {
//!     let p = handle.progress()?;
//!     println!("{:.0}% at {:.0} MiB/s", p.fraction() * 100.0, p.rate() / 1048576.0);
//!     std::thread::sleep(std::time::Duration::from_secs(1));
//! }
//! let outcome = handle.wait()?;
//! if outcome.verdict == ScrubVerdict::Uncorrectable {
//!     for file in outcome.damage.iter().flat_map(|d| &d.files) {
//!         println!("damaged: subvolume {} {:?}", file.subvolume_id, file.paths);
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [`Filesystem::scrub_background`]: crate::Filesystem::scrub_background
//! [`Filesystem::scrub`]: crate::Filesystem::scrub
//! [`Filesystem::scrub_resume`]: crate::Filesystem::scrub_resume
//! [`Filesystem::scrub_status`]: crate::Filesystem::scrub_status
//! [`Filesystem::scrub_cancel`]: crate::Filesystem::scrub_cancel

mod damage;
mod errors;
mod handle;
mod kmsg;
mod monitor;
mod outcome;
mod progress;
mod request;
mod run;
mod start;
mod state;
mod state_json;
mod state_v1;
mod worker;

pub use damage::{DamageReport, DamagedLocation, STRIPE_LEN};
pub use handle::{DeviceSnapshot, ScrubHandle, ScrubSnapshot};
pub use outcome::{DeviceScrub, DeviceScrubState, ResumeOrigin, ScrubOutcome, ScrubVerdict};
pub use progress::ScrubProgress;
pub use request::{ScrubDevices, ScrubRequest};
pub use run::{DeviceStatus, ScrubStatus};
pub use state::{DeviceRecord, RunStatus, ScrubState, ScrubSummary, UnfinishedScrub};

/// The default directory of scrub state files.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/btrfs-kit";
