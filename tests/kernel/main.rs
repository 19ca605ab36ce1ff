//! Real-kernel tests: loop devices, real btrfs, real balance. Most need root.
//!
//! The harness is `testkit::harness` (libtest-mimic): root tests are reported as `ignored` with
//! a reason when run unprivileged, and listed at the end; with `CI=true`, or as root, every root
//! test runs and one that cannot set up fails; the oracle tier runs with `BTRFS_ORACLE=1`.
//!
//! Each module lists its trials in `trials()` with `testkit::trials!`; a new module is added
//! once, to the list below.

mod corrupt;
mod util;

/// Declares the test modules and collects their trials.
macro_rules! test_modules {
    ($($module:ident),+ $(,)?) => {
        $(mod $module;)+

        /// Every module's trials.
        fn all_trials() -> Vec<testkit::harness::Trial> {
            [$($module::trials()),+].into_iter().flatten().collect()
        }
    };
}

test_modules![
    space,
    balance_filters,
    balance_background,
    bad_input,
    fill,
    examples,
    subvolume,
    subvolume_delete,
    quota,
    subvolume_list,
    subvolume_example,
    mkfs,
    mkfs_example,
    loop_device,
    mixed,
    defrag,
    fiemap,
    trim,
    defrag_example,
    scrub,
    scrub_example,
    devstats,
    sysfs,
    closed_pipes,
    signals,
];

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
