//! Test support for the btrfs-lvm workspace, used only by its tests and benchmarks (never by the
//! examples users run): fixtures on real kernel parts ([`fixture`]), a small loop-device layer
//! ([`loopdev`]) over committed bindings of `linux/loop.h` (so nothing here needs libclang), the
//! one test harness of the integration tests ([`harness`]: tiers, root gate, trial names,
//! `ensure!`), long-running daemons a test starts and stops by pid ([`daemon`]), a watch on the kernel log for btrfs problems during a test ([`kmsg`]), and the
//! host side of the tiers that run in the QEMU guest ([`vm`]).
// Unsafe code lives only in the loop ioctl layer (`loopdev/ioctl.rs`) and the generated
// bindings; every hand-written `unsafe` block carries a `// SAFETY:` comment.
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod daemon;
pub mod fixture;
pub mod harness;
pub mod kmsg;
pub mod loopdev;
mod multi;
pub mod userland;
pub mod vm;
