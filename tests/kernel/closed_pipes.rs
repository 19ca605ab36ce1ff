//! Issue 15, defect 1 and the pipe half of 11: every example run through a pipe whose reader
//! has exited ends quietly, the way a Unix filter does (killed by SIGPIPE, no panic, no
//! backtrace), and a balance policy whose reader goes away after the first line still runs
//! every step.
//!
//! Before the shared closed-pipe handling (now `opskit`) each of these panicked ("failed
//! printing to stdout: Broken pipe", exit 101), and the policy died between its first and
//! second step.

use crate::data::{write_file, MIB};
use crate::example_bin::example;
use btrfs_kit::Filesystem;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use testkit::ensure;
use testkit::fixture::{LoopDevice, Scratch, SparseFile};
use testkit::harness::Failed;
use testkit::kmsg::KmsgWatch;

/// Runs `binary args` with stdout on a pipe whose read end is already closed.
pub fn run_into_closed_pipe(binary: &Path, args: &[&str]) -> Result<Output, Failed> {
    let (reader, writer) = nix::unistd::pipe()?;
    drop(reader);
    Ok(Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()?)
}

/// The process ended as a filter does when its reader is gone: killed by SIGPIPE, silent.
pub fn ended_quietly(what: &str, out: &Output) -> Result<(), Failed> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{what}: noise on stderr: {stderr}",
    );
    ensure!(
        out.status.signal() == Some(nix::libc::SIGPIPE),
        "{what}: {} (expected: killed by SIGPIPE, 141 in a shell); stderr: {stderr}",
        out.status,
    );
    Ok(())
}

/// A PV on a loop device, so that `lvm report` confined to it has a line to print; removed
/// on drop.
struct LoopPv {
    device: LoopDevice,
    _image: SparseFile,
}

impl LoopPv {
    fn new() -> Result<Self, Failed> {
        let image = SparseFile::new(64 * MIB)?;
        let device = LoopDevice::attach(image.path())?;
        let pv = LoopPv {
            device,
            _image: image,
        };
        lvm_kit::LvmBackend::pv_create(&pv.backend()?, pv.device.path())?;
        Ok(pv)
    }

    fn backend(&self) -> Result<lvm_kit::CliBackend, Failed> {
        let confinement = lvm_kit::Confinement::new([self.device.path()])?;
        Ok(lvm_kit::CliBackend::new()
            .with_confinement(&confinement)
            .with_metadata_backup(false))
    }
}

impl Drop for LoopPv {
    fn drop(&mut self) {
        if let Ok(backend) = self.backend() {
            let _ = lvm_kit::LvmBackend::pv_remove(&backend, self.device.path());
        }
    }
}

testkit::register!(root: every_example_ends_quietly_when_its_reader_has_exited);
fn every_example_ends_quietly_when_its_reader_has_exited() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let path = scratch.path().to_str().ok_or("path")?;
    for i in 0..40 {
        btrfs_kit::subvolume::create(scratch.path().join(format!("sv{i}")))?;
    }
    write_file(&scratch.path().join("file"), MIB, 1)?;
    let pv = LoopPv::new()?;
    let pv_dev = pv.device.path().to_str().ok_or("device path")?.to_string();
    let image_dir = tempfile::tempdir()?;
    let image = image_dir.path().join("new.img");
    let image = image.to_str().ok_or("image path")?;
    let size = (256 * MIB).to_string();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("usage", vec![path]),
        ("usage", vec![path, "--json"]),
        ("subvolume", vec!["list", path]),
        ("subvolume", vec!["list", path, "--json"]),
        ("subvolume", vec!["show", path]),
        ("balance", vec![path, "--status"]),
        ("balance", vec![path, "--status", "--json"]),
        ("lvm", vec!["--devices", &pv_dev, "report"]),
        ("lvm", vec!["--devices", &pv_dev, "report", "--json"]),
        ("mkfs", vec!["--size", &size, image]),
        ("trim", vec![path]),
        ("scrub", vec!["status", path]),
        ("scrub", vec!["status", path, "--json"]),
        ("trim", vec![path, "--json"]),
        ("defrag", vec!["--dry-run", path]),
        ("defrag", vec!["--dry-run", "--json", path]),
    ];
    for (name, args) in cases {
        let out = run_into_closed_pipe(&example(name)?, &args)?;
        ended_quietly(&format!("{name} {}", args.join(" ")), &out)?;
    }
    // mkfs wrote its filesystem before it printed: the closed pipe cost only the report.
    ensure!(
        std::fs::metadata(image)?.len() == 256 * MIB,
        "mkfs did not finish its image"
    );
    Ok(())
}

testkit::register!(root: balance_policy_runs_every_step_after_its_reader_exits);
/// `balance PATH | head -1`: the reader takes the first step's line and exits. Every later
/// step must still reach the kernel (its log says `balance: start -musage=5`), nothing may be
/// left running or paused, and the process ends by SIGPIPE without a word.
fn balance_policy_runs_every_step_after_its_reader_exits() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    for i in 0..8 {
        write_file(&scratch.path().join(format!("f{i}")), 16 * MIB, i)?;
    }
    let fs = Filesystem::open(scratch.path())?;
    fs.sync()?;
    let device = scratch
        .device()
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("device name")?
        .to_string();
    let mut kmsg = KmsgWatch::start()?;
    let path = scratch.path().to_str().ok_or("path")?;
    // --no-skip: every step reaches the kernel, so its log shows which steps ran.
    let mut child = Command::new(example("balance")?)
        .args([path, "--no-skip"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut first = String::new();
    {
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        stdout.read_line(&mut first)?;
        // The reader exits here, as `head -1` does.
    }
    let out = child.wait_with_output()?;
    ensure!(
        first.starts_with("step 1/5 -dusage=0:"),
        "first line {first:?}"
    );
    ended_quietly("balance PATH | head -1", &out)?;
    let started: Vec<String> = kmsg
        .btrfs_messages(&device)?
        .into_iter()
        .filter(|m| m.contains("balance: start"))
        .collect();
    for step in [
        "-dusage=0",
        "-dusage=5",
        "-dusage=10",
        "-musage=0",
        "-musage=5",
    ] {
        ensure!(
            started
                .iter()
                .any(|m| m.contains(&format!("balance: start {step}"))),
            "step {step} never reached the kernel; it logged: {started:#?}",
        );
    }
    ensure!(
        fs.balance_status()?.is_none(),
        "a balance was left running or paused"
    );
    Ok(())
}
