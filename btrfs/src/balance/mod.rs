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
//!
//! All of it needs CAP_SYS_ADMIN.
//!
//! [`Filesystem::balance`]: crate::Filesystem::balance
//! [`Filesystem::balance_background`]: crate::Filesystem::balance_background
//! [`Filesystem::balance_status`]: crate::Filesystem::balance_status
//! [`Filesystem::balance_pause`]: crate::Filesystem::balance_pause
//! [`Filesystem::balance_cancel`]: crate::Filesystem::balance_cancel
//! [`Filesystem::balance_resume`]: crate::Filesystem::balance_resume

mod background;
mod candidates;
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
