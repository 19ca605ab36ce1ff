//! Test support for the btrfs-lvm workspace, used only by its tests and benchmarks (never by the
//! examples users run): fixtures on real kernel parts ([`fixture`]) and a small loop-device layer
//! ([`loopdev`]) over committed bindings of `linux/loop.h`, so nothing here needs libclang; and
//! the one test harness of the integration tests ([`harness`]: tiers, root gate, trial names,
//! `ensure!`).
#![deny(unsafe_code)]

pub mod fixture;
pub mod harness;
pub mod loopdev;
