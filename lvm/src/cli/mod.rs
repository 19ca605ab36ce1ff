//! The lvm2 command-line backend (the default).

mod runner;
mod version;

pub use version::LvmVersion;

use crate::backend::{
    resize_target, Confinement, LvCreate, LvSize, LvmBackend, NewSize, ThinPoolCreate,
};
use crate::classify::{self, is_same_size, Target};
use crate::error::{Error, Result};
use crate::model::{LogicalVolume, PhysicalVolume, Report, VolumeGroup};
use crate::name::{validate_lv_name, validate_vg_name};
use crate::size::Bytes;
use runner::{Failed, Settings};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// LVM through the lvm2 tools. Cheap to clone; the lvm2 version is detected on first use.
#[derive(Debug, Clone)]
pub struct CliBackend {
    settings: Settings,
    version: OnceLock<LvmVersion>,
}

impl Default for CliBackend {
    fn default() -> Self {
        Self::new()
    }
}

/// Size as an lvm2 argument in 512-byte sectors (`24s`), rounded up: lvm2 rejects byte sizes
/// that are not a multiple of 512 ("Size is not a multiple of 512").
fn size_arg(size: Bytes) -> OsString {
    format!("{}s", size.get().div_ceil(512)).into()
}

fn check_device(operation: &str, device: &Path) -> Result<()> {
    let text = device.to_str().unwrap_or("");
    if !device.is_absolute() || text.starts_with('-') || text.is_empty() {
        return Err(Error::InvalidRequest {
            operation: operation.to_owned(),
            reason: format!("device {device:?} must be an absolute UTF-8 path"),
        });
    }
    Ok(())
}

/// Whether the kernel's device-mapper driver is loaded.
///
/// `/dev/mapper/control` is no proof: libdevmapper creates that node itself, so it can exist on
/// a kernel without device-mapper (opening it then fails with ENODEV). The driver's misc device
/// in sysfs is the reliable sign.
pub fn device_mapper_loaded() -> bool {
    Path::new("/sys/class/misc/device-mapper").exists()
}

impl CliBackend {
    /// A backend using the system's `lvm` binary, detecting udev (`/run/udev/control`) and
    /// device-mapper (see [`device_mapper_loaded`]), writing metadata backups, unconfined.
    pub fn new() -> Self {
        CliBackend {
            settings: Settings {
                lvm: runner::find_lvm(),
                devices: None,
                udev: Path::new("/run/udev/control").exists(),
                device_mapper: device_mapper_loaded(),
                metadata_backup: true,
                wait_for_locks: true,
            },
            version: OnceLock::new(),
        }
    }

    /// Confines every command to these devices (`--devices`, or a filter before lvm2 2.03.12):
    /// nothing else is scanned, seen or changed.
    pub fn with_confinement(mut self, confinement: &Confinement) -> Self {
        self.settings.devices = Some(confinement.devices().to_vec());
        self
    }

