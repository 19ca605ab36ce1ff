//! The host side of a test tier that runs in the QEMU guest of `.ci/lvm-vm.sh` (a kernel with
//! device-mapper): boot the guest with a test binary as its command, then check that each of
//! its guest trials ran and that all of them passed.

use crate::ensure;
use crate::harness::Failed;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The variable that tells a test binary it runs in the guest; it names the scratch disk.
pub const DISK_VAR: &str = "LVM_KIT_VM_DISK";

/// Boots the guest (`.ci/lvm-vm.sh` under `workspace`, scratch disk of `disk_size`, e.g. `4G`,
/// or the script's default), runs the test binary `exe` inside with one thread, and checks
/// that every trial in `names` ran and the run passed. Returns the guest's output.
pub fn run_guest_trials(
    workspace: &Path,
    exe: &Path,
    disk_size: Option<&str>,
    names: &[String],
) -> Result<String, Failed> {
    let started = Instant::now();
    let mut cmd = Command::new("bash");
    cmd.arg(workspace.join(".ci/lvm-vm.sh")).arg("run");
    if let Some(size) = disk_size {
        cmd.args(["--disk-size", size]);
    }
    let out = cmd
        .arg("--")
        .arg(exe)
        .args(["--test-threads=1", "--color=never"])
        .output()
        .map_err(|e| format!("run .ci/lvm-vm.sh: {e}"))?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success(),
        "VM run failed ({}):\n{log}",
        out.status
    );
    for name in names {
        ensure!(
            log.contains(&format!("test {name} ")),
            "{name} did not run in the VM:\n{log}"
        );
    }
    let summary = format!("test result: ok. {} passed; 0 failed", names.len());
    ensure!(
        log.contains(&summary),
        "no '{summary}' in the VM output:\n{log}"
    );
    eprintln!(
        "vm: {} guest tests passed in {:.1} s (boot included)",
        names.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(log)
}
