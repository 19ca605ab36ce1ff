//! Running a balance from a command line (feature `cli`): a progress bar, and the signal rule
//! every balance front end here follows (dockroot's `maintain`, `examples/balance.rs`).
//!
//! * The first SIGINT or SIGTERM asks the kernel to pause after the current chunk (what
//!   systemd's stop and Ctrl-C should do: nothing is lost, `--resume` continues).
//! * A second one cancels, at once: the kernel checks for a cancel inside the relocation of a
//!   chunk, so this works even while the pause is still waiting for a 1 GiB chunk to finish.
//!   Signals are counted on the signal threads of [`Interrupts`] and pause and cancel are
//!   issued from threads of their own, so the main thread never sits in a blocking call and
//!   sees the second signal as soon as it arrives.
//! * A signal that arrives between two steps of a sequence stops the sequence there.

use super::{BalanceOutcome, Step, StepRunner};
use crate::Filesystem;
use indicatif::{ProgressBar, ProgressStyle};
use opskit::{errln, Interrupts, Signal};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the signal thread asked the kernel for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Pause,
    Cancel,
}

/// After a signal paused the balance, how long a second signal still cancels it.
const CANCEL_WINDOW: Duration = Duration::from_secs(1);

type Requests = Arc<Mutex<Vec<(Control, JoinHandle<crate::Result<()>>)>>>;

/// A [`StepRunner`] that runs each step in the background with a progress bar on stderr and
/// turns signals into pause and cancel requests (see the [module docs](self)).
#[derive(Debug)]
pub struct SignalAwareRunner {
    interrupts: Interrupts,
    /// Signals already acted on (by earlier steps, or before the runner started).
    handled: usize,
    show_progress: bool,
    /// How to resume, shown when a balance pauses, e.g. `balance --resume /mnt`.
    resume_hint: String,
}

impl SignalAwareRunner {
    /// A runner using `interrupts`; `show_progress` draws the bar (hide it for `--json`);
    /// `resume_hint` is the command that resumes a paused balance.
    pub fn new(interrupts: Interrupts, show_progress: bool, resume_hint: String) -> Self {
        let handled = interrupts.count();
        SignalAwareRunner {
            interrupts,
            handled,
            show_progress,
            resume_hint,
        }
    }

    fn bar(&self, label: &str) -> ProgressBar {
        let bar = if self.show_progress {
            ProgressBar::new(0)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {prefix} [{bar:30}] {pos}/{len} chunks relocated, {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar
    }
}

/// Starts `control` on its own thread (a pause blocks until the current chunk is done).
fn request(fs: &Arc<Filesystem>, requests: &Requests, control: Control) {
    let fs = Arc::clone(fs);
    let spawned = std::thread::Builder::new()
        .name(format!("balance-{control:?}").to_lowercase())
        .spawn(move || match control {
            Control::Pause => fs.balance_pause(),
            Control::Cancel => fs.balance_cancel(),
        });
    match spawned {
        Ok(handle) => requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((control, handle)),
        Err(e) => errln!("balance: cannot start the {control:?} request: {e}"),
    }
}

impl StepRunner for SignalAwareRunner {
    fn proceed(&mut self) -> bool {
        self.interrupts.count() == self.handled
    }

    fn run(&mut self, fs: &Filesystem, step: &Step, label: &str) -> crate::Result<BalanceOutcome> {
        let control_fs = Arc::new(fs.try_clone()?);
        let requests: Requests = Arc::default();
        let base = self.handled;
        let handle = match step {
            Step::Start(request) => fs.balance_background(request)?,
            Step::Resume => fs.balance_resume_background()?,
        };
        let bar = self.bar(label);
        // Signals seen, and the controls they call for that are not issued yet: a request
        // waits until the kernel shows the balance (before that it would find none).
        let (mut seen, mut pending) = (base, Vec::new());
        while !handle.is_finished() {
            let now = self
                .interrupts
                .wait_beyond(seen, Duration::from_millis(200));
            for n in seen + 1..=now {
                let signal = self.interrupts.nth(n).unwrap_or(Signal::Interrupt);
                let (control, text) = if n - base == 1 {
                    let again = signal.name();
                    (
                        Control::Pause,
                        format!("{again}: pausing after the current chunk ({again} or Ctrl-C again cancels)"),
                    )
                } else {
                    (
                        Control::Cancel,
                        format!("{}: cancelling the balance", signal.name()),
                    )
                };
                bar.suspend(|| errln!("{text}"));
                pending.push(control);
            }
            seen = now;
            match handle.status() {
                Ok(Some(status)) => {
                    for control in pending.drain(..) {
                        request(&control_fs, &requests, control);
                    }
                    let p = status.progress;
                    bar.set_length(p.expected);
                    bar.set_position(p.relocated);
                    bar.set_message(format!("{} considered", p.considered));
                }
                Ok(None) => {}
                Err(e) => bar.suspend(|| errln!("balance status: {e}")),
            }
            bar.tick();
        }
        bar.finish_and_clear();
        let result = handle.wait();
        let requests = std::mem::take(&mut *requests.lock().unwrap_or_else(|p| p.into_inner()));
        for (control, thread) in requests {
            match thread.join() {
                // Nothing left to pause or cancel: the balance ended first.
                Ok(Ok(())) => {}
                Ok(Err(e)) if matches!(e.kind(), crate::ErrorKind::BalanceNotRunning) => {}
                Ok(Err(e)) => errln!("balance {control:?}: {e}"),
                Err(_) => errln!("balance {control:?}: the request thread panicked"),
            }
        }
        // A balance that failed (with ENOSPC the sequence goes on) leaves the signals that came
        // during it unhandled, so the sequence's next `proceed` stops there.
        let outcome = result?;
        // A pause the kernel honours at once (6.18 stops even a 1 GiB chunk within
        // milliseconds) would end the program before a second Ctrl-C could come: give it a
        // moment, so "press again to cancel" holds.
        if matches!(outcome, BalanceOutcome::Paused(_)) && self.interrupts.count() == base + 1 {
            errln!(
                "paused; {} or Ctrl-C within {} s cancels instead",
                self.interrupts
                    .nth(base + 1)
                    .unwrap_or(Signal::Interrupt)
                    .name(),
                CANCEL_WINDOW.as_secs()
            );
            if self.interrupts.wait_beyond(base + 1, CANCEL_WINDOW) > base + 1 {
                let signal = self.interrupts.nth(base + 2).unwrap_or(Signal::Interrupt);
                errln!("{}: cancelling the paused balance", signal.name());
            }
        }
        // Every second signal means cancel, also one that came after the balance ended.
        self.handled = self.interrupts.count();
        let cancel_requested = self.handled >= base + 2;
        match outcome {
            // A second signal: cancelled, whatever the kernel made of the pause before it.
            // A cancel that arrives while the pause waits for its chunk leaves the balance
            // paused (the kernel honours the pause), so cancel what is left.
            BalanceOutcome::Paused(progress) | BalanceOutcome::Cancelled(progress)
                if cancel_requested =>
            {
                if fs.balance_status()?.is_some_and(|s| !s.running) {
                    match fs.balance_cancel() {
                        Ok(()) => {}
                        Err(e) if matches!(e.kind(), crate::ErrorKind::BalanceNotRunning) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(BalanceOutcome::Cancelled(progress))
            }
            BalanceOutcome::Paused(progress) => {
                errln!(
                    "balance paused; resume with: {} (or cancel it with --cancel)",
                    self.resume_hint
                );
                Ok(BalanceOutcome::Paused(progress))
            }
            other => Ok(other),
        }
    }
}
