//! Space per layer subvolume: `btrfs_kit::space_share` (TREE_SEARCH of the EXTENT_DATA items)
//! against `btrfs filesystem du -s` (a FIEMAP walk of every file) and `compsize` (a file walk
//! with one TREE_SEARCH per file), on a graph-driver-like tree: a chain of snapshot layers,
//! each adding files and replacing (deleting and rewriting) some of the earlier ones.
//!
//! ```text
//! sudo cargo bench --bench space_share                  # 20 layers, 10 000 files (root)
//! BENCH_FILES=50000 sudo -E cargo bench --bench space_share
//! sudo cargo test --bench space_share -- --smoke         # CI: small tree, figures only
//! ```
//!
//! Every run checks the figures the tools define alike, and fails on a difference:
//!
//! * per layer, `btrfs filesystem du -s --raw` Total = our logical bytes, Exclusive = our
//!   exclusive bytes, Set shared = our shared bytes (exact here: whole files, no compression,
//!   no reflink inside a layer, so each file extent item maps its whole disk extent and FIEMAP's
//!   SHARED means "another layer references it");
//! * `compsize -b` over all layers: Disk Usage = our referenced bytes of the union plus the
//!   inline bytes stored in every layer (compsize counts inline data once per file it meets,
//!   regular extents once per disk extent), Referenced = the sum of our logical bytes plus the
//!   inline files' bytes.
//!
//! The three run alternately, page cache warm (each after one unmeasured run); the table gives
//! medians and ratios. Needs btrfs-progs and compsize (Debian `btrfs-compsize`); a missing
//! compsize is skipped with a note, except in smoke mode.
#![warn(clippy::undocumented_unsafe_blocks)]

use btrfs_kit::space_share::{Scope, SpaceShare};
use btrfs_kit::subvolume::{self, SnapshotOptions};
use btrfs_kit::Filesystem;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::fixture::{is_root, root_tests_required, Scratch};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{peak_since, start_peak, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

struct Shape {
    layers: usize,
    files: usize,
    runs: usize,
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn write_file(path: &Path, size: usize, rng: &mut Rng) {
    let mut buf = vec![0u8; size.div_ceil(8) * 8];
    for w in buf.chunks_exact_mut(8) {
        w.copy_from_slice(&rng.next().to_le_bytes());
    }
    let mut f = std::fs::File::create(path).expect("create file");
    f.write_all(&buf[..size]).expect("write file");
}

/// File sizes of an image's layers: mostly small (a few inline), some of tens to hundreds of KiB.
fn size(rng: &mut Rng) -> usize {
    match rng.next() % 10 {
        0 => 200 + (rng.next() % 1500) as usize,
        1..=6 => 4096 * (1 + (rng.next() % 8) as usize),
        7 | 8 => 4096 * (8 + (rng.next() % 56) as usize),
        _ => 4096 * (64 + (rng.next() % 192) as usize),
    }
}

/// The chain under `root/layers`: `layers` subvolumes, each a snapshot of the one before,
/// `files` new files in all (10 per directory), each later layer replacing a tenth of the
/// files it adds from earlier layers and deleting as many. Returns the layer paths.
fn build(root: &Path, shape: &Shape) -> Vec<PathBuf> {
    let dir = root.join("layers");
    std::fs::create_dir(&dir).expect("mkdir layers");
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut live: Vec<String> = Vec::new();
    let per_layer = shape.files / shape.layers;
    let mut next = 0usize;
    for l in 0..shape.layers {
        let path = dir.join(format!("{l:02}"));
        match paths.last() {
            None => subvolume::create(&path).expect("create layer"),
            Some(prev) => subvolume::snapshot(prev, &path, &SnapshotOptions::writable())
                .expect("snapshot layer"),
        }
        if l > 0 {
            for _ in 0..per_layer / 10 {
                let f = &live[(rng.next() % live.len() as u64) as usize];
                let p = path.join(f);
                std::fs::remove_file(&p).expect("remove for replacing");
                let s = size(&mut rng);
                write_file(&p, s, &mut rng);
            }
            for _ in 0..per_layer / 10 {
                let i = (rng.next() % live.len() as u64) as usize;
                let f = live.swap_remove(i);
                std::fs::remove_file(path.join(f)).expect("delete");
            }
        }
        for _ in 0..per_layer {
            let rel = format!("d{:04}/f{next}", next / 10);
            if next % 10 == 0 {
                std::fs::create_dir(path.join(format!("d{:04}", next / 10))).expect("mkdir");
            }
            let s = size(&mut rng);
            write_file(&path.join(&rel), s, &mut rng);
            live.push(rel);
            next += 1;
        }
        paths.push(path);
    }
    Filesystem::open(root).expect("open").sync().expect("sync");
    paths
}

/// This thread's (user, system) CPU time so far.
fn cpu() -> (Duration, Duration) {
    use nix::sys::resource::{getrusage, UsageWho};
    let u = getrusage(UsageWho::RUSAGE_THREAD).expect("getrusage");
    let d = |t: nix::sys::time::TimeVal| {
        Duration::from_micros(t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64)
    };
    (d(u.user_time()), d(u.system_time()))
}

/// One measurement: the result, wall time, (user, system) CPU time, peak heap.
fn ours(root: &Path, ids: &[u64]) -> (SpaceShare, Duration, (Duration, Duration), usize) {
    let fs = Filesystem::open(root).expect("open");
    let base = start_peak();
    let (u0, s0) = cpu();
    let start = Instant::now();
    let share = fs
        .space_share(&Scope::Subvolumes(ids.to_vec()))
        .expect("space_share");
    let elapsed = start.elapsed();
    let (u1, s1) = cpu();
    (share, elapsed, (u1 - u0, s1 - s0), peak_since(base))
}

/// `btrfs filesystem du -s --raw` over the layers: (Total, Exclusive, Set shared) per layer.
fn progs_du(layers: &[PathBuf]) -> (Vec<(u64, u64, u64)>, Duration) {
    let start = Instant::now();
    let out = Command::new("btrfs")
        .args(["filesystem", "du", "-s", "--raw"])
        .args(layers)
        .output()
        .expect("run btrfs filesystem du");
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "btrfs filesystem du: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| {
            let w: Vec<u64> = l
                .split_whitespace()
                .take(3)
                .map(|n| n.parse().expect("du number"))
                .collect();
            (w[0], w[1], w[2])
        })
        .collect();
    (rows, elapsed)
}

