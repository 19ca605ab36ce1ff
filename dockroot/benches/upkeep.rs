//! The upkeep side by side with what it replaces, in one run on identical loop filesystems:
//!
//! 1. `dockroot maintain` on a filesystem with nothing to do (its scrub and trim recorded,
//!    unallocated above the target) against btrfsmaintenance's `btrfs-balance.sh` (Debian's
//!    `btrfsmaintenance`, its default steps `-dusage=0`, `-dusage=5 10`, `-musage=0`,
//!    `-musage=5`) on a clone of the same image (`SparseFile::clone_with_new_fsid`): wall time
//!    and the transaction commits each run costs (sysfs `commit_stats`). The script runs from a
//!    private copy that reads a private copy of its configuration (`BTRFS_BALANCE_MOUNTPOINTS`
//!    = the clone) instead of `/etc/default/btrfsmaintenance`; the system's file is not read or
//!    touched.
//! 2. A `/metrics` scrape of `dockroot metrics --listen` against one of Debian's node_exporter
//!    with only its btrfs collector, both on localhost: latency per scrape, and each server's
//!    CPU time per scrape and memory (VmHWM, VmRSS) from `/proc`. node_exporter reads every
//!    btrfs filesystem mounted on the host (the count is printed); dockroot reads one, and also
//!    runs every doctor check and reads the scrub and maintain state.
//!
//! ```text
//! sudo cargo bench -p dockroot --bench upkeep
//! BENCH_RUNS=21 BENCH_SCRAPES=200 sudo -E cargo bench -p dockroot --bench upkeep
//! ```

use btrfs_kit::sysfs::FsSysfs;
use btrfs_kit::Filesystem;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::fixture::{is_root, BtrfsOptions, FsKind, Scratch};

const MIB: u64 = 1 << 20;

type Error = Box<dyn std::error::Error>;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn commits(fs: &Filesystem) -> Result<u64, Error> {
    Ok(FsSysfs::for_fs(fs)?
        .commit_stats()?
        .ok_or("no commit_stats (Linux 6.0+)")?
        .commits)
}

fn dockroot() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dockroot"))
}

/// A private configuration for dockroot in `dir`.
fn config(dir: &Path) -> Result<PathBuf, Error> {
    let d = dir.display();
    let path = dir.join("dockroot.toml");
    std::fs::write(
        &path,
        format!(
            "[maintain]\nstate_dir = \"{d}/state\"\nlock_dir = \"{d}/lock\"\n[paths]\nscrub_state_dir = \"{d}/scrub\"\n\
             [docker]\nconfig_dir = \"{d}/etc-docker\"\nsocket = \"{d}/docker.sock\"\npidfile = \"{d}/docker.pid\"\n"
        ),
    )?;
    Ok(path)
}

/// A private copy of btrfsmaintenance's balance script that reads `conf` instead of the
/// system's configuration.
fn balance_script(dir: &Path, mount: &Path) -> Result<PathBuf, Error> {
    let share = Path::new("/usr/share/btrfsmaintenance");
    let script = std::fs::read_to_string(share.join("btrfs-balance.sh")).map_err(|e| {
        format!("btrfsmaintenance is not installed (Debian package btrfsmaintenance): {e}")
    })?;
    let conf = dir.join("btrfsmaintenance.conf");
    std::fs::write(
        &conf,
        format!(
            "BTRFS_LOG_OUTPUT=\"stdout\"\nBTRFS_BALANCE_MOUNTPOINTS=\"{}\"\nBTRFS_BALANCE_PERIOD=\"daily\"\n\
             BTRFS_BALANCE_DUSAGE=\"5 10\"\nBTRFS_BALANCE_MUSAGE=\"5\"\n",
            mount.display()
        ),
    )?;
    let private = script
        .replace("/etc/default/btrfsmaintenance", &conf.display().to_string())
        .replace(
            "/etc/sysconfig/btrfsmaintenance",
            &conf.display().to_string(),
        );
    if private.contains("/etc/default/") || private.contains("/etc/sysconfig/") {
        return Err("the script reads another system file: not run".into());
    }
    let path = dir.join("btrfs-balance.sh");
    std::fs::write(&path, private)?;
    std::fs::copy(
        share.join("btrfsmaintenance-functions"),
        dir.join("btrfsmaintenance-functions"),
    )?;
    Ok(path)
}

