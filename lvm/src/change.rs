//! The changes a backend carries out, and the thin interface a backend implements.
//!
//! [`crate::LvmBackend`]'s methods (the front, in `backend.rs`) check names and devices, name
//! the operation, check device-mapper, round sizes and read the result back, the same for every
//! backend; a backend only turns one [`Change`] into lvm2 commands or D-Bus calls
//! ([`Driver::apply`]). A new change is a new variant here: the compiler then lists every place
//! that must handle it, in this file and in each backend.

use crate::classify::Target;
use crate::error::{Error, Result};
use crate::model::Report;
use crate::name::{validate_lv_name, validate_vg_name};
use crate::request::{LvCreate, LvSize, ResizeMode};
use crate::size::Bytes;
use std::path::Path;

/// Whether the kernel's device-mapper driver is loaded.
///
/// `/dev/mapper/control` is no proof: libdevmapper creates that node itself, so it can exist on
/// a kernel without device-mapper (opening it then fails with ENODEV). The driver's misc device
/// in sysfs is the reliable sign.
pub fn device_mapper_loaded() -> bool {
    Path::new("/sys/class/misc/device-mapper").exists()
}

/// One change to LVM, with every size already a whole number of 512-byte sectors.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change<'a> {
    /// `pvcreate DEVICE`.
    PvCreate { device: &'a Path },
    /// `pvremove DEVICE`.
    PvRemove { device: &'a Path },
    /// `vgcreate [-s EXTENT] VG DEVICES...`.
    VgCreate {
        vg: &'a str,
        devices: &'a [&'a Path],
        extent_size: Option<Bytes>,
    },
    /// `vgextend VG DEVICES...`.
    VgExtend {
        vg: &'a str,
        devices: &'a [&'a Path],
    },
    /// `vgremove VG`.
    VgRemove { vg: &'a str },
    /// `lvcreate --type linear` (`zero` only when activating).
    LvCreate {
        vg: &'a str,
        name: &'a str,
        request: LvCreate,
    },
    /// `lvextend`/`lvresize` to `target` (whole extents; differs from the current size).
    LvResize {
        vg: &'a str,
        name: &'a str,
        target: Bytes,
        mode: ResizeMode,
    },
    /// `lvremove VG/LV`.
    LvRemove { vg: &'a str, name: &'a str },
    /// `lvchange -ay|-an VG/LV`.
    LvActivation {
        vg: &'a str,
        name: &'a str,
        active: bool,
    },
    /// `lvcreate -s`: a classic snapshot of `origin`.
    Snapshot {
        vg: &'a str,
        origin: &'a str,
        name: &'a str,
        size: Bytes,
    },
    /// `lvcreate --type thin-pool`.
    ThinPool {
        vg: &'a str,
        name: &'a str,
        size: Bytes,
    },
    /// `lvcreate --type thin` in `pool`.
    Thin {
        vg: &'a str,
        pool: &'a str,
        name: &'a str,
        virtual_size: Bytes,
    },
}

/// What a backend provides: reports, and carrying out one [`Change`]. Everything else is the
/// front's ([`crate::LvmBackend`] is implemented for every `Driver`).
pub(crate) trait Driver: Send + Sync {
    /// Whether device-mapper is available to this backend (activation possible).
    fn has_device_mapper(&self) -> bool;

    /// Every PV, VG and LV.
    fn read_report(&self) -> Result<Report>;

    /// A report holding at least the VG `vg` (and [`Error::NotFound`] if there is none).
    fn read_vg_report(&self, vg: &str) -> Result<Report> {
        let _ = vg;
        self.read_report()
    }

    /// Carries out `change`, already validated; `operation` names it in errors.
    fn apply(&self, change: &Change<'_>, operation: &str) -> Result<()>;
}

/// A device must be an absolute UTF-8 path that cannot be read as an option.
fn check_device(operation: &str, device: &Path) -> Result<()> {
    let text = device.to_str().unwrap_or("");
    if !device.is_absolute() || text.is_empty() || text.starts_with('-') {
        return Err(Error::InvalidRequest {
            operation: operation.to_owned(),
            reason: format!("device {device:?} must be an absolute UTF-8 path"),
        });
    }
    Ok(())
}

fn check_devices(operation: &str, devices: &[&Path]) -> Result<()> {
    if devices.is_empty() {
        return Err(Error::InvalidRequest {
            operation: operation.to_owned(),
            reason: "no devices given".into(),
        });
    }
    devices.iter().try_for_each(|d| check_device(operation, d))
}

impl Change<'_> {
    /// What is being done, as errors name it.
    pub(crate) fn operation(&self) -> String {
        match *self {
            Change::PvCreate { device } => format!("pvcreate {}", device.display()),
            Change::PvRemove { device } => format!("pvremove {}", device.display()),
            Change::VgCreate { vg, .. } => format!("vgcreate {vg}"),
            Change::VgExtend { vg, .. } => format!("vgextend {vg}"),
            Change::VgRemove { vg } => format!("vgremove {vg}"),
            Change::LvCreate { vg, name, .. } => format!("lvcreate {vg}/{name}"),
            Change::LvResize { vg, name, mode, .. } => format!("{} {vg}/{name}", mode.command()),
            Change::LvRemove { vg, name } => format!("lvremove {vg}/{name}"),
            Change::LvActivation { vg, name, active } => {
                format!(
                    "{} {vg}/{name}",
                    if active { "activate" } else { "deactivate" }
                )
            }
            Change::Snapshot {
                vg, origin, name, ..
            } => format!("snapshot {vg}/{origin} as {name}"),
            Change::ThinPool { vg, name, .. } => format!("create thin pool {vg}/{name}"),
            Change::Thin { vg, pool, name, .. } => {
                format!("create thin LV {vg}/{name} in pool {pool}")
            }
        }
    }

