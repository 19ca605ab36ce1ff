//! The host side of a test tier that runs in the QEMU guest of `.ci/lvm-vm.sh` (a kernel with
//! device-mapper): boot the guest with a test binary as its command, then check that each of
//! its guest trials ran and that all of them passed.

use crate::ensure;
use crate::harness::Failed;
use std::path::{Path, PathBuf};
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

/// A trial that runs in the guest, given the guest's scratch disk.
pub type GuestTest = fn(&Path) -> Result<(), Failed>;

/// A guest trial's body, given the guest's scratch disk (for trials built from parameters).
pub type GuestRun = Box<dyn FnOnce(&Path) -> Result<(), Failed> + Send>;

/// A table of named [`GuestTest`]s as [`GuestTier::guest_trials`] takes it.
pub fn guest_table(table: &[(&str, GuestTest)]) -> Vec<(String, GuestRun)> {
    table
        .iter()
        .map(|&(name, test)| (name.to_string(), Box::new(test) as GuestRun))
        .collect()
}

/// The line before a transcript a guest trial prints for the host to keep.
const TRANSCRIPT_START: &str = "=== guest transcript start ===";
/// The line after it.
const TRANSCRIPT_END: &str = "=== guest transcript end ===";

/// Prints `text` between markers, so that [`guest_tier_main`] on the host writes it to the
/// tier's transcript file (the last one printed wins).
pub fn print_transcript(text: &str) {
    println!("{TRANSCRIPT_START}\n{text}{TRANSCRIPT_END}");
}

/// The part of the guest's output between the last transcript markers, if any.
fn transcript_in(log: &str) -> Option<&str> {
    let start = log.rfind(TRANSCRIPT_START)? + TRANSCRIPT_START.len();
    let end = start + log[start..].find(TRANSCRIPT_END)?;
    Some(log[start..end].trim_start_matches('\n'))
}

/// How a test binary with a guest tier is laid out: the guest trials, and the host side.
pub struct GuestTier {
    /// The host trial's name, e.g. `provision_vm::in_qemu`.
    pub host_trial: &'static str,
    /// The workspace holding `.ci/lvm-vm.sh`.
    pub workspace: PathBuf,
    /// The guest's scratch disk size (`None`: the script's default).
    pub disk_size: Option<&'static str>,
    /// The guest trials by name, run in order with one thread ([`guest_table`] makes them of
    /// a table of functions).
    pub guest_trials: Vec<(String, GuestRun)>,
    /// Where the host writes the transcript a guest trial printed ([`print_transcript`]).
    pub transcript: Option<PathBuf>,
}

/// The `main` of such a binary. In the guest ([`DISK_VAR`] set) it runs the guest trials on
/// the scratch disk; on the host, one root trial that boots the guest with this binary, checks
/// every guest trial ran and passed, and keeps the transcript.
pub fn guest_tier_main(tier: GuestTier) -> ! {
    if let Ok(disk) = std::env::var(DISK_VAR) {
        let disk = PathBuf::from(disk);
        let trials = tier
            .guest_trials
            .into_iter()
            .map(|(name, test)| {
                let disk = disk.clone();
                crate::harness::plain(name, move || test(&disk))
            })
            .collect();
        crate::harness::run(trials);
    }
    let GuestTier {
        host_trial,
        workspace,
        disk_size,
        guest_trials,
        transcript,
    } = tier;
    let names: Vec<String> = guest_trials.into_iter().map(|(n, _)| n).collect();
    crate::harness::run(vec![crate::harness::root(host_trial, move || {
        let exe = std::env::current_exe()?;
        let log = run_guest_trials(&workspace, &exe, disk_size, &names)?;
        if let (Some(path), Some(text)) = (transcript, transcript_in(&log)) {
            std::fs::write(&path, text)
                .map_err(|e| format!("write the transcript {}: {e}", path.display()))?;
        }
        Ok(())
    })])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_transcript_between_markers_is_kept() {
        let log = format!(
            "boot\n{TRANSCRIPT_START}\nold{TRANSCRIPT_END}\n{TRANSCRIPT_START}\nnew\nlines\n{TRANSCRIPT_END}\ntest result: ok."
        );
        assert_eq!(transcript_in(&log), Some("new\nlines\n"));
        assert_eq!(transcript_in("no markers"), None);
        assert_eq!(
            transcript_in(&format!("{TRANSCRIPT_START} unterminated")),
            None
        );
    }
}
