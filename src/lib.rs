//! Umbrella package for `btrfs-kit` and `lvm-kit`: examples, real-kernel tests, benchmarks, and
//! the loop-device test fixture they share.
pub use btrfs_kit as btrfs;
pub use lvm_kit as lvm;

pub mod fixture;
