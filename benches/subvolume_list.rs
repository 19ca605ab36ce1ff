//! Subvolume listing benchmark: our iterator (privileged and unprivileged), `btrfs subvolume
//! list` spawned and parsed, and libbtrfsutil's C iterator, on a loop filesystem holding
//! `BENCH_SUBVOLUMES` (default 10 000) subvolumes. Also the peak heap of our iterator at a
//! tenth of that count and at the full count, to show that memory stays flat.
//!
//! ```text
//! sudo cargo bench --bench subvolume_list            # needs root, btrfs-progs, libbtrfsutil-dev
//! BENCH_SUBVOLUMES=100000 sudo -E cargo bench --bench subvolume_list
//! ```
//!
//! Every listing includes each subvolume's info (uuid, times, flags...): libbtrfsutil runs
//! `btrfs_util_subvolume_iterator_next_info`, btrfs-progs `list -a -u -q -p`.
#![warn(clippy::undocumented_unsafe_blocks)]

use btrfs_kit::subvolume::{self, Entry, Mode};
use btrfs_kit::Filesystem;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::fixture::{is_root, Scratch};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{peak_since, start_peak, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

const RUNS: usize = 5;

const C_HARNESS: &str = r#"
#include <btrfsutil.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[2], "unprivileged") == 0 && setuid(65534) != 0) return 2;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct btrfs_util_subvolume_iterator *it;
    if (btrfs_util_create_subvolume_iterator(argv[1], 0, 0, &it)) return 3;
    struct btrfs_util_subvolume_info info;
    char *path;
    long n = 0;
    while (btrfs_util_subvolume_iterator_next_info(it, &path, &info) == BTRFS_UTIL_OK) {
        n++;
        free(path);
    }
    btrfs_util_destroy_subvolume_iterator(it);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%ld %lld\n", n, (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
    return 0;
}
"#;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Subvolumes `from..to`: 100 per directory; every tenth nested in the one before it.
fn populate(m: &Path, from: usize, to: usize) {
    for i in from..to {
        let dir = m.join(format!("d{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir(&dir).expect("mkdir");
        }
        let path = if i % 10 == 9 {
            dir.join(format!("s{:02}/n", (i - 1) % 100))
        } else {
            dir.join(format!("s{:02}", i % 100))
        };
        subvolume::create(&path).expect("create subvolume");
    }
}

/// Lists with our iterator; (count, elapsed, peak heap bytes during the listing).
fn ours(m: &Path, mode: Mode) -> (usize, Duration, usize) {
    let fs = Filesystem::open(m).expect("open");
    let base = start_peak();
    let start = Instant::now();
    let mut n = 0;
    for entry in fs.subvolumes().mode(mode).iter().expect("iter") {
        if let Entry::Subvolume(s) = entry.expect("entry") {
            std::hint::black_box(&s);
            n += 1;
        }
    }
    (n, start.elapsed(), peak_since(base))
}

fn progs(m: &Path) -> (usize, Duration) {
    let start = Instant::now();
    let out = Command::new("btrfs")
        .args(["subvolume", "list", "-a", "-u", "-q", "-p"])
        .arg(m)
        .output()
        .expect("run btrfs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let n = text
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|id| id.parse::<u64>().ok())
                .is_some()
        })
        .count();
    (n, start.elapsed())
}

fn libbtrfsutil(exe: &Path, m: &Path, unprivileged: bool) -> (usize, Duration) {
    let mut cmd = Command::new(exe);
    cmd.arg(m);
    if unprivileged {
        cmd.arg("unprivileged");
    }
    let out = cmd.output().expect("run the C harness");
    assert!(out.status.success(), "C harness failed: {:?}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut w = text.split_whitespace();
    let n = w.next().and_then(|n| n.parse().ok()).expect("count");
    let ns: u64 = w.next().and_then(|n| n.parse().ok()).expect("ns");
    (n, Duration::from_nanos(ns))
}

fn build_c_harness(dir: &Path) -> Option<std::path::PathBuf> {
    let src = dir.join("iter.c");
    let exe = dir.join("iter");
    std::fs::write(&src, C_HARNESS).ok()?;
    let ok = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg("-lbtrfsutil")
        .status()
        .ok()?
        .success();
    ok.then_some(exe)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !is_root() {
        println!("subvolume_list bench: needs root (loop devices, mkfs); skipped");
        return;
    }
    let n: usize = std::env::var("BENCH_SUBVOLUMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let size = (4u64 << 30).max(n as u64 * 200 * 1024);
    let scratch = Scratch::btrfs(size).expect("scratch btrfs");
    let m = scratch.path();
    let tmp = tempfile::tempdir().expect("tempdir");
    let c = build_c_harness(tmp.path());

    let small = n / 10;
    let t = Instant::now();
    populate(m, 0, small);
    let (count_small, _, heap_small) = ours(m, Mode::Privileged);
    let (_, _, heap_small_unpriv) = ours(m, Mode::Unprivileged);
    populate(m, small, n);
    println!("created {n} subvolumes in {:?}", t.elapsed());
    Filesystem::open(m).expect("open").sync().expect("sync");

    let mut rows: Vec<(String, usize, Duration)> = Vec::new();
    let mut heap_full = (0, 0);
    for (name, mode) in [
        ("btrfs-kit, privileged", Mode::Privileged),
        ("btrfs-kit, unprivileged", Mode::Unprivileged),
    ] {
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..RUNS {
            let (c, d, heap) = ours(m, mode);
            count = c;
            times.push(d);
            if mode == Mode::Privileged {
                heap_full.0 = heap;
            } else {
                heap_full.1 = heap;
            }
        }
        rows.push((name.into(), count, median(times)));
    }
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..RUNS {
        let (c, d) = progs(m);
        count = c;
        times.push(d);
    }
    rows.push((
        "btrfs subvolume list -a -u -q -p (spawned, parsed)".into(),
        count,
        median(times),
    ));
    match &c {
        Some(exe) => {
            for (name, unpriv) in [
                ("libbtrfsutil next_info, privileged", false),
                ("libbtrfsutil next_info, unprivileged (uid 65534)", true),
            ] {
                let mut times = Vec::new();
                let mut count = 0;
                for _ in 0..RUNS {
                    let (c, d) = libbtrfsutil(exe, m, unpriv);
                    count = c;
                    times.push(d);
                }
                rows.push((name.into(), count, median(times)));
            }
        }
        None => println!("libbtrfsutil harness not built (install libbtrfsutil-dev); skipping it"),
    }

    let ours_priv = rows[0].2;
    println!("\n| lister | subvolumes | median of {RUNS} | vs btrfs-kit privileged |");
    println!("|---|---:|---:|---:|");
    for (name, count, d) in &rows {
        println!(
            "| {name} | {count} | {:.1} ms | {:.2}x |",
            d.as_secs_f64() * 1e3,
            d.as_secs_f64() / ours_priv.as_secs_f64()
        );
    }
    println!(
        "\npeak heap of the iterator: privileged {heap_small} B at {count_small} subvolumes, {} B at {n}; unprivileged {heap_small_unpriv} B / {} B",
        heap_full.0, heap_full.1
    );
}
