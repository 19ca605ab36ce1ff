//! The plan's vocabulary: each step's action with its data, a planned step, the plan.

use super::permanent::Holder;
use crate::docker::ImageStore;
use serde::Serialize;
use std::path::PathBuf;
use uuid::Uuid;

/// One step and what it changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Action {
    /// `lvcreate`.
    CreateLv {
        /// The VG.
        vg: String,
        /// The LV.
        lv: String,
        /// Its size in bytes.
        size: u64,
    },
    /// `lvchange -ay`.
    ActivateLv {
        /// The VG.
        vg: String,
        /// The LV.
        lv: String,
    },
    /// The native mkfs (or accepting a btrfs already there).
    Format {
        /// The LV's device.
        device: PathBuf,
        /// The label.
        label: String,
        /// The fsid it will get.
        fsid: Uuid,
        /// The LV is created by this run: whatever its extents held before (a filesystem of a
        /// removed LV) is not data, and is overwritten.
        new_lv: bool,
    },
    /// `mkdir -p`.
    CreateMountPoint {
        /// The directory.
        path: PathBuf,
    },
    /// `mount`.
    Mount {
        /// The LV's device.
        device: PathBuf,
        /// The mount point.
        mount_point: PathBuf,
        /// The options.
        options: String,
    },
    /// The systemd mount unit, its `local-fs.target.wants` link and the drop-in of the service
    /// that must wait for it.
    MountUnit {
        /// The unit file.
        unit: PathBuf,
        /// The wants link.
        wants: PathBuf,
        /// The drop-in.
        dropin: PathBuf,
        /// What the mount holds.
        holder: Holder,
        /// Its mount point.
        mount_point: PathBuf,
        /// Its options.
        options: String,
    },
    /// An fstab line.
    FstabLine {
        /// The fstab file.
        fstab: PathBuf,
        /// Its mount point.
        mount_point: PathBuf,
        /// Its options.
        options: String,
    },
    /// `btrfs subvolume create` (the system containerd's root).
    CreateSubvolume {
        /// The new subvolume.
        path: PathBuf,
    },
    /// `"storage-driver": "btrfs"` in daemon.json.
    StorageDriver {
        /// The file.
        daemon_json: PathBuf,
        /// The driver it selected before, if any.
        previous: Option<String>,
    },
    /// `features.containerd-snapshotter` in daemon.json, as the image store needs.
    ImageStore {
        /// The file.
        daemon_json: PathBuf,
        /// The store set up.
        store: ImageStore,
        /// The feature's value before, if set.
        previous: Option<bool>,
    },
}

/// A planned step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// What it does, with its data.
    #[serde(flatten)]
    pub action: Action,
    /// In words.
    pub description: String,
    /// Already done: the step changes nothing.
    pub done: bool,
    /// How to undo it.
    pub undo: String,
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The LV's device.
    pub device: PathBuf,
    /// The filesystem's uuid: the existing one, or the one mkfs will write (`None` while an
    /// inactive LV has not been looked into).
    pub fsid: Option<Uuid>,
}

impl Plan {
    /// Whether every step is already done.
    pub fn nothing_to_do(&self) -> bool {
        self.steps.iter().all(|s| s.done)
    }
}
