//! `provision`: Docker's data root on its own LVM logical volume formatted btrfs, in one
//! idempotent command.
//!
//! [`plan`] reads the system and lists the steps, each already done or to do, or refuses
//! with the reason and the way out before anything changes. [`apply`] runs the steps still
//! to do; a failure part-way names what was done and how to undo it, and running again
//! continues (every step first checks whether it is already done).
//!
//! The steps: create (or accept) the LV; activate it; format it with the native mkfs
//! (refusing existing signatures as mkfs does, or accepting a btrfs with our label); create
//! the mount point; mount it (`noatime` by default: snapshot-heavy Docker trees pay for atime
//! updates); make the mount permanent (a systemd `.mount` unit keyed by the filesystem UUID,
//! plus a `docker.service` drop-in with `RequiresMountsFor=`, or an fstab line); set
//! `"storage-driver": "btrfs"` in daemon.json, keeping every other key and a backup; select
//! the image store (graph driver or containerd), and with the containerd store on a system
//! containerd, put containerd's root on the same filesystem ([`store`]).

mod action;
mod apply;
mod error;
pub mod permanent;
mod plan;
pub mod store;

pub use action::{Action, Plan, Step};
pub use apply::apply;
pub(crate) use error::refuse;
pub use error::{ProvisionError, StepError};
pub use plan::plan;
pub(crate) use plan::{plan_permanent_mount, same_device};

use crate::config::{DockerConfig, Paths};
use crate::docker::ImageStore;
use lvm_kit::Bytes;
use std::path::PathBuf;

/// What to provision.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The volume group.
    pub vg: String,
    /// The LV's size (rounded up to whole extents by lvm2).
    pub size: Bytes,
    /// The LV's name.
    pub lv: String,
    /// The filesystem label.
    pub label: String,
    /// The data root to mount it on.
    pub mount_point: PathBuf,
    /// Mount options.
    pub mount_options: String,
    /// An fstab line instead of a systemd mount unit.
    pub fstab: bool,
    /// The image store to set up (None: what the installed dockerd picks).
    pub image_store: Option<ImageStore>,
    /// A system containerd's configuration file (its root must be on the btrfs with the
    /// containerd store).
    pub containerd_config: PathBuf,
    /// Docker's configuration directory, socket and pidfile.
    pub docker: DockerConfig,
    /// The unit directory and fstab.
    pub paths: Paths,
    /// Confine LVM to these devices (empty: every device).
    pub lvm_devices: Vec<PathBuf>,
}
