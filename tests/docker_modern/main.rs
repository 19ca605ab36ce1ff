//! Today's Docker on our btrfs: the cached Debian sid userland's Docker 28, containerd 2.1 and
//! runc (`testkit::userland`), each program chrooted in a private mount namespace, on a loop
//! btrfs made by our mkfs, with no network. Three ways of storing images, each a trial running
//! the seed scenario (image without a registry, a web container, the filesystem filled to
//! ENOSPC and recovered with our balance policy):
//!
//! a. the legacy btrfs graphdriver (as the 20.10 tier);
//! b. the containerd image store on dockerd's own managed containerd;
//! c. a system-style containerd started by the test: first its trap (containerd's root off the
//!    btrfs), then the remedy (its root a subvolume of the btrfs).
//!
//! Root only; unprivileged the trials are listed as skipped. As root without a prepared
//! userland they fail, saying how to prepare it (`bash .ci/sid-userland prepare`).
//! Each way's table is printed and written to `$CARGO_TARGET_TMPDIR/docker-modern-*.json`;
//! run with `--nocapture` to see it.

// Shared with the 20.10 tier (tests/docker) and the kernel tier.
#[allow(dead_code)]
#[path = "../docker/daemon.rs"]
mod daemon;
#[allow(dead_code)]
#[path = "../kernel/data.rs"]
mod data;
#[allow(dead_code)]
#[path = "../kernel/example_bin.rs"]
mod example_bin;
#[path = "../docker/filling.rs"]
mod filling;
#[path = "../docker/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "../docker/image.rs"]
mod image;
#[allow(dead_code)]
#[path = "../docker/layout.rs"]
mod layout;
#[allow(dead_code)]
#[path = "../docker/procs.rs"]
mod procs;
#[path = "../docker/report.rs"]
mod report;

mod census;
mod containerd;
mod rig;
mod seed;
mod trap;
mod ways;

fn main() -> std::process::ExitCode {
    testkit::harness::run(testkit::harness::registered())
}
