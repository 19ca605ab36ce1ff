//! Real-kernel tests: loop devices, real btrfs, real balance. Most need root.
//!
//! The harness is `testkit::harness` (libtest-mimic): root tests are reported as `ignored` with
//! a reason when run unprivileged, and listed at the end; with `CI=true`, or as root, every root
//! test runs and one that cannot set up fails; the oracle tier runs with `BTRFS_ORACLE=1`.
//!
//! Each module lists its trials in `trials()` with `testkit::trials!`; a new module is declared
//! and added to [`all_trials`].

mod bad_input;
mod balance_background;
mod balance_filters;
mod closed_pipes;
mod corrupt;
mod defrag;
mod defrag_example;
mod devstats;
mod examples;
mod fiemap;
mod fill;
mod loop_device;
mod mixed;
mod mkfs;
mod mkfs_example;
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
mod util;

/// Every module's trials. A new test module is declared above (a plain `mod`, so `cargo fmt`
/// formats it) and listed here; the compiler flags either half missing (an unused `trials` is
/// dead code, which clippy refuses).
fn all_trials() -> Vec<testkit::harness::Trial> {
    [
        space::trials(),
        balance_filters::trials(),
        balance_background::trials(),
        bad_input::trials(),
        fill::trials(),
        examples::trials(),
        subvolume::trials(),
        subvolume_delete::trials(),
        quota::trials(),
        space_share::trials(),
        subvolume_list::trials(),
        subvolume_example::trials(),
        mkfs::trials(),
        mkfs_example::trials(),
        loop_device::trials(),
        mixed::trials(),
        defrag::trials(),
        fiemap::trials(),
        trim::trials(),
        defrag_example::trials(),
        scrub::trials(),
        scrub_example::trials(),
        devstats::trials(),
        sysfs::trials(),
        closed_pipes::trials(),
        signals::trials(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

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
    testkit::harness::run(all_trials())
}
