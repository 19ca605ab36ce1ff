//! The real client: Debian's Docker (`docker.io`) with its btrfs storage driver on a loop btrfs
//! made by our mkfs, through the real client, with no network (images from busybox-static).
//! Root only; unprivileged every test is reported as ignored, with the reason, and listed at
//! the end. The oracle test (`BTRFS_ORACLE=1`) compares our listing with btrfs-progs'.
//!
//! The scenario's table (step, outcome, time) is printed and written to
//! `$CARGO_TARGET_TMPDIR/docker-report.json`; run with `--nocapture` to see it.

// The kernel tier's helpers (check, write_until_full, the example runner, the progs oracle).
#[allow(dead_code)]
#[path = "../kernel/util.rs"]
mod util;

mod crash;
mod daemon;
mod http;
mod image;
mod layout;
mod oracle;
mod procs;
mod quota;
mod report;
mod scenario;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

// The root gate and the oracle gate work as in tests/kernel/main.rs.

/// A test that needs root: skipped with a reason when unprivileged, failed under CI without root.
pub fn root_test(name: &str, test: fn() -> Result<(), Failed>) -> Trial {
    Trial::ignorable_test(name.to_string(), move || {
        if testkit::fixture::is_root() {
            test().map(|()| Completion::Completed)
        } else if testkit::fixture::root_tests_required() {
            Err("this root test runs under CI=true but the process is not root".into())
        } else {
            Ok(Completion::ignored_with(
                "needs root (run as root, or with CI=true to require it)",
            ))
        }
    })
    .with_kind("root")
}

/// An oracle-tier test: ignored with a reason unless `BTRFS_ORACLE=1`; then a root test.
pub fn oracle_test(name: &str, test: fn() -> Result<(), Failed>) -> Trial {
    if std::env::var("BTRFS_ORACLE").is_ok_and(|v| v == "1") {
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
    let args = Arguments::from_args();
    let trials: Vec<Trial> = [scenario::trials(), oracle::trials()]
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
