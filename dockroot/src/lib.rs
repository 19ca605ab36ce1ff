//! dockroot: keep Docker's data root healthy on LVM + btrfs.
#![warn(missing_docs)]

pub mod app;
pub mod cli;
pub mod config;
pub mod docker;
pub mod doctor;
pub mod du;
pub mod files;
pub mod kernel;
pub mod maintain;
pub mod metrics;
pub mod probe;
pub mod provision;
pub mod status;
pub mod units;

pub use opskit::{errln, outln};
