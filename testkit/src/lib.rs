//! Test support for the btrfs-lvm workspace, used only by its tests and benchmarks (never by the
//! examples users run): fixtures on real kernel parts ([`fixture`]) and a small loop-device layer
//! ([`loopdev`]) over committed bindings of `linux/loop.h`, so nothing here needs libclang.
#![deny(unsafe_code)]

pub mod fixture;
pub mod loopdev;
mod multi;
