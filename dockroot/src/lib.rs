//! dockroot: keep Docker's data root healthy on LVM + btrfs.
#![warn(missing_docs)]

pub mod cli;