    /// Uses this `lvm` binary (an absolute path).
    pub fn with_lvm_binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.lvm = path.into();
        self
    }

    /// Overrides udev detection: without udev, lvm2 neither waits for udev nor asks it for devices.
    pub fn with_udev(mut self, udev: bool) -> Self {
        self.settings.udev = udev;
        self
    }

    /// Overrides device-mapper detection. Without it, activation is refused with
    /// [`Error::DeviceMapperUnavailable`] and lvm2 runs with `global/activation=0`.
    pub fn with_device_mapper(mut self, available: bool) -> Self {
        self.settings.device_mapper = available;
        self
    }

    /// Whether lvm2 writes metadata backups and archives under /etc/lvm (default yes). Tests
    /// turn this off so they leave nothing behind.
    pub fn with_metadata_backup(mut self, backup: bool) -> Self {
        self.settings.metadata_backup = backup;
        self
    }

    /// Whether a command waits for a VG lock held by another LVM command (lvm2's default, `true`)
    /// or fails at once with [`Error::Busy`] (`false`).
    pub fn with_lock_wait(mut self, wait: bool) -> Self {
        self.settings.wait_for_locks = wait;
        self
    }

    /// Whether device-mapper is available (activation possible).
    pub fn device_mapper_available(&self) -> bool {
        self.settings.device_mapper
    }

    /// The lvm2 version (detected once, by running `lvm version`).
    pub fn version(&self) -> Result<LvmVersion> {
        if let Some(v) = self.version.get() {
            return Ok(*v);
        }
        let v = runner::detect_version(&self.settings.lvm)?;
        Ok(*self.version.get_or_init(|| v))
    }

    /// The command line that `subcommand args` would run, for logging and dry runs.
    pub fn command_line(&self, subcommand: &str, args: &[OsString]) -> Result<Vec<OsString>> {
        let mut v = vec![self.settings.lvm.clone().into_os_string()];
        v.extend(runner::argv(
            &self.settings,
            self.version()?,
            subcommand,
            args,
        ));
        Ok(v)
    }

    fn run(
        &self,
        operation: &str,
        target: &Target,
        subcommand: &str,
        args: Vec<OsString>,
    ) -> Result<crate::report::Document> {
        let version = self.version()?;
        runner::run(
            &self.settings,
            version,
            operation,
            target,
            subcommand,
            &args,
        )
        .map(|o| o.doc)
    }

    fn require_device_mapper(&self, operation: &str) -> Result<()> {
        if self.settings.device_mapper {
            return Ok(());
        }
        Err(Error::DeviceMapperUnavailable {
            operation: operation.to_owned(),
            detail:
                "the kernel has no device-mapper driver (/sys/class/misc/device-mapper is missing)"
                    .into(),
        })
    }

    /// A snapshot of one VG only (`lvm fullreport VG`).
    pub fn vg_report(&self, vg: &str) -> Result<Report> {
        validate_vg_name(vg)?;
        let operation = format!("report VG {vg}");
        let doc = self.run(&operation, &Target::vg(vg), "fullreport", vec![vg.into()])?;
        Ok(Report::from_document(&doc))
    }

    fn created_lv(&self, vg: &str, name: &str) -> Result<LogicalVolume> {
        self.vg_report(vg)?
            .lv(vg, name)
            .cloned()
            .ok_or_else(|| Error::Parse {
                operation: format!("read back LV {vg}/{name}"),
                detail: "lvm2 reported success but the LV is not in the report".into(),
            })
    }

    fn lv_and_extent(&self, vg: &str, name: &str) -> Result<(LogicalVolume, Bytes)> {
        let report = self.vg_report(vg)?;
        let extent = report.vg(vg).map(|v| v.extent_size).unwrap_or_default();
        let lv = report.find_lv(vg, name)?.clone();
        Ok((lv, extent))
    }

    fn resize(
        &self,
        subcommand: &str,
        vg: &str,
        name: &str,
        size: NewSize,
    ) -> Result<LogicalVolume> {
        validate_lv_name(vg, name)?;
        let operation = format!("{subcommand} {vg}/{name}");
        let (lv, extent) = self.lv_and_extent(vg, name)?;
        let grow_only = subcommand == "lvextend";
        let Some(target) = resize_target(&operation, lv.size, extent, size, grow_only)? else {
            return Ok(lv);
        };
        let args = vec!["-L".into(), size_arg(target), format!("{vg}/{name}").into()];
        let version = self.version()?;
        match runner::run_raw(&self.settings, version, &operation, subcommand, &args) {
            Ok(_) => {}
            // Someone else resized it to this size meanwhile: still the size asked for.
            Err(Failed::Command { messages, .. }) if is_same_size(&messages) => {}
            Err(Failed::Command { messages, failure }) => {
                return Err(classify::classify(
                    &operation,
                    &Target::lv(vg, name),
                    &messages,
                    failure,
                ))
            }
            Err(Failed::Error(e)) => return Err(e),
        }
        self.created_lv(vg, name)
    }

    fn devices_args(operation: &str, devices: &[&Path]) -> Result<Vec<OsString>> {
        if devices.is_empty() {
            return Err(Error::InvalidRequest {
                operation: operation.to_owned(),
                reason: "no devices given".into(),
            });
        }
        devices
            .iter()
            .map(|d| check_device(operation, d).map(|()| d.as_os_str().to_owned()))
            .collect()
    }
}

