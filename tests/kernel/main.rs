//! Real-kernel tests: loop devices, real btrfs, real balance. Most need root.
//!
//! The harness is `testkit::harness` (libtest-mimic): root tests are reported as `ignored` with
//! a reason when run unprivileged, and listed at the end; with `CI=true`, or as root, every root
//! test runs and one that cannot set up fails; the oracle tier runs with `BTRFS_ORACLE=1`.
//!
//! Each test registers itself next to its function with `testkit::register!`; a new module is
//! declared here with `mod`.

mod bad_input;
mod balance_background;
mod balance_filters;
mod closed_pipes;
mod corrupt;
mod data;
mod defrag;
mod defrag_example;
mod devstats;
mod example_bin;
mod examples;
mod fiemap;
mod fill;
mod loop_device;
mod mixed;
mod mkfs;
mod mkfs_example;
mod progs;
mod quota;
mod scrub;
mod scrub_example;
mod signals;
mod space;
mod space_share;
mod subvolume;
mod subvolume_delete;
mod subvolume_example;
mod subvolume_list;
mod sysfs;
mod trim;
mod unprivileged;

fn main() {
    if let Some(code) = bad_input::child_probe() {
        std::process::exit(code);
    }
    if let Some(code) = subvolume_list::child_probe() {
        std::process::exit(code);
    }
    if let Some(code) = subvolume_delete::child_probe() {
        std::process::exit(code);
    }
    if let Some(code) = defrag::child_probe() {
        std::process::exit(code);
    }
    if let Some(code) = devstats::child_probe() {
        std::process::exit(code);
    }
    testkit::harness::run(testkit::harness::registered())
}
