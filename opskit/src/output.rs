//! Printing that survives a closed pipe.
//!
//! Rust ignores SIGPIPE, so a write to a pipe whose reader has exited fails with EPIPE, and
//! `println!` panics on it ("failed printing to stdout: Broken pipe", exit 101). Here every
//! line goes through [`out_line`], which notices EPIPE and either ends the program the way a
//! Unix filter ends (killed by SIGPIPE) or, inside [`keep_going`], drops the output and lets
//! the work finish.

use std::fmt;
use std::io::{ErrorKind, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The exit status a shell reports for a program killed by SIGPIPE (128 + 13): what
/// `cmd | head -1` gives when `cmd` writes after `head` has exited.
pub const EXIT_CLOSED_PIPE: u8 = 141;

/// Set once a write to stdout failed with EPIPE; later output is dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// How many [`KeepGoing`] guards are alive.
static KEEP_GOING: AtomicUsize = AtomicUsize::new(0);

/// Whether stdout's reader has gone away.
pub fn stdout_closed() -> bool {
    CLOSED.load(Ordering::SeqCst)
}

/// While alive, a closed stdout no longer ends the program: output is dropped and the work
/// goes on. Made by [`keep_going`].
#[derive(Debug)]
#[must_use = "the work keeps going only while the guard lives"]
pub struct KeepGoing(());

/// Marks a stretch of work that must finish (or stop at a clean point) even if stdout's reader
/// goes away, e.g. a balance policy: a kill in the middle would leave its remaining steps
/// undone. See [`run`](crate::run) for how the program ends afterwards.
pub fn keep_going() -> KeepGoing {
    KEEP_GOING.fetch_add(1, Ordering::SeqCst);
    KeepGoing(())
}

impl Drop for KeepGoing {
    fn drop(&mut self) {
        KEEP_GOING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Ends the process as a Unix filter does when its reader exits: killed by SIGPIPE, silently.
fn die_of_closed_pipe() -> ! {
    let _ = std::io::stderr().flush();
    let _ = signal_hook::low_level::emulate_default_handler(signal_hook::consts::SIGPIPE);
    // Only reached if the signal could not end the process.
    std::process::exit(EXIT_CLOSED_PIPE.into())
}

/// Writes one line to stdout. On EPIPE: ends the program by SIGPIPE, or inside [`keep_going`]
/// drops this and every later line. Another write error (a full disk behind a redirection)
/// is reported on stderr once and the output is dropped from then on; the program's exit code
/// then says it failed (see [`run`](crate::run)).
pub fn out_line(args: fmt::Arguments<'_>) {
    if stdout_closed() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let result = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    drop(out);
    if let Err(e) = result {
        CLOSED.store(true, Ordering::SeqCst);
        if e.kind() == ErrorKind::BrokenPipe {
            if KEEP_GOING.load(Ordering::SeqCst) == 0 {
                die_of_closed_pipe();
            }
        } else {
            WRITE_FAILED.store(true, Ordering::SeqCst);
            err_line(format_args!("error: writing to stdout: {e}"));
        }
    }
}

/// Set when stdout failed with something other than EPIPE.
static WRITE_FAILED: AtomicBool = AtomicBool::new(false);

/// Writes one line to stderr, ignoring errors: a diagnostic must never bring a program down.
pub fn err_line(args: fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// Prints a line to stdout through [`out_line`](crate::out_line): quiet on a closed
/// pipe. Same arguments as `println!`.
#[macro_export]
macro_rules! outln {
    () => { $crate::out_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::out_line(format_args!($($arg)*)) };
}

/// Prints a line to stderr through [`err_line`](crate::err_line), ignoring errors.
/// Same arguments as `eprintln!`.
#[macro_export]
macro_rules! errln {
    () => { $crate::err_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::err_line(format_args!($($arg)*)) };
}

/// Catches what a stray `println!` (in code that does not use [`out_line`]) does on a closed
/// pipe: its panic becomes the same quiet SIGPIPE end. Every other panic keeps the default
/// report.
pub(crate) fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        let printing = message.starts_with("failed printing to stdout")
            || message.starts_with("failed printing to stderr");
        if printing && message.contains("Broken pipe") {
            die_of_closed_pipe();
        }
        default(info);
    }));
}

/// The process's exit status for the body's `code`: `code` itself, except that a program
/// whose stdout reader went away and that has nothing else to report (code 0) ends by SIGPIPE,
/// and one whose stdout failed otherwise exits 1.
pub(crate) fn finish(code: u8) -> ExitCode {
    if !stdout_closed() {
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.flush() {
            if e.kind() == ErrorKind::BrokenPipe {
                CLOSED.store(true, Ordering::SeqCst);
            } else {
                err_line(format_args!("error: writing to stdout: {e}"));
                return ExitCode::from(1);
            }
        }
    }
    if code == 0 && WRITE_FAILED.load(Ordering::SeqCst) {
        return ExitCode::from(1);
    }
    if code == 0 && stdout_closed() {
        die_of_closed_pipe();
    }
    ExitCode::from(code)
}
