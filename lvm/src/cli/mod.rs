//! The lvm2 command-line backend (the default).

mod runner;
mod version;

pub use version::LvmVersion;

use crate::change::{device_mapper_loaded, Change, Driver};
use crate::classify::{self, is_same_size, Target};
use crate::error::Result;
use crate::model::Report;
use crate::name::validate_vg_name;
use crate::request::{Confinement, LvSize};
use crate::size::{Bytes, SECTOR};
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

/// A size as an lvm2 argument in 512-byte sectors (`24s`). The front has rounded it to whole
/// sectors: lvm2 refuses byte sizes that are not a multiple of 512.
fn size_arg(size: Bytes) -> OsString {
    format!("{}s", size.get() / SECTOR).into()
}

/// The lvm2 subcommand and arguments that carry out `change`.
fn command(change: &Change<'_>) -> (&'static str, Vec<OsString>) {
    let os = |s: &str| OsString::from(s);
    let lv = |vg: &str, name: &str| OsString::from(format!("{vg}/{name}"));
    let with_devices = |mut args: Vec<OsString>, devices: &[&Path]| {
        args.extend(devices.iter().map(|d| d.as_os_str().to_owned()));
        args
    };
    match *change {
        Change::PvCreate { device } => ("pvcreate", vec![device.into()]),
        Change::PvRemove { device } => ("pvremove", vec![device.into()]),
        Change::VgCreate {
            vg,
            devices,
            extent_size,
        } => {
            let mut args = Vec::new();
            if let Some(size) = extent_size {
                args.extend([os("-s"), size_arg(size)]);
            }
            args.push(os(vg));
            ("vgcreate", with_devices(args, devices))
        }
        Change::VgExtend { vg, devices } => ("vgextend", with_devices(vec![os(vg)], devices)),
        Change::VgRemove { vg } => ("vgremove", vec![os(vg)]),
        Change::LvCreate { vg, name, request } => {
            let mut args = vec![os("--type"), os("linear")];
            match request.size {
                LvSize::Bytes(b) => args.extend([os("-L"), size_arg(b)]),
                LvSize::Extents(n) => args.extend([os("-l"), n.to_string().into()]),
                LvSize::PercentFree(p) => args.extend([os("-l"), format!("{p}%FREE").into()]),
            }
            args.push(os(if request.activate { "-ay" } else { "-an" }));
            args.push(os(if request.zero { "-Zy" } else { "-Zn" }));
            args.extend([os("-n"), os(name), os(vg)]);
            ("lvcreate", args)
        }
        Change::LvResize {
            vg,
            name,
            target,
            mode,
        } => (
            mode.command(),
            vec![os("-L"), size_arg(target), lv(vg, name)],
        ),
        Change::LvRemove { vg, name } => ("lvremove", vec![lv(vg, name)]),
        Change::LvActivation { vg, name, active } => (
            "lvchange",
            vec![os(if active { "-ay" } else { "-an" }), lv(vg, name)],
        ),
        Change::Snapshot {
            vg,
            origin,
            name,
            size,
        } => (
            "lvcreate",
            vec![
                os("-s"),
                os("-L"),
                size_arg(size),
                os("-n"),
                os(name),
                lv(vg, origin),
            ],
        ),
        Change::ThinPool { vg, name, size } => (
            "lvcreate",
            vec![
                os("--type"),
                os("thin-pool"),
                os("-L"),
                size_arg(size),
                os("-n"),
                os(name),
                os(vg),
            ],
        ),
        Change::Thin {
            vg,
            pool,
            name,
            virtual_size,
        } => (
            "lvcreate",
            vec![
                os("--type"),
                os("thin"),
                os("-V"),
                size_arg(virtual_size),
                os("--thinpool"),
                os(pool),
                os("-n"),
                os(name),
                os(vg),
            ],
        ),
    }
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
    /// [`Error::DeviceMapperUnavailable`](crate::Error::DeviceMapperUnavailable) and lvm2 runs with `global/activation=0`.
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
    /// or fails at once with [`Error::Busy`](crate::Error::Busy) (`false`).
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

    /// A snapshot of one VG only (`lvm fullreport VG`).
    pub fn vg_report(&self, vg: &str) -> Result<Report> {
        validate_vg_name(vg)?;
        let operation = format!("report VG {vg}");
        let doc = self.run(&operation, &Target::vg(vg), "fullreport", vec![vg.into()])?;
        Ok(Report::from_document(&doc))
    }
}

impl Driver for CliBackend {
    fn has_device_mapper(&self) -> bool {
        self.settings.device_mapper
    }

    fn read_report(&self) -> Result<Report> {
        let doc = self.run(
            "report all PVs, VGs and LVs",
            &Target::all(),
            "fullreport",
            Vec::new(),
        )?;
        Ok(Report::from_document(&doc))
    }

    fn read_vg_report(&self, vg: &str) -> Result<Report> {
        self.vg_report(vg)
    }

    fn apply(&self, change: &Change<'_>, operation: &str) -> Result<()> {
        let (subcommand, args) = command(change);
        let version = self.version()?;
        match runner::run_raw(&self.settings, version, operation, subcommand, &args) {
            Ok(_) => Ok(()),
            // Someone else resized the LV to this size meanwhile; the front checks the size.
            Err(Failed::Command { messages, .. })
                if matches!(change, Change::LvResize { .. }) && is_same_size(&messages) =>
            {
                Ok(())
            }
            Err(Failed::Command { messages, failure }) => Err(classify::classify(
                operation,
                &change.target(),
                &messages,
                failure,
            )),
            Err(Failed::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{LvCreate, ResizeMode};

    fn argv(change: Change<'_>) -> (String, Vec<String>) {
        let (sub, args) = command(&change);
        let args = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        (sub.to_owned(), args)
    }

    #[test]
    fn commands_carry_sizes_in_sectors() {
        let lv = Change::LvCreate {
            vg: "vg",
            name: "lv",
            request: LvCreate::size(Bytes::mib(10)).inactive(),
        };
        assert_eq!(
            argv(lv),
            (
                "lvcreate".into(),
                ["--type", "linear", "-L", "20480s", "-an", "-Zn", "-n", "lv", "vg"]
                    .map(String::from)
                    .to_vec()
            )
        );
        let grow = Change::LvResize {
            vg: "vg",
            name: "lv",
            target: Bytes::mib(16),
            mode: ResizeMode::Extend,
        };
        assert_eq!(
            argv(grow),
            (
                "lvextend".into(),
                ["-L", "32768s", "vg/lv"].map(String::from).to_vec()
            )
        );
        let shrink = Change::LvResize {
            vg: "vg",
            name: "lv",
            target: Bytes::mib(8),
            mode: ResizeMode::Resize,
        };
        assert_eq!(argv(shrink).0, "lvresize");
        let disks = [Path::new("/dev/loop3"), Path::new("/dev/loop4")];
        let vg = Change::VgCreate {
            vg: "vg",
            devices: &disks,
            extent_size: Some(Bytes::mib(4)),
        };
        assert_eq!(
            argv(vg).1,
            ["-s", "8192s", "vg", "/dev/loop3", "/dev/loop4"].map(String::from)
        );
    }
}