    /// The object an lvm2 failure message is about, when the message names none.
    pub(crate) fn target(&self) -> Target {
        match *self {
            Change::PvCreate { device } | Change::PvRemove { device } => {
                Target::pv(&device.display().to_string())
            }
            Change::VgCreate { vg, .. } | Change::VgExtend { vg, .. } | Change::VgRemove { vg } => {
                Target::vg(vg)
            }
            Change::LvCreate { vg, name, .. }
            | Change::LvResize { vg, name, .. }
            | Change::LvRemove { vg, name }
            | Change::LvActivation { vg, name, .. }
            | Change::Snapshot { vg, name, .. }
            | Change::ThinPool { vg, name, .. }
            | Change::Thin { vg, name, .. } => Target::lv(vg, name),
        }
    }

    /// Whether the change needs device-mapper (it activates something).
    fn needs_device_mapper(&self) -> bool {
        match *self {
            Change::LvCreate { request, .. } => request.activate,
            Change::LvActivation { active, .. } => active,
            Change::Snapshot { .. } | Change::ThinPool { .. } | Change::Thin { .. } => true,
            Change::PvCreate { .. }
            | Change::PvRemove { .. }
            | Change::VgCreate { .. }
            | Change::VgExtend { .. }
            | Change::VgRemove { .. }
            | Change::LvResize { .. }
            | Change::LvRemove { .. } => false,
        }
    }

    /// Checks names, devices and sizes before anything runs.
    fn validate(&self, operation: &str) -> Result<()> {
        let refuse = |reason: String| {
            Err(Error::InvalidRequest {
                operation: operation.to_owned(),
                reason,
            })
        };
        match *self {
            Change::PvCreate { device } | Change::PvRemove { device } => {
                check_device(operation, device)
            }
            Change::VgCreate { vg, devices, .. } | Change::VgExtend { vg, devices } => {
                validate_vg_name(vg)?;
                check_devices(operation, devices)
            }
            Change::VgRemove { vg } => validate_vg_name(vg),
            Change::LvCreate { vg, name, request } => {
                validate_lv_name(vg, name)?;
                match request.size {
                    LvSize::PercentFree(p) if !(1..=100).contains(&p) => {
                        refuse(format!("percent of free space must be 1..=100, not {p}"))
                    }
                    LvSize::Bytes(Bytes(0)) | LvSize::Extents(0) => {
                        refuse("the size may not be zero".into())
                    }
                    _ => Ok(()),
                }
            }
            Change::LvResize { vg, name, .. }
            | Change::LvRemove { vg, name }
            | Change::LvActivation { vg, name, .. }
            | Change::ThinPool { vg, name, .. } => validate_lv_name(vg, name),
            Change::Snapshot {
                vg,
                origin: other,
                name,
                ..
            }
            | Change::Thin {
                vg,
                pool: other,
                name,
                ..
            } => {
                validate_lv_name(vg, other)?;
                validate_lv_name(vg, name)
            }
        }
    }
}

/// Validates `change`, refuses it without device-mapper if it needs it, and has `driver` carry
/// it out. Returns the operation's name for the read-back.
pub(crate) fn run<D: Driver + ?Sized>(driver: &D, change: &Change<'_>) -> Result<String> {
    let operation = change.operation();
    change.validate(&operation)?;
    if change.needs_device_mapper() && !driver.has_device_mapper() {
        return Err(Error::DeviceMapperUnavailable {
            operation,
            detail:
                "the kernel has no device-mapper driver (/sys/class/misc/device-mapper is missing)"
                    .into(),
        });
    }
    driver.apply(change, &operation)?;
    Ok(operation)
}
