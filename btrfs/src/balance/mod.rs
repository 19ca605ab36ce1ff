//! Balance: rewrite chunks to reclaim unallocated space, or convert profiles.
//!
//! * [`Balance`] says what to balance: per-kind [`ChunkFilters`] (usage, limit, convert...),
//!   or the explicit [`Balance::full`].
//! * [`Filesystem::balance`] blocks; [`Filesystem::balance_background`] returns a
//!   [`BalanceHandle`] with `progress()`, `pause()`, `cancel()` and `wait()`.
//! * [`Filesystem::balance_status`], [`Filesystem::balance_pause`],
//!   [`Filesystem::balance_cancel`] and [`Filesystem::balance_resume`] act on a balance started
//!   by anyone.
//! * [`DailyPolicy`] is btrfsmaintenance's daily usage-filtered sequence; a [`Sequence`] runs
//!   it (or any list of requests) step by step through a [`StepRunner`], skipping steps no
//!   chunk qualifies for, and reports each step in a [`SequenceReport`].
//! * With the feature `cli`, `cli::SignalAwareRunner` is the [`StepRunner`] of command-line
//!   front ends: a progress bar on stderr, the first SIGINT/SIGTERM pauses, the second cancels.
//!
//! All of it needs CAP_SYS_ADMIN.
//!
//! # Filter strings
//!
//! [`ChunkFilters`] parse from btrfs-progs' syntax (`usage=0..50,limit=4`). A typo must never
//! become a wider balance than the one written, so the parser is strict where btrfs-progs is
//! loose, and loose only where btrfs-progs accepts something harmless (every case, with its
//! reason, is a row of the table test in `balance/parse.rs`):
//!
//! * **The empty string** means "no filter": every chunk of the kind (`-d` alone).
//! * **Whitespace**: ASCII whitespace around the whole list is dropped (`" usage=5 "` is
//!   `usage=5`); any other whitespace, anywhere in the list (around a comma, a name, an `=`,
//!   inside a value, a no-break space), is refused. A list that is blank or holds only commas
//!   (`" "`, `"  ,  "`, `","`) is refused: it names no filter, and taking it as "no filter"
//!   would turn a typo into a full balance of the kind.
//! * **Commas**: empty items between filters are skipped (`usage=5,,limit=2`, a trailing
//!   comma), as btrfs-progs does. A filter given twice is refused (btrfs-progs silently keeps
//!   the last, or merges `profiles`).
//! * **Numbers** are plain ASCII decimal digits: no sign, no space, no unit.
//! * **Ranges** are `A..B`, `A..` or `..B`; a bare `..` is refused (it would mean everything).
//!   `usage`, `limit` and `stripes` allow `A == B`; `drange` and `vrange` are half-open byte
//!   ranges and need `A < B`, as in btrfs-progs.
//! * **Single values**: `usage=N` and `limit=N` have their own meaning (below N %, at most N
//!   chunks); `stripes`, `drange` and `vrange` take only ranges (`stripes=1` is refused: write
//!   `stripes=1..1`), as in btrfs-progs.
//! * **Profiles** are case-insensitive; in `profiles=a|b` empty alternatives are skipped
//!   (`profiles=raid1|` and `profiles=|raid1` are `profiles=raid1`, as btrfs-progs reads them),
//!   but at least one profile must be named.
//! * `devid=0` is refused (no device has id 0); `soft` takes no value.
//!
//! Semantic checks across filters (soft without convert, drange without devid, usage above
//! 100 %) are [`ChunkFilters::validate`]'s job, run when a balance starts.
//!
//! [`Filesystem::balance`]: crate::Filesystem::balance
//! [`Filesystem::balance_background`]: crate::Filesystem::balance_background
//! [`Filesystem::balance_status`]: crate::Filesystem::balance_status
//! [`Filesystem::balance_pause`]: crate::Filesystem::balance_pause
//! [`Filesystem::balance_cancel`]: crate::Filesystem::balance_cancel
//! [`Filesystem::balance_resume`]: crate::Filesystem::balance_resume

mod background;
mod candidates;
#[cfg(feature = "cli")]
pub mod cli;
mod filters;
mod parse;
mod policy;
mod request;
mod run;
mod sequence;

pub use background::BalanceHandle;
pub use filters::{AddressRange, ChunkFilters, LimitFilter, UsageFilter};
pub use parse::FilterParseError;
pub use policy::{DailyPolicy, PolicyStep};
pub use request::Balance;
pub use run::{BalanceOutcome, BalanceProgress, BalanceStatus};
pub use sequence::{
    Blocking, Sequence, SequenceReport, SequenceState, Step, StepReport, StepRunner, StepState,
};
