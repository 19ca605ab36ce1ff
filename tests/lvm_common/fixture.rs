//! Sandboxes: sparse files on fresh loop devices, an lvm2 CLI confined to them, and cleanup on
//! Drop (also during a panic) of exactly what the test created.

use lvm_kit::{CliBackend, Confinement, LvmBackend};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use testkit::fixture::{LoopDevice, SparseFile};
use testkit::harness::{ctx, Failed};

/// A sparse file on a loop device (the shared fixture's), detached and deleted on Drop.
pub struct LoopDisk {
    device: LoopDevice,
    _file: SparseFile,
}

impl LoopDisk {
    /// A new loop device over a sparse file of `size` bytes.
    pub fn new(size: u64) -> Result<Self, Failed> {
        let file = ctx("create sparse backing file", SparseFile::new(size))?;
        let device = ctx("attach loop device", LoopDevice::attach(file.path()))?;
        Ok(LoopDisk {
            device,
            _file: file,
        })
    }

    /// The loop device path.
    pub fn path(&self) -> &Path {
        self.device.path()
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Devices plus a CLI backend confined to them. On Drop, removes every VG and PV on its own
/// devices (the confinement guarantees nothing else is touched), then detaches its loop disks.
pub struct Sandbox {
    /// The CLI backend confined to this sandbox's devices, metadata backups off.
    pub cli: CliBackend,
    devices: Vec<PathBuf>,
    _disks: Vec<LoopDisk>,
    id: String,
}

impl Sandbox {
    /// `count` fresh loop disks of `size` bytes each.
    pub fn new(count: usize, size: u64) -> Result<Self, Failed> {
        let disks = (0..count)
            .map(|_| LoopDisk::new(size))
            .collect::<Result<Vec<_>, _>>()?;
        let devices = disks.iter().map(|d| d.path().to_owned()).collect();
        Self::build(devices, disks)
    }

    /// A sandbox over existing scratch devices that belong to the test, such as the VM's
    /// scratch disk.
    pub fn on_devices(devices: Vec<PathBuf>) -> Result<Self, Failed> {
        Self::build(devices, Vec::new())
    }

    fn build(devices: Vec<PathBuf>, disks: Vec<LoopDisk>) -> Result<Self, Failed> {
        let confinement = ctx("confine", Confinement::new(devices.iter().cloned()))?;
        let cli = CliBackend::new()
            .with_confinement(&confinement)
            .with_metadata_backup(false);
        let id = format!(
            "lk{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Ok(Sandbox {
            cli,
            devices,
            _disks: disks,
            id,
        })
    }

    /// The devices' paths.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.devices.clone()
    }

    /// Device `i`'s path.
    pub fn disk(&self, i: usize) -> &Path {
        &self.devices[i]
    }

    /// A VG name unique to this sandbox.
    pub fn vg_name(&self, tag: &str) -> String {
        format!("{}{tag}", self.id)
    }

    /// Runs the lvm2 tool directly, confined to this sandbox, and returns what it did whatever
    /// its exit status: the oracle for tests that compare refusals.
    pub fn lvm_output(&self, args: &[&str]) -> Result<Output, Failed> {
        let devices: Vec<String> = self
            .paths()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        ctx(
            "run lvm",
            Command::new(lvm_binary())
                .args(args)
                .args([
                    "--devices",
                    &devices.join(","),
                    "--config",
                    "global{activation=0} backup{backup=0 archive=0}",
                ])
                .env("LC_ALL", "C")
                .env("LVM_SUPPRESS_FD_WARNINGS", "1")
                .stdin(Stdio::null())
                .output(),
        )
    }

    /// Runs the lvm2 tool directly with text output, confined to this sandbox: an oracle
    /// independent of the crate's JSON parsing. Returns trimmed stdout.
    pub fn lvm_text(&self, args: &[&str]) -> Result<String, Failed> {
        let out = self.lvm_output(args)?;
        if !out.status.success() {
            return Err(format!(
                "lvm {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `lvm SUB --units b --nosuffix --noheadings -o FIELD OBJ` as a number.
    pub fn lvm_bytes(&self, sub: &str, field: &str, object: &str) -> Result<u64, Failed> {
        let text = self.lvm_text(&[
            sub,
            "--units",
            "b",
            "--nosuffix",
            "--noheadings",
            "-o",
            field,
            object,
        ])?;
        text.parse()
            .map_err(|_| format!("{sub} -o {field} {object}: not a number: {text:?}").into())
    }
}

/// The lvm binary.
pub fn lvm_binary() -> &'static str {
    super::first_existing(&["/usr/sbin/lvm", "/sbin/lvm"])
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        match self.cli.report() {
            Ok(report) => {
                for vg in &report.vgs {
                    if let Err(e) = self.cli.vg_remove(&vg.name) {
                        eprintln!("warning: cleanup vgremove {}: {e}", vg.name);
                    }
                }
                for pv in &report.pvs {
                    if let Err(e) = self.cli.pv_remove(&pv.name) {
                        eprintln!("warning: cleanup pvremove {}: {e}", pv.name.display());
                    }
                }
            }
            Err(e) => eprintln!("warning: cleanup report: {e}"),
        }
    }
}