/// `compsize -b` over the layers: (Disk Usage, Referenced) of the TOTAL line.
fn compsize(layers: &[PathBuf]) -> Option<((u64, u64), Duration)> {
    let start = Instant::now();
    let out = Command::new("compsize")
        .arg("-b")
        .args(layers)
        .output()
        .ok()?;
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "compsize: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let total = text
        .lines()
        .find(|l| l.starts_with("TOTAL"))
        .expect("compsize TOTAL line");
    let w: Vec<&str> = total.split_whitespace().collect();
    Some(((w[2].parse().ok()?, w[4].parse().ok()?), elapsed))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    if !is_root() {
        assert!(
            !root_tests_required(),
            "space_share bench: needs root (loop devices, TREE_SEARCH)"
        );
        println!("space_share bench: needs root (loop devices, TREE_SEARCH); skipped");
        return;
    }
    let files: usize = std::env::var("BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let shape = if smoke {
        Shape {
            layers: 5,
            files: 300,
            runs: 1,
        }
    } else {
        Shape {
            layers: 20,
            files,
            runs: 5,
        }
    };
    let scratch =
        Scratch::btrfs((4u64 << 30).max(shape.files as u64 * 128 * 1024)).expect("scratch btrfs");
    let root = scratch.path();
    let t = Instant::now();
    let layers = build(root, &shape);
    let ids: Vec<u64> = layers
        .iter()
        .map(|p| subvolume::subvolume_id(p).expect("layer id"))
        .collect();
    println!(
        "built {} layers, {} files in {:?}",
        shape.layers,
        shape.files,
        t.elapsed()
    );

    // One unmeasured run each: warm caches, and the figures to compare.
    let (share, _, _, _) = ours(root, &ids);
    let (du_rows, _) = progs_du(&layers);
    let comp = compsize(&layers);
    assert!(
        comp.is_some() || !smoke,
        "compsize not found (Debian package btrfs-compsize)"
    );
    for (i, (id, row)) in ids.iter().zip(&du_rows).enumerate() {
        let s = share.subvolume(*id).expect("measured");
        let mine = (s.logical.bytes(), s.exclusive.bytes(), s.shared().bytes());
        assert_eq!(
            mine, *row,
            "layer {i}: ours (logical, exclusive, shared) vs btrfs fi du (Total, Exclusive, Set shared)"
        );
    }
    let total = share.total();
    let inline_stored: u64 = share
        .subvolumes()
        .iter()
        .map(|s| s.inline.stored.bytes())
        .sum();
    let inline_logical: u64 = share
        .subvolumes()
        .iter()
        .map(|s| s.inline.logical.bytes())
        .sum();
    if let Some(((disk, referenced), _)) = comp {
        assert_eq!(
            disk,
            total.referenced.bytes() + inline_stored,
            "compsize Disk Usage vs our referenced (union) + inline stored"
        );
        assert_eq!(
            referenced,
            total.logical.bytes() + inline_logical,
            "compsize Referenced vs our logical + inline"
        );
    }
    println!(
        "figures equal: {} layers against btrfs filesystem du{}; union referenced {} B, logical {} B, {} extents in {} sharing patterns",
        ids.len(),
        if comp.is_some() { " and compsize" } else { "" },
        total.referenced.bytes(),
        total.logical.bytes(),
        share.subvolumes().iter().map(|s| s.extents).sum::<u64>(),
        share.sharing_patterns()
    );
    if smoke {
        return;
    }

    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    let mut heap = 0;
    let (mut user, mut sys) = (Vec::new(), Vec::new());
    for _ in 0..shape.runs {
        let (_, d, (u, s), h) = ours(root, &ids);
        a.push(d);
        user.push(u);
        sys.push(s);
        heap = heap.max(h);
        b.push(progs_du(&layers).1);
        if let Some((_, d)) = compsize(&layers) {
            c.push(d);
        }
    }
    let (a, b) = (median(a), median(b));
    println!(
        "\n| tool, over {} layers ({} files) | median of {} | vs btrfs-kit |",
        shape.layers, shape.files, shape.runs
    );
    println!("|---|---:|---:|");
    println!(
        "| btrfs-kit `space_share` (CPU: user {}, system {}) | {} | 1.00× |",
        ms(median(user)),
        ms(median(sys)),
        ms(a)
    );
    println!(
        "| `btrfs filesystem du -s --raw` | {} | {:.1}× |",
        ms(b),
        b.as_secs_f64() / a.as_secs_f64()
    );
    if !c.is_empty() {
        let c = median(c);
        println!(
            "| `compsize -b` | {} | {:.1}× |",
            ms(c),
            c.as_secs_f64() / a.as_secs_f64()
        );
    } else {
        println!("| `compsize` | not installed | |");
    }
    let extents: u64 = share.subvolumes().iter().map(|s| s.extents).sum();
    println!(
        "\npeak heap of space_share: {heap} B for {extents} extent references of {} layers",
        ids.len()
    );
}
