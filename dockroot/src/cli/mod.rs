//! What every command-line program of this workspace shares, now in the support crate opskit:
//! a quiet exit when the reader of stdout goes away, and SIGINT/SIGTERM handled on a thread of
//! their own (see `opskit`'s crate docs), plus btrfs-kit's balance runner. These re-exports
//! keep dockroot's paths (`crate::cli::...`, `crate::outln!`) working.

/// The balance runner: btrfs-kit's `balance::cli` (the first signal pauses, the second
/// cancels).
pub use btrfs_kit::balance::cli as balance;
pub use opskit::{
    err_line, keep_going, out_line, run, stdout_closed, Interrupts, KeepGoing, Signal,
    EXIT_CLOSED_PIPE,
};
