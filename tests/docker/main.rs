//! The real client: Debian's Docker (`docker.io`) with its btrfs storage driver on a loop btrfs
//! made by our mkfs, through the real client, with no network (images from busybox-static).
//! Root only; unprivileged every test is reported as ignored, with the reason, and listed at
//! the end. The oracle test (`BTRFS_ORACLE=1`) compares our listing with btrfs-progs'.
//!
//! The operator's tool (`dockroot doctor` and `check`) runs on the same data root: what it says
//! when the filesystem is full, the orphans Docker made, their removal, the quota rescan.
//!
//! The scenario's table (step, outcome, time) is printed and written to
//! `$CARGO_TARGET_TMPDIR/docker-report.json`; run with `--nocapture` to see it.

// The kernel tier's helpers (write_until_full, the example runner, the progs oracle).
#[allow(dead_code)]
#[path = "../kernel/data.rs"]
mod data;
#[path = "../kernel/example_bin.rs"]
mod example_bin;
#[allow(dead_code)]
#[path = "../kernel/progs.rs"]
mod progs;

// What a monitoring system makes of `dockroot check`, and `doctor --json` read back (shared
// with dockroot's own tests).
#[path = "../../dockroot/tests/support/report.rs"]
mod doctor_report;
#[allow(dead_code)]
#[path = "../../dockroot/tests/support/nagios.rs"]
mod nagios;

mod crash;
mod daemon;
mod filling;
mod http;
mod image;
mod layout;
mod oracle;
mod procs;
mod quota;
mod report;
mod scenario;
mod tool;

fn main() -> std::process::ExitCode {
    // Run as the operator's tool (see `tool`): its whole main, in this process.
    if std::env::var_os(tool::AS_DOCKROOT).is_some() {
        return dockroot::command::main();
    }
    testkit::harness::run(testkit::harness::registered())
}
