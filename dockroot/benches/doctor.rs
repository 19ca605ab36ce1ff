//! What `dockroot doctor` and `dockroot check` cost on a Docker data root with many layers: a
//! loop btrfs holding `BENCH_SUBVOLUMES` (default 10 000) layer subvolumes under
//! `btrfs/subvolumes/`, with Docker's layer store written by hand (image layers, containers
//! with init layers, a few orphans), as moby writes it.
//!
//! ```text
//! sudo cargo bench -p dockroot --bench doctor
//! BENCH_SUBVOLUMES=20000 sudo -E cargo bench -p dockroot --bench doctor
//! ```
//!
//! Each row is the median (and min–max) of `RUNS` runs of the release binary as a monitoring
//! system runs it (a new process each time, output to a pipe), then of the same checks called
//! in-process (`dockroot::doctor::run`), with quotas off and then on (qgroups for every
//! subvolume).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testkit::fixture::{is_root, Scratch};

const RUNS: usize = 11;

fn stats(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn id(n: usize) -> String {
    format!("{n:064x}")
}

fn put(root: &Path, rel: &str, content: &str) -> std::io::Result<()> {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent"))?;
    std::fs::write(path, content)
}

/// Docker's layout with `total` layer subvolumes: 2.5 % containers (rw + init layer), 0.5 %
/// orphans, the rest image layers.
fn build(root: &Path, total: usize) -> Result<(usize, usize), Box<dyn std::error::Error>> {
    let subvolumes = root.join("btrfs/subvolumes");
    std::fs::create_dir_all(&subvolumes)?;
    let orphans = total / 200;
    let containers = total / 80;
    let images = total - orphans - 2 * containers;
    let db = "image/btrfs/layerdb";
    for n in 0..images {
        btrfs_kit::subvolume::create(subvolumes.join(id(n)))?;
        put(
            root,
            &format!("{db}/sha256/{}/cache-id", id(1_000_000 + n)),
            &id(n),
        )?;
    }
    for c in 0..containers {
        let layer = images + c;
        let init = format!("{}-init", id(layer));
        btrfs_kit::subvolume::create(subvolumes.join(&init))?;
        btrfs_kit::subvolume::create(subvolumes.join(id(layer)))?;
        put(
            root,
            &format!("containers/{}/config.v2.json", id(2_000_000 + c)),
            "{}",
        )?;
        let mounts = format!("{db}/mounts/{}", id(2_000_000 + c));
        put(root, &format!("{mounts}/mount-id"), &id(layer))?;
        put(root, &format!("{mounts}/init-id"), &init)?;
    }
    for o in 0..orphans {
        btrfs_kit::subvolume::create(subvolumes.join(id(3_000_000 + o)))?;
    }
    Ok((images + 2 * containers + orphans, orphans))
}

fn time_process(args: &[&str]) -> Result<(Duration, i32), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_dockroot"))
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()?;
    let took = start.elapsed();
    if out.stdout.is_empty() {
        return Err(format!("dockroot {args:?} printed nothing").into());
    }
    Ok((took, out.status.code().unwrap_or(-1)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    if !is_root() {
        eprintln!("doctor bench needs root (loop devices, mounts); skipped");
        return if testkit::fixture::root_tests_required() {
            Err("not root".into())
        } else {
            Ok(())
        };
    }
    let total: usize = std::env::var("BENCH_SUBVOLUMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let scratch = Scratch::btrfs(4 << 30)?;
    let root = scratch.path();
    let started = Instant::now();
    let (made, orphans) = build(root, total)?;
    let fs = btrfs_kit::Filesystem::open(root)?;
    fs.sync()?;
    eprintln!(
        "built {made} layer subvolumes ({orphans} orphans) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let env = tempfile::tempdir()?;
    std::fs::write(env.path().join("dockroot.toml"), "")?;
    let cfg = env.path().join("dockroot.toml");
    let base = [
        "--config",
        cfg.to_str().ok_or("path")?,
        "--docker-config-dir",
        env.path().to_str().ok_or("path")?,
        "--docker-socket",
        env.path().join("none.sock").to_str().ok_or("path")?,
    ]
    .map(String::from);
    let path = root.to_str().ok_or("path")?;
    let config = dockroot::config::Config::load(Some(&cfg))?;
    let mut target = dockroot::doctor::Target::from_config(&config, Some(root.into()));
    target.docker.socket = env.path().join("none.sock");

    println!("| {made} layer subvolumes | quotas | median | min–max |");
    println!("|---|---|---|---|");
    for quotas in [false, true] {
        if quotas {
            fs.enable_quota()?;
            fs.wait_quota_rescan()?;
        }
        let q = if quotas { "on" } else { "off" };
        for (name, cmd) in [("doctor (process)", "doctor"), ("check (process)", "check")] {
            let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
            args.extend([cmd, path]);
            let mut times = Vec::new();
            for _ in 0..RUNS {
                times.push(time_process(&args)?.0);
            }
            let (m, lo, hi) = stats(times);
            println!(
                "| `dockroot {name}` | {q} | {} | {}–{} |",
                ms(m),
                ms(lo),
                ms(hi)
            );
        }
        for (name, scope) in [
            (
                "doctor::run(All) (in-process)",
                dockroot::doctor::Scope::All,
            ),
            (
                "doctor::run(Probe) (in-process)",
                dockroot::doctor::Scope::Probe,
            ),
        ] {
            let mut times = Vec::new();
            for _ in 0..RUNS {
                let t = Instant::now();
                let report = dockroot::doctor::run(&target, scope);
                times.push(t.elapsed());
                if scope == dockroot::doctor::Scope::All {
                    let orphans_check = report.get("docker.orphans").ok_or("no orphan check")?;
                    if !orphans_check
                        .summary
                        .starts_with(&format!("{orphans} of {made}"))
                    {
                        return Err(format!("orphans: {}", orphans_check.summary).into());
                    }
                }
            }
            let (m, lo, hi) = stats(times);
            println!("| `{name}` | {q} | {} | {}–{} |", ms(m), ms(lo), ms(hi));
        }
    }
    println!("\ncommand: sudo cargo bench -p dockroot --bench doctor (BENCH_SUBVOLUMES={total}, {RUNS} runs each)");
    Ok(())
}
