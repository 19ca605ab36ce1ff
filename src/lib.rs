//! Umbrella package for `btrfs-kit` and `lvm-kit`: examples, real-kernel tests and benchmarks.
pub use btrfs_kit as btrfs;
pub use lvm_kit as lvm;