/// Times `cmd` `runs` times: (seconds per run, commits per run) on `fs`.
fn measure(
    runs: usize,
    fs: &Filesystem,
    mut cmd: impl FnMut() -> Command,
) -> Result<(Vec<f64>, Vec<u64>), Error> {
    let (mut times, mut commit) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        fs.sync()?;
        let before = commits(fs)?;
        let start = Instant::now();
        let out = cmd().stdin(Stdio::null()).output()?;
        let t = start.elapsed().as_secs_f64();
        if !out.status.success() {
            return Err(format!(
                "{:?}: {}: {}{}",
                cmd(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        fs.sync()?;
        times.push(t);
        commit.push(commits(fs)? - before);
    }
    Ok((times, commit))
}

fn maintain_vs_btrfsmaintenance(runs: usize) -> Result<(), Error> {
    let options = BtrfsOptions::default();
    let original = Scratch::new(2048 * MIB, FsKind::Btrfs(options.clone()))?;
    // A used filesystem: files of several sizes, some deleted.
    for i in 0..300u32 {
        let mut f = std::fs::File::create(original.path().join(format!("f-{i}")))?;
        f.write_all(&vec![i as u8; (64 + (i as usize % 7) * 512) * 1024])?;
    }
    for i in (0..300u32).step_by(3) {
        std::fs::remove_file(original.path().join(format!("f-{i}")))?;
    }
    Filesystem::open(original.path())?.sync()?;
    let image = original.into_image()?;
    let clone = image.clone_with_new_fsid()?;
    let ours = Scratch::mount_image(image, FsKind::Btrfs(options.clone()))?;
    let theirs = Scratch::mount_image(clone, FsKind::Btrfs(options))?;
    let dir = tempfile::tempdir()?;
    let conf = config(dir.path())?;
    // Prime: the first run scrubs and trims; from then on nothing is due.
    let prime = Command::new(dockroot())
        .arg("--config")
        .arg(&conf)
        .args(["maintain", ours.path().to_str().ok_or("path")?])
        .output()?;
    if !prime.status.success() {
        return Err(format!("prime: {}", String::from_utf8_lossy(&prime.stdout)).into());
    }
    let script = balance_script(dir.path(), theirs.path())?;
    let fs_ours = Filesystem::open(ours.path())?;
    let fs_theirs = Filesystem::open(theirs.path())?;
    let mut ours_t = Vec::new();
    let mut ours_c = Vec::new();
    let mut theirs_t = Vec::new();
    let mut theirs_c = Vec::new();
    // Interleaved, so both see the same machine load.
    for _ in 0..runs {
        let (t, c) = measure(1, &fs_ours, || {
            let mut c = Command::new(dockroot());
            c.arg("--config")
                .arg(&conf)
                .arg("maintain")
                .arg(ours.path());
            c
        })?;
        ours_t.extend(t);
        ours_c.extend(c);
        let (t, c) = measure(1, &fs_theirs, || {
            let mut c = Command::new("bash");
            c.arg(&script);
            c
        })?;
        theirs_t.extend(t);
        theirs_c.extend(c);
    }
    let (om, omin, omax) = median(ours_t);
    let (tm, tmin, tmax) = median(theirs_t);
    println!("## maintain on a filesystem with nothing to do vs btrfsmaintenance's btrfs-balance.sh ({runs} runs each, interleaved)\n");
    println!("| | median | min–max | transaction commits per run |");
    println!("|---|---|---|---|");
    println!(
        "| `dockroot maintain` | {:.1} ms | {:.1}–{:.1} ms | {:?} |",
        om * 1e3,
        omin * 1e3,
        omax * 1e3,
        ours_c
    );
    println!(
        "| `btrfs-balance.sh` (btrfsmaintenance, default steps) | {:.1} ms | {:.1}–{:.1} ms | {:?} |",
        tm * 1e3,
        tmin * 1e3,
        tmax * 1e3,
        theirs_c
    );
    println!("\nratio (median): maintain is {:.1}× faster\n", tm / om);
    Ok(())
}

/// utime + stime of `pid` in seconds, and VmHWM, VmRSS in KiB.
fn proc_stats(pid: u32) -> Result<(f64, u64, u64), Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = &stat[stat.rfind(')').ok_or("stat")? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?.unwrap_or(100) as f64;
    let cpu = (f[11].parse::<u64>()? + f[12].parse::<u64>()?) as f64 / ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Ok((cpu, kib("VmHWM:"), kib("VmRSS:")))
}

fn get(addr: &str) -> Result<String, Error> {
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    if !body.starts_with("HTTP/1.") || !body.contains(" 200 ") {
        return Err(format!("{addr}: {}", body.lines().next().unwrap_or("")).into());
    }
    Ok(body)
}

fn free_addr() -> Result<String, Error> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.to_string())
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_up(addr: &str) -> Result<(), Error> {
    let start = Instant::now();
    while get(addr).is_err() {
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!("{addr} did not come up").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn scrape_vs_node_exporter(scrapes: usize) -> Result<(), Error> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    for i in 0..50u32 {
        std::fs::write(
            scratch.path().join(format!("f-{i}")),
            vec![1u8; MIB as usize],
        )?;
    }
    let dir = tempfile::tempdir()?;
    let conf = config(dir.path())?;
    let ours_addr = free_addr()?;
    let ours = Server(
        Command::new(dockroot())
            .arg("--config")
            .arg(&conf)
            .args([
                "metrics",
                scratch.path().to_str().ok_or("path")?,
                "--listen",
                &ours_addr,
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let node_addr = free_addr()?;
    let node = Server(
        Command::new("prometheus-node-exporter")
            .args([
                "--collector.disable-defaults",
                "--collector.btrfs",
                &format!("--web.listen-address={node_addr}"),
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("prometheus-node-exporter (Debian package): {e}"))?,
    );
    wait_up(&ours_addr)?;
    wait_up(&node_addr)?;
    let filesystems = get(&node_addr)?
        .lines()
        .filter(|l| l.starts_with("node_btrfs_info{"))
        .count();
    let mut rows = Vec::new();
    for (name, addr, pid) in [
        ("`dockroot metrics --listen`", &ours_addr, ours.0.id()),
        (
            "node_exporter 1.5 (btrfs collector only)",
            &node_addr,
            node.0.id(),
        ),
    ] {
        for _ in 0..3 {
            get(addr)?;
        }
        let (cpu0, _, _) = proc_stats(pid)?;
        let mut times = Vec::new();
        for _ in 0..scrapes {
            let start = Instant::now();
            get(addr)?;
            times.push(start.elapsed().as_secs_f64());
        }
        let (cpu1, hwm, rss) = proc_stats(pid)?;
        let (m, min, max) = median(times);
        rows.push((name, m, min, max, (cpu1 - cpu0) / scrapes as f64, hwm, rss));
    }
    println!("## a /metrics scrape: dockroot vs node_exporter's btrfs collector ({scrapes} scrapes each; node_exporter sees {filesystems} btrfs filesystem(s) on this host)\n");
    println!("| server | latency median | min–max | CPU per scrape | VmHWM | VmRSS |");
    println!("|---|---|---|---|---|---|");
    for (name, m, min, max, cpu, hwm, rss) in &rows {
        println!(
            "| {name} | {:.2} ms | {:.2}–{:.2} ms | {:.2} ms | {:.1} MiB | {:.1} MiB |",
            m * 1e3,
            min * 1e3,
            max * 1e3,
            cpu * 1e3,
            *hwm as f64 / 1024.0,
            *rss as f64 / 1024.0
        );
    }
    println!(
        "\nratio (median latency): dockroot is {:.1}× faster\n",
        rows[1].1 / rows[0].1
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    if !is_root() {
        println!("upkeep bench: needs root (loop devices, mounts); skipped");
        return Ok(());
    }
    let smoke = std::env::args().any(|a| a == "--smoke");
    let runs = if smoke { 1 } else { env_or("BENCH_RUNS", 11) };
    let scrapes = if smoke {
        3
    } else {
        env_or("BENCH_SCRAPES", 100)
    };
    maintain_vs_btrfsmaintenance(runs)?;
    scrape_vs_node_exporter(scrapes)?;
    if smoke {
        println!("(smoke mode: not a measurement)");
    }
    Ok(())
}
