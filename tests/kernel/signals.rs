//! Issue 15, defect 2 and the signal half of 11: signals sent to a real `balance` process on
//! a real, long balance (1 GiB data chunks, each taking seconds to relocate).
//!
//! * SIGTERM (what systemd sends on stop) pauses cleanly, says how to resume, exits 3, and the
//!   kernel keeps the balance paused. Before: exit 143, no message, the kernel cancelled it.
//! * A second signal cancels: sent as soon as the kernel shows the pause requested (SIGTERM
//!   then SIGINT), or 0.3 s after the first (two Ctrl-C). Before: exit 143 on SIGTERM; two
//!   SIGINTs 0.3 s apart left the balance paused (exit 3), the program gone before the second.
//!
//! On 6.18 the kernel honours a pause within milliseconds even in the middle of a 1 GiB data
//! chunk (its log: `relocating block group` then `balance: paused` 9 ms later), so the pause
//! call never blocks for long here; the runner issues pause and cancel from threads of their
//! own anyway, for kernels where it does.

use crate::data::MIB;
use crate::example_bin::example;
use btrfs_kit::balance::BalanceStatus;
use btrfs_kit::Filesystem;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use testkit::ensure;
use testkit::fixture::Scratch;
use testkit::harness::Failed;

/// A 12 GiB filesystem (the kernel then makes 1 GiB data chunks) with 2.5 GiB of data in
/// them: a full data balance relocates three chunks, each for seconds.
fn big_chunks() -> Result<(Scratch, Filesystem), Failed> {
    let scratch = Scratch::btrfs(12 * 1024 * MIB)?;
    let mut block = vec![0u8; MIB as usize];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for word in block.chunks_exact_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        word.copy_from_slice(&state.to_le_bytes());
    }
    let mut file = std::fs::File::create(scratch.path().join("data"))?;
    for i in 0..2560u64 {
        block[..8].copy_from_slice(&i.to_le_bytes());
        file.write_all(&block)?;
    }
    file.sync_all()?;
    let fs = Filesystem::open(scratch.path())?;
    fs.sync()?;
    let biggest = fs
        .block_groups()?
        .iter()
        .map(|g| g.length.bytes())
        .max()
        .unwrap_or(0);
    ensure!(
        biggest >= 1024 * MIB,
        "largest chunk {biggest} bytes: expected 1 GiB data chunks"
    );
    Ok((scratch, fs))
}

/// Starts `balance PATH -d` (every data chunk) and waits until the kernel runs it.
fn start_balance(fs: &Filesystem, path: &std::path::Path) -> Result<Child, Failed> {
    let child = Command::new(example("balance")?)
        .arg(path)
        .arg("-d")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    wait_for(fs, Duration::from_secs(60), "the balance to run", |s| {
        s.is_some_and(|s| s.running && !s.pause_requested)
    })?;
    Ok(child)
}

/// Polls the kernel's balance status until `pred` holds, or fails after `timeout`.
fn wait_for(
    fs: &Filesystem,
    timeout: Duration,
    what: &str,
    pred: impl Fn(Option<&BalanceStatus>) -> bool,
) -> Result<Option<BalanceStatus>, Failed> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = fs.balance_status()?;
        if pred(status.as_ref()) {
            return Ok(status);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}; status {status:?}").into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn send(child: &Child, signal: Signal) -> Result<(), Failed> {
    kill(Pid::from_raw(child.id() as i32), signal)?;
    Ok(())
}

fn report(out: &Output) -> String {
    format!(
        "{}; stdout: {}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Cancels a balance a test left behind (paused or running), so the filesystem unmounts.
struct CancelOnDrop<'a>(&'a Filesystem);

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.balance_cancel();
    }
}

testkit::register!(root: sigterm_pauses_the_balance_and_says_how_to_resume);
fn sigterm_pauses_the_balance_and_says_how_to_resume() -> Result<(), Failed> {
    let (scratch, fs) = big_chunks()?;
    let _cancel = CancelOnDrop(&fs);
    let child = start_balance(&fs, scratch.path())?;
    send(&child, Signal::SIGTERM)?;
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.code() == Some(3), "exit: {}", report(&out));
    ensure!(
        stderr.contains("SIGTERM: pausing") && stderr.contains("--resume"),
        "no pause message and resume hint: {}",
        report(&out),
    );
    let status = fs.balance_status()?.ok_or("no balance left: not paused")?;
    ensure!(!status.running, "still running: {status:?}");
    // The JSON of --status says the same.
    let status_out = Command::new(example("balance")?)
        .arg(scratch.path())
        .args(["--status", "--json"])
        .output()?;
    let json: serde_json::Value = serde_json::from_slice(&status_out.stdout)?;
    ensure!(json["state"] == "paused", "--status: {json}");
    Ok(())
}

/// Sends `first`, then `second` once the kernel shows the pause requested (or done) plus
/// `gap`; the balance must end cancelled, with nothing left paused.
fn second_signal_cancels(first: Signal, second: Signal, gap: Duration) -> Result<(), Failed> {
    let (scratch, fs) = big_chunks()?;
    let _cancel = CancelOnDrop(&fs);
    let child = start_balance(&fs, scratch.path())?;
    send(&child, first)?;
    let seen = wait_for(
        &fs,
        Duration::from_secs(30),
        "the pause request to reach the kernel",
        |s| s.is_none_or(|s| s.pause_requested || !s.running),
    )?;
    // The gap is the scenario (a second key press a moment later), not a synchronisation.
    std::thread::sleep(gap);
    send(&child, second)?;
    let sent = Instant::now();
    let out = child.wait_with_output()?;
    let took = sent.elapsed();
    ensure!(
        out.status.code() == Some(4),
        "exit (expected 4, cancelled): {}",
        report(&out)
    );
    ensure!(
        String::from_utf8_lossy(&out.stderr).contains("cancelling"),
        "no cancel message: {}",
        report(&out),
    );
    let left = fs.balance_status()?;
    ensure!(
        left.is_none(),
        "a balance is left after the cancel: {left:?}; {}",
        report(&out)
    );
    let state = match &seen {
        Some(s) if s.running => "pause requested, chunk still relocating",
        Some(_) => "already paused",
        None => "no balance",
    };
    eprintln!(
        "{first} then {second} {gap:?} later (kernel: {state}): cancelled, exit {took:?} after the second signal"
    );
    Ok(())
}

testkit::register!(root: sigterm_then_sigint_cancels);
fn sigterm_then_sigint_cancels() -> Result<(), Failed> {
    second_signal_cancels(Signal::SIGTERM, Signal::SIGINT, Duration::ZERO)
}

testkit::register!(root: second_ctrl_c_0_3_s_later_cancels);
fn second_ctrl_c_0_3_s_later_cancels() -> Result<(), Failed> {
    second_signal_cancels(Signal::SIGINT, Signal::SIGINT, Duration::from_millis(300))
}
