//! Real-kernel tests: loop devices, real btrfs, real balance. Most need root.
//!
//! A custom harness (libtest-mimic) so that root tests are reported as `ignored` with a reason
//! when run unprivileged, and listed at the end. With `CI=true`, or as root, every root test runs
//! and one that cannot set up fails.
//!
//! Each module registers its trials in `trials()`. A test returns `Result<(), Failed>`; panics
//! fail the test too.

mod bad_input;
mod balance_background;
mod balance_filters;
mod corrupt;
mod devstats;
mod examples;
mod fill;
mod kmsg;
mod loop_device;
mod mkfs;
mod quota;
mod scrub;
mod scrub_example;
mod space;
mod subvolume;
mod subvolume_example;
mod subvolume_list;
mod sysfs;
mod util;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// Runs a root test body: skipped with a reason when unprivileged, failed under CI without root.
pub fn root_gate(test: impl FnOnce() -> Result<(), Failed>) -> Result<Completion, Failed> {
    if testkit::fixture::is_root() {
        test().map(|()| Completion::Completed)
    } else if testkit::fixture::root_tests_required() {
        Err(
            "this root test runs under CI=true but the process is not root: it cannot set up"
                .into(),
        )
    } else {
        Ok(Completion::ignored_with(
            "needs root (run as root, or with CI=true to require it)",
        ))
    }
}

/// A test that needs root (see [`root_gate`]).
pub fn root_test(name: &str, test: fn() -> Result<(), Failed>) -> Trial {
    Trial::ignorable_test(name.to_string(), move || root_gate(test)).with_kind("root")
}

/// Whether the oracle tier (tests that compare with btrfs-progs) was asked for.
pub fn oracle_enabled() -> bool {
    std::env::var("BTRFS_ORACLE").is_ok_and(|v| v == "1")
}

/// An oracle-tier test: ignored with a reason unless `BTRFS_ORACLE=1`; then a root test. The
/// default suite needs no btrfs-progs binary; CI runs this tier after installing btrfs-progs.
pub fn oracle_test(name: &str, test: fn() -> Result<(), Failed>) -> Trial {
    if oracle_enabled() {
        return root_test(name, test).with_kind("oracle");
    }
    Trial::ignorable_test(name.to_string(), || {
        Ok(Completion::ignored_with(
            "oracle tier: set BTRFS_ORACLE=1 (needs btrfs-progs)",
        ))
    })
    .with_kind("oracle")
}

fn main() {
    if let Some(code) = bad_input::child_probe() {
        std::process::exit(code);
    }
    if let Some(code) = subvolume_list::child_probe() {
        std::process::exit(code);
    }
    if let Some(code) = devstats::child_probe() {
        std::process::exit(code);
    }
    let args = Arguments::from_args();
    let trials: Vec<Trial> = [
        space::trials(),
        balance_filters::trials(),
        balance_background::trials(),
        bad_input::trials(),
        fill::trials(),
        examples::trials(),
        subvolume::trials(),
        quota::trials(),
        subvolume_list::trials(),
        subvolume_example::trials(),
        mkfs::trials(),
        loop_device::trials(),
        scrub::trials(),
        scrub_example::trials(),
        devstats::trials(),
        sysfs::trials(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let skipped: Vec<String> = if testkit::fixture::is_root() {
        Vec::new()
    } else {
        trials
            .iter()
            .filter(|t| t.kind() == "root")
            .map(|t| t.name().to_string())
            .filter(|n| args.filter.as_ref().is_none_or(|f| n.contains(f.as_str())))
            .collect()
    };
    let conclusion = libtest_mimic::run(&args, trials);
    if !skipped.is_empty() && !testkit::fixture::root_tests_required() {
        println!(
            "skipped {} root tests (not root): {}",
            skipped.len(),
            skipped.join(", ")
        );
    }
    conclusion.exit();
}
