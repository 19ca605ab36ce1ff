//! Umbrella package for `btrfs-kit` and `lvm-kit`: the examples users run (`examples/`), the
//! real-kernel tests (`tests/`) and the benchmarks (`benches/`). The test fixtures live in the
//! workspace's `btrfs-lvm-testkit` crate, which only tests and benchmarks depend on.
#![forbid(unsafe_code)]

pub use btrfs_kit as btrfs;
pub use lvm_kit as lvm;
