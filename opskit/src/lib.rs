//! What the command-line programs of this workspace (dockroot, the examples) and its libraries
//! share, in one small crate that needs nothing but the Rust toolchain:
//!
//! * [`run`], [`outln!`] and [`errln!`]: output that survives a closed pipe. When stdout is a
//!   pipe whose reader has exited, a program ends at once the way a Unix filter does, **killed
//!   by SIGPIPE** (a shell shows status 141, `yes | head -1` behaves the same), with no message
//!   and no backtrace. Work that must not stop half-way (a balance policy, a provision) runs
//!   inside [`keep_going`]: output is then dropped and the work finishes; the program ends by
//!   SIGPIPE afterwards unless it has an exit code of its own to report (an error, a paused or
//!   cancelled balance), which then wins, since stderr still tells the story.
//! * [`Interrupts`]: SIGINT and SIGTERM counted on a signal thread, so a program can react
//!   while its main thread is blocked (e.g. in a balance pause that waits for a 1 GiB chunk).
//!   Programs that install no [`Interrupts`] keep the default: SIGINT and SIGTERM end them at
//!   once, which is right for programs that only read and print.
//! * [`write_atomically`]: replace a file so that readers (and a crash) see the old content or
//!   the new, never a part.
//! * [`HolderLock`]: an exclusive `flock` whose holder writes its pid and start time into the
//!   lock file, so the next one can say who holds it.
//! * [`ByteSize`]: one byte-count type, with binary-unit parsing and display, and lvm2's unit
//!   rules as an adapter ([`ByteSize::parse_lvm2`], module [`lvm2`]).
#![warn(missing_docs)]

mod atomic;
mod lock;
pub mod lvm2;
mod output;
mod signals;
mod size;

pub use atomic::write_atomically;
pub use lock::{holder as lock_holder, Holder, HolderLock, LockError};
pub use output::{err_line, keep_going, out_line, stdout_closed, KeepGoing, EXIT_CLOSED_PIPE};
pub use signals::{Interrupts, Signal};
pub use size::{ByteSize, InvalidSize};

use std::process::ExitCode;

/// Runs a program's body and ends the process with its exit code, handling a closed stdout as
/// described in the [crate docs](crate). Call it first thing in `main`:
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     opskit::run(|| {
///         opskit::outln!("hello");
///         0
///     })
/// }
/// ```
pub fn run(body: impl FnOnce() -> u8) -> ExitCode {
    output::install_panic_hook();
    let code = body();
    output::finish(code)
}
