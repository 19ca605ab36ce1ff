//! The real client: Debian's Docker (`docker.io`) with its btrfs storage driver on a loop btrfs
//! made by our mkfs, through the real client, with no network (images from busybox-static).
//! Root only; unprivileged every test is reported as ignored, with the reason, and listed at
//! the end. The oracle test (`BTRFS_ORACLE=1`) compares our listing with btrfs-progs'.
//!
//! The scenario's table (step, outcome, time) is printed and written to
//! `$CARGO_TARGET_TMPDIR/docker-report.json`; run with `--nocapture` to see it.

// The kernel tier's helpers (write_until_full, the example runner, the progs oracle).
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

fn main() {
    let trials = [scenario::trials(), oracle::trials()]
        .into_iter()
        .flatten()
        .collect();
    testkit::harness::run(trials)
}
