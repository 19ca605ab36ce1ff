//! dockroot: keep Docker's data root healthy on LVM + btrfs.
#![warn(missing_docs)]

pub mod backup;
pub mod check;
pub mod command;
pub mod config;
pub mod docker;
pub mod doctor;
pub mod du;
pub mod errno;
pub mod kernel;
pub mod maintain;
pub mod metrics;
pub mod provision;
pub mod report;
pub mod units;

pub use opskit::{errln, outln};