impl LvmBackend for CliBackend {
    fn report(&self) -> Result<Report> {
        let doc = self.run(
            "report all PVs, VGs and LVs",
            &Target::all(),
            "fullreport",
            Vec::new(),
        )?;
        Ok(Report::from_document(&doc))
    }

    fn vg(&self, name: &str) -> Result<VolumeGroup> {
        self.vg_report(name)?.find_vg(name).cloned()
    }

    fn lv(&self, vg: &str, name: &str) -> Result<LogicalVolume> {
        validate_lv_name(vg, name)?;
        Ok(self.lv_and_extent(vg, name)?.0)
    }

    fn pv_create(&self, device: &Path) -> Result<PhysicalVolume> {
        let operation = format!("pvcreate {}", device.display());
        check_device(&operation, device)?;
        self.run(
            &operation,
            &Target::pv(&device.display().to_string()),
            "pvcreate",
            vec![device.into()],
        )?;
        self.pv(device)
    }

    fn pv_remove(&self, device: &Path) -> Result<()> {
        let operation = format!("pvremove {}", device.display());
        check_device(&operation, device)?;
        self.run(
            &operation,
            &Target::pv(&device.display().to_string()),
            "pvremove",
            vec![device.into()],
        )?;
        Ok(())
    }

    fn vg_create(
        &self,
        name: &str,
        devices: &[&Path],
        extent_size: Option<Bytes>,
    ) -> Result<VolumeGroup> {
        validate_vg_name(name)?;
        let operation = format!("vgcreate {name}");
        let mut args: Vec<OsString> = Vec::new();
        if let Some(size) = extent_size {
            args.extend(["-s".into(), size_arg(size)]);
        }
        args.push(name.into());
        args.extend(Self::devices_args(&operation, devices)?);
        self.run(&operation, &Target::vg(name), "vgcreate", args)?;
        self.vg(name)
    }

    fn vg_extend(&self, name: &str, devices: &[&Path]) -> Result<VolumeGroup> {
        validate_vg_name(name)?;
        let operation = format!("vgextend {name}");
        let mut args: Vec<OsString> = vec![name.into()];
        args.extend(Self::devices_args(&operation, devices)?);
        self.run(&operation, &Target::vg(name), "vgextend", args)?;
        self.vg(name)
    }

    fn vg_remove(&self, name: &str) -> Result<()> {
        validate_vg_name(name)?;
        let operation = format!("vgremove {name}");
        self.run(&operation, &Target::vg(name), "vgremove", vec![name.into()])?;
        Ok(())
    }

    fn lv_create(&self, vg: &str, name: &str, request: LvCreate) -> Result<LogicalVolume> {
        validate_lv_name(vg, name)?;
        let operation = format!("lvcreate {vg}/{name}");
        let mut args: Vec<OsString> = vec!["--type".into(), "linear".into()];
        match request.size {
            LvSize::Bytes(b) => args.extend(["-L".into(), size_arg(b)]),
            LvSize::Extents(n) => args.extend(["-l".into(), n.to_string().into()]),
            LvSize::PercentFree(p) if (1..=100).contains(&p) => {
                args.extend(["-l".into(), format!("{p}%FREE").into()])
            }
            LvSize::PercentFree(p) => {
                return Err(Error::InvalidRequest {
                    operation,
                    reason: format!("percent of free space must be 1..=100, not {p}"),
                })
            }
        }
        if request.activate {
            self.require_device_mapper(&operation)?;
            args.extend(["-ay".into(), "-Z".into()]);
            args.push(if request.zero { "y" } else { "n" }.into());
        } else {
            args.extend(["-an", "-Zn"].map(OsString::from));
        }
        args.extend(["-n".into(), name.into(), vg.into()]);
        self.run(&operation, &Target::lv(vg, name), "lvcreate", args)?;
        self.created_lv(vg, name)
    }

