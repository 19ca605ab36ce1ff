//! Background balance: pause, status, resume, cancel, concurrent start, standalone control.

use crate::data::{write_file, MIB};
use btrfs_kit::balance::{Balance, BalanceHandle, BalanceOutcome, ChunkFilters};
use btrfs_kit::sysfs::ExclusiveOperation;
use btrfs_kit::{ByteSize, ErrorKind, Filesystem, ResizeTarget};
use std::time::Duration;
use testkit::ensure;
use testkit::fixture::Scratch;
use testkit::harness::Failed;

/// A filesystem with enough data chunks that a full data balance takes several chunk steps.
fn busy_scratch() -> Result<(Scratch, Filesystem), Failed> {
    let scratch = Scratch::btrfs(2048 * MIB)?;
    for i in 0..24 {
        write_file(&scratch.path().join(format!("f{i}")), 32 * MIB, i)?;
    }
    let fs = Filesystem::open(scratch.path())?;
    fs.sync()?;
    Ok((scratch, fs))
}

/// Starts a full data balance in the background and waits until the kernel runs it.
fn start_running(fs: &Filesystem) -> Result<BalanceHandle, Failed> {
    let handle = fs.balance_background(&all_data())?;
    ensure!(
        handle.wait_running(Duration::from_secs(30))?,
        "balance never showed as running"
    );
    Ok(handle)
}

fn all_data() -> Balance {
    Balance::new().data(ChunkFilters::all())
}

testkit::register!(root: pause_status_resume_completes);
fn pause_status_resume_completes() -> Result<(), Failed> {
    let (_scratch, fs) = busy_scratch()?;
    let handle = start_running(&fs)?;
    // A second start while one runs; the error names the library's calls, not a tool's flags.
    match fs.balance(&all_data()) {
        Err(e) if matches!(e.kind(), ErrorKind::BalanceAlreadyRunning) => {
            let text = e.to_string();
            ensure!(
                text.contains("Filesystem::balance_status") && !text.contains("--"),
                "{text}"
            );
        }
        other => return Err(format!("second start while running: {other:?}").into()),
    }
    handle.pause()?;
    let outcome = handle.wait()?;
    let BalanceOutcome::Paused(progress) = outcome else {
        return Err(format!("expected Paused, got {outcome:?}").into());
    };
    let status = fs
        .balance_status()?
        .ok_or("no balance status while paused")?;
    ensure!(!status.running, "status says running after pause");
    ensure!(
        status.request.data == Some(ChunkFilters::all()),
        "status request {:?}",
        status.request,
    );
    ensure!(
        status.progress.relocated >= progress.relocated,
        "status lost progress"
    );
    // A new start while paused is refused too.
    match fs.balance(&all_data()) {
        Err(e) if matches!(e.kind(), ErrorKind::BalanceAlreadyRunning) => {}
        other => return Err(format!("start while paused: {other:?}").into()),
    }
    let resumed = fs.balance_resume_background()?;
    let outcome = resumed.wait()?;
    ensure!(
        matches!(outcome, BalanceOutcome::Completed { .. }),
        "resume ended {outcome:?}"
    );
    ensure!(
        fs.balance_status()?.is_none(),
        "a balance is still reported after completion"
    );
    Ok(())
}

testkit::register!(root: cancel_gives_cancelled);
fn cancel_gives_cancelled() -> Result<(), Failed> {
    let (_scratch, fs) = busy_scratch()?;
    let handle = start_running(&fs)?;
    ensure!(handle.progress()?.is_some(), "no progress while running");
    handle.cancel()?;
    let outcome = handle.wait()?;
    ensure!(
        matches!(outcome, BalanceOutcome::Cancelled(_)),
        "expected Cancelled, got {outcome:?}"
    );
    ensure!(
        fs.balance_status()?.is_none(),
        "a cancelled balance is still reported"
    );
    Ok(())
}

testkit::register!(root: control_without_a_balance_says_not_running);
fn control_without_a_balance_says_not_running() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let fs = Filesystem::open(scratch.path())?;
    ensure!(
        fs.balance_status()?.is_none(),
        "status on an idle filesystem"
    );
    for (name, result) in [
        ("pause", fs.balance_pause()),
        ("cancel", fs.balance_cancel()),
    ] {
        match result {
            Err(e) if matches!(e.kind(), ErrorKind::BalanceNotRunning) => {
                ensure!(e.to_string().contains("no balance"), "{e}")
            }
            other => return Err(format!("{name} on idle fs: {other:?}").into()),
        }
    }
    match fs.balance_resume() {
        Err(e) if matches!(e.kind(), ErrorKind::BalanceNotRunning) => Ok(()),
        other => Err(format!("resume with nothing paused: {other:?}").into()),
    }
}

testkit::register!(root: balance_during_resize_names_the_exclusive_operation);
/// A balance while a shrinking resize relocates chunks: the kernel returns the *positive*
/// BTRFS_ERROR_DEV_EXCL_RUN_IN_PROGRESS, which must become an error naming the operation.
/// The resize can finish before the balance call lands on a loaded machine: then the attempt
/// is repeated on a fresh filesystem (at most three times).
fn balance_during_resize_names_the_exclusive_operation() -> Result<(), Failed> {
    let mut attempts = Vec::new();
    for _ in 0..3 {
        match resize_then_balance()? {
            None => return Ok(()),
            Some(missed) => attempts.push(missed),
        }
    }
    Err(format!("never caught the resize running: {attempts:?}").into())
}

/// One attempt: `None` when the balance met the running resize as expected, else what happened.
fn resize_then_balance() -> Result<Option<String>, Failed> {
    let (scratch, fs) = busy_scratch()?;
    // Holes in every data chunk, so shrinking below the highest chunk relocates it into them.
    for i in (0..24).filter(|i| i % 2 == 1) {
        std::fs::remove_file(scratch.path().join(format!("f{i}")))?;
    }
    fs.sync()?;
    let fs = std::sync::Arc::new(fs);
    let shrinker = std::sync::Arc::clone(&fs);
    // Cut 100 MiB into the highest chunk on the device: the resize must relocate it (into the
    // holes below), which keeps it running for a while.
    let end = fs
        .chunks()?
        .iter()
        .flat_map(|c| {
            c.stripes
                .iter()
                .map(move |s| s.offset + c.stripe_size().bytes())
        })
        .max()
        .ok_or("no chunks")?;
    let target = ByteSize(end - 100 * MIB);
    let resize = std::thread::spawn(move || shrinker.resize(1, ResizeTarget::To(target)));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fs.exclusive_operation().is_none()
        && !resize.is_finished()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    let running = fs.exclusive_operation();
    // A cheap request: the exclusive-operation check comes before any filter is looked at.
    let outcome = fs.balance(&Balance::new().data(ChunkFilters::usage_below(0)));
    let resized = resize.join().map_err(|_| "resize thread panicked")??;
    ensure!(resized == target, "resized to {resized}");
    match (running, outcome) {
        (Some(ExclusiveOperation::Resize), Err(e))
            if matches!(e.kind(), ErrorKind::ExclusiveOperationRunning { .. }) =>
        {
            ensure!(e.to_string().contains("resize"), "{}", e.to_string());
            Ok(None)
        }
        (_, Err(e)) if matches!(e.kind(), ErrorKind::ExclusiveOperationRunning { .. }) => {
            Err(format!("exclusive operation error without a running resize: {e}").into())
        }
        (running, Ok(outcome)) => Ok(Some(format!("resize {running:?}, balance {outcome:?}"))),
        (_, Err(e)) => Err(format!("balance during resize: {e}").into()),
    }
}
