//! Native mkfs vs `mkfs.btrfs`, on the same 1 GiB sparse image and on a loop device.
//!
//! ```text
//! sudo cargo bench --bench mkfs                # needs root (loop device) and btrfs-progs
//! BENCH_PAIRS=5 cargo bench --bench mkfs -- --smoke   # one short pair of each, no timings
//! ```
//!
//! Runs alternate A, B, A, B on the same target; each run formats from scratch (force). Prints
//! the median and min–max of each side and the ratio mkfs.btrfs ÷ native pair by pair.
#![warn(clippy::undocumented_unsafe_blocks)]

use btrfs_kit::mkfs::{mkfs, MkfsOptions};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::fixture::{LoopDevice, SparseFile};

const GIB: u64 = 1 << 30;

fn native(target: &Path) -> Duration {
    let mut options = MkfsOptions::default();
    options.force = true;
    let start = Instant::now();
    mkfs(target, &options).expect("native mkfs");
    start.elapsed()
}

fn progs(target: &Path) -> Duration {
    let start = Instant::now();
    let status = Command::new("mkfs.btrfs")
        .args(["-f", "-q"])
        .arg(target)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run mkfs.btrfs");
    let elapsed = start.elapsed();
    assert!(status.success(), "mkfs.btrfs failed");
    elapsed
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn range(v: &[f64]) -> (f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(0.0, f64::max);
    (min, max)
}

fn row(name: &str, target: &Path, pairs: usize) {
    let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..pairs {
        let a = native(target).as_secs_f64() * 1e3;
        let b = progs(target).as_secs_f64() * 1e3;
        ours.push(a);
        theirs.push(b);
        ratios.push(b / a);
    }
    let ((omin, omax), (tmin, tmax), (rmin, rmax)) = (range(&ours), range(&theirs), range(&ratios));
    println!(
        "| {name} | {:.1} ms ({omin:.1}–{omax:.1}) | {:.1} ms ({tmin:.1}–{tmax:.1}) | {:.2}× ({rmin:.2}–{rmax:.2}) | {pairs} |",
        median(ours),
        median(theirs),
        median(ratios),
    );
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let pairs = if smoke {
        1
    } else {
        std::env::var("BENCH_PAIRS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(15)
    };
    if !nix::unistd::geteuid().is_root() {
        println!("mkfs bench: needs root for the loop device; skipped");
        return;
    }
    println!("| target (1 GiB) | native: median (min–max) | mkfs.btrfs: median (min–max) | ratio mkfs.btrfs ÷ native | pairs |");
    println!("|---|---|---|---|---|");
    let image = SparseFile::new(GIB).expect("sparse image");
    row("sparse file", image.path(), pairs);
    let device = LoopDevice::attach(image.path()).expect("loop device");
    row("loop device", device.path(), pairs);
    if smoke {
        println!("(smoke mode: one pair, not a measurement)");
    }
}
