//! A VG on the QEMU guest's scratch disk, with a private tempdir for the tool's files, for the
//! tests that run in the guest of `.ci/lvm-vm.sh` (`provision_vm`, `upkeep_vm`).
//!
//! On drop, in this order: every mount under the tempdir (deepest first), the VG, the PV, then
//! the tempdir itself. LVM is confined to the disk the guest was given.

use lvm_kit::{CliBackend, Confinement, LvmBackend};
use std::path::{Path, PathBuf};
use std::process::Output;
use testkit::harness::{ctx, Failed};

/// A PV and a VG made on `disk`, and a tempdir; all removed on drop.
pub struct ScratchVg {
    /// The guest's scratch disk (the only device LVM may see).
    pub disk: PathBuf,
    /// The VG's name.
    pub vg: String,
    /// The lvm2 CLI, confined to `disk`, without metadata backups.
    pub lvm: CliBackend,
    dir: tempfile::TempDir,
}

impl ScratchVg {
    /// `pvcreate DISK`, `vgcreate VG DISK` and a tempdir named `PREFIX…`.
    pub fn new(disk: &Path, vg: &str, prefix: &str) -> Result<ScratchVg, Failed> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        let lvm = CliBackend::new()
            .with_confinement(&ctx("confine", Confinement::new([disk]))?)
            .with_metadata_backup(false);
        ctx("pvcreate", lvm.pv_create(disk))?;
        // From here on, drop undoes what was made, also when a later step fails.
        let mut scratch = ScratchVg {
            disk: disk.into(),
            vg: String::new(),
            lvm,
            dir,
        };
        ctx("vgcreate", scratch.lvm.vg_create(vg, &[disk], None))?;
        scratch.vg = vg.into();
        Ok(scratch)
    }

    /// The tempdir.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ScratchVg {
    fn drop(&mut self) {
        if let Ok(table) = btrfs_kit::mounts::MountTable::current() {
            for m in table
                .mounts
                .iter()
                .rev()
                .filter(|m| m.mount_point.starts_with(self.dir.path()))
            {
                if let Err(e) = nix::mount::umount2(&m.mount_point, nix::mount::MntFlags::empty()) {
                    eprintln!("cleanup: umount {}: {e}", m.mount_point.display());
                }
            }
        }
        if !self.vg.is_empty() {
            if let Err(e) = self.lvm.vg_remove(&self.vg) {
                eprintln!("cleanup: vgremove {}: {e}", self.vg);
            }
        }
        if let Err(e) = self.lvm.pv_remove(&self.disk) {
            eprintln!("cleanup: pvremove {}: {e}", self.disk.display());
        }
    }
}

/// An output's status, stdout and stderr, for failure messages and transcripts.
pub fn out_text(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