    fn lv_extend(&self, vg: &str, name: &str, size: NewSize) -> Result<LogicalVolume> {
        self.resize("lvextend", vg, name, size)
    }

    fn lv_resize(&self, vg: &str, name: &str, size: NewSize) -> Result<LogicalVolume> {
        self.resize("lvresize", vg, name, size)
    }

    fn lv_remove(&self, vg: &str, name: &str) -> Result<()> {
        validate_lv_name(vg, name)?;
        let operation = format!("lvremove {vg}/{name}");
        self.run(
            &operation,
            &Target::lv(vg, name),
            "lvremove",
            vec![format!("{vg}/{name}").into()],
        )?;
        Ok(())
    }

    fn lv_activate(&self, vg: &str, name: &str) -> Result<()> {
        validate_lv_name(vg, name)?;
        let operation = format!("activate {vg}/{name}");
        self.require_device_mapper(&operation)?;
        let args = vec!["-ay".into(), format!("{vg}/{name}").into()];
        self.run(&operation, &Target::lv(vg, name), "lvchange", args)?;
        Ok(())
    }

    fn lv_deactivate(&self, vg: &str, name: &str) -> Result<()> {
        validate_lv_name(vg, name)?;
        let operation = format!("deactivate {vg}/{name}");
        let args = vec!["-an".into(), format!("{vg}/{name}").into()];
        self.run(&operation, &Target::lv(vg, name), "lvchange", args)?;
        Ok(())
    }

    fn snapshot_create(
        &self,
        vg: &str,
        origin: &str,
        name: &str,
        size: Bytes,
    ) -> Result<LogicalVolume> {
        validate_lv_name(vg, origin)?;
        validate_lv_name(vg, name)?;
        let operation = format!("snapshot {vg}/{origin} as {name}");
        self.require_device_mapper(&operation)?;
        let args = vec![
            "-s".into(),
            "-L".into(),
            size_arg(size),
            "-n".into(),
            name.into(),
            format!("{vg}/{origin}").into(),
        ];
        self.run(&operation, &Target::lv(vg, name), "lvcreate", args)?;
        self.created_lv(vg, name)
    }

    fn thin_pool_create(
        &self,
        vg: &str,
        name: &str,
        request: ThinPoolCreate,
    ) -> Result<LogicalVolume> {
        validate_lv_name(vg, name)?;
        let operation = format!("create thin pool {vg}/{name}");
        self.require_device_mapper(&operation)?;
        let args = vec![
            "--type".into(),
            "thin-pool".into(),
            "-L".into(),
            size_arg(request.size),
            "-n".into(),
            name.into(),
            vg.into(),
        ];
        self.run(&operation, &Target::lv(vg, name), "lvcreate", args)?;
        self.created_lv(vg, name)
    }

    fn thin_create(
        &self,
        vg: &str,
        pool: &str,
        name: &str,
        virtual_size: Bytes,
    ) -> Result<LogicalVolume> {
        validate_lv_name(vg, pool)?;
        validate_lv_name(vg, name)?;
        let operation = format!("create thin LV {vg}/{name} in pool {pool}");
        self.require_device_mapper(&operation)?;
        let args = vec![
            "--type".into(),
            "thin".into(),
            "-V".into(),
            size_arg(virtual_size),
            "--thinpool".into(),
            pool.into(),
            "-n".into(),
            name.into(),
            vg.into(),
        ];
        self.run(&operation, &Target::lv(vg, name), "lvcreate", args)?;
        self.created_lv(vg, name)
    }
}
