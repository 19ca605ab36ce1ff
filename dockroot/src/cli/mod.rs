//! What every command-line program of this workspace shares: a quiet exit when the reader of
//! stdout goes away, and SIGINT/SIGTERM handled on a thread of their own.
//!
//! * [`run`] wraps `main`: it installs the closed-pipe handling and turns the body's exit code
//!   into the process's exit status.
//! * [`outln!`](crate::outln) and [`errln!`](crate::errln) print a line to stdout or stderr.
//!   When stdout is a pipe whose reader has exited, a program ends at once the way a Unix filter
//!   does, **killed by SIGPIPE** (a shell shows status 141, `yes | head -1` behaves the same), with no
//!   message and no backtrace. Work that must not stop half-way (a balance policy, a provision)
//!   runs inside [`keep_going`]: output is then dropped and the work finishes; the program
//!   ends by SIGPIPE afterwards unless it has an exit code of its own to report (an error, a
//!   paused or cancelled balance), which then wins, since stderr still tells the story.
//! * [`Interrupts`] counts SIGINT and SIGTERM on a signal thread, so a program can react
//!   while its main thread is blocked (e.g. in a balance pause that waits for a 1 GiB chunk).
//!   [`balance`] uses it for the rule every balance front end follows: the first signal pauses
//!   the balance cleanly, the second cancels it.
//!
//! Programs that install no [`Interrupts`] keep the default: SIGINT and SIGTERM end them at
//! once, which is right for programs that only read and print.

pub mod balance;
mod output;
mod signals;

pub use output::{err_line, keep_going, out_line, stdout_closed, KeepGoing, EXIT_CLOSED_PIPE};
pub use signals::{Interrupts, Signal};

use std::process::ExitCode;

/// Runs a program's body and ends the process with its exit code, handling a closed stdout as
/// described in the [module docs](self). Call it first thing in `main`:
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     dockroot::cli::run(|| {
///         dockroot::outln!("hello");
///         0
///     })
/// }
/// ```
pub fn run(body: impl FnOnce() -> u8) -> ExitCode {
    output::install_panic_hook();
    let code = body();
    output::finish(code)
}
