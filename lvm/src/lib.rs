//! LVM2 management for Rust: physical volumes, volume groups and logical volumes through the
//! lvm2 command-line tools ([`CliBackend`], the default) or through lvmdbusd over D-Bus
//! (`DbusBackend`, behind the `dbus` cargo feature), both behind one trait, [`LvmBackend`].
//!
//! All sizes are [`Bytes`]; text sizes are read in lvm2's units ([`Bytes::parse_lvm2`],
//! [`NewSize`]'s `FromStr`). Names are checked against lvm2's rules before any process starts.
//! Every command can be confined to a list of devices so nothing else is scanned or touched.
//!
//! ```no_run
//! use lvm_kit::{Bytes, CliBackend, LvCreate, LvmBackend};
//! let lvm = CliBackend::new();
//! let free = lvm.vg_free("vg0")?;
//! if free >= Bytes::gib(10) {
//!     let lv = lvm.lv_create("vg0", "docker", LvCreate::size(Bytes::gib(10)))?;
//!     println!("created {} ({})", lv.full_name(), lv.size);
//! }
//! # Ok::<(), lvm_kit::Error>(())
//! ```

#![deny(missing_docs)]
// No unsafe code at all: lvm-kit drives lvm2 through its CLI and D-Bus service.
#![forbid(unsafe_code)]

pub mod attr;
mod backend;
mod change;
mod classify;
pub mod cli;
#[cfg(feature = "dbus")]
pub mod dbus;
mod error;
mod model;
pub mod name;
mod report;
mod request;
mod size;

pub use attr::{LvAttr, LvState, LvType, PvAttr, VgAttr};
pub use backend::LvmBackend;
pub use change::device_mapper_loaded;
pub use cli::CliBackend;
#[cfg(feature = "dbus")]
pub use dbus::DbusBackend;
pub use error::{CommandFailure, DeniedBy, Error, ObjectKind, Result};
pub use model::{
    LogicalVolume, PhysicalVolume, PvSegment, Report, Segment, SegmentDevice, VolumeGroup,
};
pub use request::{Confinement, LvCreate, LvSize, NewSize, ThinPoolCreate};
pub use size::{Bytes, SizeParseError, GIB, KIB, MIB, SECTOR};
