//! The upkeep commands against the real kernel on loop devices: `maintain`'s lock, its balance
//! judged from the block groups (no ioctl and no commit when nothing is due; empty and nearly
//! empty chunks returned until the unallocated target; ENOSPC on a filesystem filled to the
//! brim; SIGTERM mid-balance; someone else's paused balance), `metrics` checked by `promtool`
//! and compared with Debian's node_exporter on the same filesystem (single device and raid1),
//! and `install-units` checked by `systemd-analyze verify` and the real `systemd-escape`.
//! Auto-grow needs device-mapper: it runs in the QEMU guest (`tests/upkeep_vm.rs`).

mod support;

use btrfs_kit::balance::{Balance, BalanceOutcome, ChunkFilters};
use btrfs_kit::sysfs::FsSysfs;
use btrfs_kit::{BlockGroupKind, Filesystem, Profile};
use dockroot::maintain::MaintainLock;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{bin, prom, text, Env};
use testkit::ensure;
use testkit::fixture::{MultiScratch, Scratch};
use testkit::harness::Failed;

const MIB: u64 = 1 << 20;

fn main() {
    testkit::harness::run(testkit::harness::registered())
}

/// A private environment whose configuration points maintain's state and lock and btrfs-kit's
/// scrub state into its tempdir, plus `extra` TOML.
fn upkeep_env(extra: &str) -> Result<Env, Failed> {
    let env = Env::new()?;
    let r = env.root().display().to_string();
    std::fs::write(
        env.config(),
        format!(
            "[maintain]\nstate_dir = \"{r}/state\"\nlock_dir = \"{r}/lock\"\n{extra}\n[paths]\nscrub_state_dir = \"{r}/scrub\"\n"
        ),
    )?;
    Ok(env)
}

fn lock_dir(env: &Env) -> PathBuf {
    env.root().join("lock")
}

fn s(p: &Path) -> Result<&str, Failed> {
    p.to_str().ok_or_else(|| "non-UTF-8 path".into())
}

/// The JSON lines of a `maintain --json` run.
fn lines(stdout: &[u8]) -> Result<Vec<serde_json::Value>, Failed> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("not JSON ({e}): {l}").into()))
        .collect()
}

/// The `task` line of `task` in a run's lines.
fn task<'a>(lines: &'a [serde_json::Value], name: &str) -> Result<&'a serde_json::Value, Failed> {
    lines
        .iter()
        .find(|l| l["event"] == "task" && l["task"] == name)
        .ok_or_else(|| format!("no {name} task in {lines:?}").into())
}

/// `maintain PATH --json ARGS`: exit code and lines.
fn maintain(
    env: &Env,
    path: &Path,
    args: &[&str],
) -> Result<(i32, Vec<serde_json::Value>, Output), Failed> {
    let mut all = vec!["maintain", s(path)?, "--json"];
    all.extend_from_slice(args);
    let out = env.run(&all)?;
    let l = lines(&out.stdout).map_err(|e| format!("{e:?}; {}", text(&out)))?;
    Ok((out.status.code().unwrap_or(-1), l, out))
}

fn spawn_maintain(env: &Env, path: &Path, args: &[&str]) -> Result<Child, Failed> {
    Ok(Command::new(bin())
        .args(env.args())
        .args(["maintain", s(path)?, "--json"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?)
}

fn commits(fs: &Filesystem) -> Result<u64, Failed> {
    Ok(FsSysfs::for_fs(fs)?
        .commit_stats()?
        .ok_or("this kernel has no commit_stats (Linux 6.0+)")?
        .commits)
}

/// A file's content: 4-byte words of its index and offset, so any misplaced block shows.
fn pattern(index: u32, len: usize) -> Vec<u8> {
    (0..len / 4)
        .flat_map(|w| (index.wrapping_mul(0x9E37_79B9) ^ w as u32).to_le_bytes())
        .collect()
}

/// Writes `count` files of `size` bytes named `f-N` into `dir`; stops at ENOSPC when
/// `until_full`. Returns the indexes written whole.
fn write_files(dir: &Path, count: u32, size: usize, until_full: bool) -> Result<Vec<u32>, Failed> {
    let mut written = Vec::new();
    for i in 0..count {
        let path = dir.join(format!("f-{i}"));
        let result = (|| {
            let mut f = std::fs::File::create(&path)?;
            f.write_all(&pattern(i, size))?;
            f.sync_all()
        })();
        match result {
            Ok(()) => written.push(i),
            Err(e) if until_full && e.raw_os_error() == Some(libc_enospc()) => {
                let _ = std::fs::remove_file(&path);
                return Ok(written);
            }
            Err(e) => return Err(format!("write {}: {e}", path.display()).into()),
        }
    }
    if until_full {
        return Err("the filesystem did not fill up".into());
    }
    Ok(written)
}

fn libc_enospc() -> i32 {
    nix::errno::Errno::ENOSPC as i32
}

/// Every file in `kept` still holds its pattern.
fn verify_files(dir: &Path, kept: &[u32], size: usize) -> Result<(), Failed> {
    for &i in kept {
        let mut content = Vec::new();
        std::fs::File::open(dir.join(format!("f-{i}")))?.read_to_end(&mut content)?;
        ensure!(content == pattern(i, size), "f-{i} changed");
    }
    Ok(())
}

/// Fills about `fill` bytes in 1 MiB files, then deletes nine in ten (every file of the
/// first `emptied` tenth): data chunks left about 10 % used, some empty. Returns the kept files.
fn sparse_chunks(fs: &Filesystem, dir: &Path, fill: u64) -> Result<Vec<u32>, Failed> {
    let count = (fill / MIB) as u32;
    write_files(dir, count, MIB as usize, false)?;
    fs.sync()?;
    let mut kept = Vec::new();
    for i in 0..count {
        if i % 10 == 0 && i > count / 5 {
            kept.push(i);
        } else {
            std::fs::remove_file(dir.join(format!("f-{i}")))?;
        }
    }
    fs.sync()?;
    Ok(kept)
}

fn data_groups(fs: &Filesystem) -> Result<Vec<(u64, f64)>, Failed> {
    Ok(fs
        .block_groups()?
        .into_iter()
        .filter(|g| g.kind == BlockGroupKind::Data)
        .map(|g| (g.logical, g.usage_percent()))
        .collect())
}

testkit::register!(prefix "upkeep"; root: two_runs_at_once_one_runs_the_other_waits_or_exits);
fn two_runs_at_once_one_runs_the_other_waits_or_exits() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(2048 * MIB)?;
    let fs = Filesystem::open(scratch.path())?;
    sparse_chunks(&fs, scratch.path(), 1200 * MIB)?;
    let start = fs.usage()?.unallocated().bytes();
    let target = format!("{}m", start / MIB + 400);
    let env = upkeep_env("")?;
    let fsid = fs.info()?.fsid;
    // The test holds the filesystem's lock, as a run in progress does.
    let held = MaintainLock::try_take(&lock_dir(&env), fsid)?;
    let me = std::process::id().to_string();
    let (code, l, out) = maintain(&env, scratch.path(), &["--only", "balance"])?;
    let said = String::from_utf8_lossy(&out.stdout);
    ensure!(
        code == 4,
        "a second run without --wait: exit {code}: {}",
        text(&out)
    );
    ensure!(
        said.contains(&format!("process {me} since")),
        "the holder is not named: {said}"
    );
    ensure!(
        !l.iter().any(|l| l["event"] == "task"),
        "it ran tasks: {said}"
    );
    // Two runs that wait: each says so, neither runs while the lock is held.
    let args = [
        "--wait",
        "--only",
        "balance",
        "--unallocated-target",
        target.as_str(),
    ];
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mut child = spawn_maintain(&env, scratch.path(), &args)?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("stdout")?);
        let mut first = String::new();
        stdout.read_line(&mut first)?;
        let line: serde_json::Value = serde_json::from_str(&first)?;
        ensure!(
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("waiting: another maintain run holds")),
            "the waiting run did not say it waits: {first}"
        );
        runs.push((child, stdout));
    }
    ensure!(
        fs.balance_status()?.is_none(),
        "a balance ran while the lock was held"
    );
    drop(held);
    let mut intervals = Vec::new();
    let mut relocated = Vec::new();
    for (mut child, mut stdout) in runs {
        let mut rest = String::new();
        stdout.read_to_string(&mut rest)?;
        let status = child.wait()?;
        let l = lines(rest.as_bytes())?;
        ensure!(
            status.code() == Some(0),
            "a waiting run ended {status}: {rest}"
        );
        let begin = l
            .iter()
            .find(|l| {
                l["event"] == "run"
                    && l["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("maintain "))
            })
            .and_then(|l| l["ts"].as_f64())
            .ok_or("no start line")?;
        let end = l
            .iter()
            .find(|l| l["event"] == "end")
            .and_then(|l| l["ts"].as_f64())
            .ok_or("no end line")?;
        intervals.push((begin, end));
        relocated.push(
            task(&l, "balance")?["figures"]["relocated_chunks"]
                .as_f64()
                .unwrap_or(-1.0),
        );
    }
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
    ensure!(
        intervals[0].1 <= intervals[1].0,
        "the two runs overlapped: {intervals:?}"
    );
    // The first to get the lock did the work; the second found the target reached.
    ensure!(
        relocated.iter().filter(|&&r| r > 0.0).count() == 1 && relocated.contains(&0.0),
        "relocated per run: {relocated:?}"
    );
    Ok(())
}

testkit::register!(prefix "upkeep"; root: nothing_to_do_means_no_balance_ioctl_and_no_commit);
fn nothing_to_do_means_no_balance_ioctl_and_no_commit() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let fs = Filesystem::open(scratch.path())?;
    let kept = write_files(scratch.path(), 40, MIB as usize, false)?;
    let env = upkeep_env("")?;
    // The first run scrubs and trims (never done before).
    let (code, l, out) = maintain(&env, scratch.path(), &[])?;
    ensure!(code == 0, "first run: {}", text(&out));
    for t in ["scrub", "trim"] {
        ensure!(task(&l, t)?["outcome"] == "done", "{t}: {}", task(&l, t)?);
    }
    fs.sync()?;
    let before = commits(&fs)?;
    let (code, l, out) = maintain(&env, scratch.path(), &[])?;
    let after = commits(&fs)?;
    ensure!(code == 0, "second run: {}", text(&out));
    for t in ["grow", "balance", "scrub", "trim", "defrag"] {
        ensure!(
            task(&l, t)?["outcome"] == "not-due",
            "{t}: {}",
            task(&l, t)?
        );
    }
    ensure!(
        !l.iter().any(|l| l["event"] == "step"),
        "steps were taken: {l:?}"
    );
    ensure!(
        after == before,
        "{} transaction commit(s) during a run with nothing to do",
        after - before
    );
    verify_files(scratch.path(), &kept, MIB as usize)
}

testkit::register!(prefix "upkeep"; root: empty_and_nearly_empty_chunks_are_returned_until_the_target);
fn empty_and_nearly_empty_chunks_are_returned_until_the_target() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(2048 * MIB)?;
    let fs = Filesystem::open(scratch.path())?;
    let kept = sparse_chunks(&fs, scratch.path(), 1200 * MIB)?;
    let before = data_groups(&fs)?;
    let empty = before.iter().filter(|(_, u)| *u == 0.0).count();
    let nearly = before.iter().filter(|(_, u)| *u > 0.0 && *u < 50.0).count();
    ensure!(
        nearly >= 3,
        "the setup left {nearly} nearly empty data chunks: {before:?}"
    );
    let start = fs.usage()?.unallocated().bytes();
    let target = start + 600 * MIB;
    let env = upkeep_env("")?;
    let target_arg = format!("{}m", target / MIB);
    let (code, l, out) = maintain(
        &env,
        scratch.path(),
        &["--only", "balance", "--unallocated-target", &target_arg],
    )?;
    ensure!(code == 0, "{}", text(&out));
    let b = task(&l, "balance")?;
    ensure!(b["outcome"] == "done", "{b}");
    let steps = l.iter().filter(|l| l["event"] == "step").count();
    ensure!(
        steps >= 2,
        "one step per call and its result: {steps} lines"
    );
    let after = fs.usage()?.unallocated().bytes();
    ensure!(
        after >= target,
        "unallocated {after} below the target {target}: {b}"
    );
    ensure!(
        b["summary"]
            .as_str()
            .is_some_and(|s| s.contains("reached the target")),
        "{b}"
    );
    // The empty chunks went, and only chunks below the usage ceiling (50 %) went. (Data
    // relocated out of one chunk lands in the others, so a survivor may end fuller than it began.)
    let now = data_groups(&fs)?;
    let gone: Vec<f64> = before
        .iter()
        .filter(|(l, _)| !now.iter().any(|(n, _)| n == l))
        .map(|(_, u)| *u)
        .collect();
    ensure!(
        !gone.is_empty(),
        "no chunk was returned: {before:?} -> {now:?}"
    );
    ensure!(
        gone.iter().all(|u| *u < 50.0),
        "a chunk above the ceiling went: {gone:?}"
    );
    ensure!(
        gone.iter().filter(|u| **u == 0.0).count() == empty,
        "an empty chunk stayed: gone {gone:?}, {empty} empty at the start"
    );
    let first = l
        .iter()
        .find(|l| l["event"] == "step")
        .and_then(|l| l["message"].as_str())
        .unwrap_or("");
    let least = before.iter().map(|(_, u)| *u).fold(f64::INFINITY, f64::min);
    ensure!(
        first.contains(&format!("least used {least:.1} %")),
        "the first step does not start with the least-used chunk ({least:.1} %): {first}"
    );
    // Done is done: a second run has nothing to do.
    let (code, l, _) = maintain(
        &env,
        scratch.path(),
        &["--only", "balance", "--unallocated-target", &target_arg],
    )?;
    ensure!(
        code == 0 && task(&l, "balance")?["outcome"] == "not-due",
        "{l:?}"
    );
    verify_files(scratch.path(), &kept, MIB as usize)
}

testkit::register!(prefix "upkeep"; root: enospc_on_a_full_filesystem_is_reported_and_nothing_is_left_paused);
fn enospc_on_a_full_filesystem_is_reported_and_nothing_is_left_paused() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let fs = Filesystem::open(scratch.path())?;
    let size = MIB as usize;
    let written = write_files(scratch.path(), 100_000, size, true)?;
    fs.sync()?;
    // Empty one data chunk to below 40 % by deleting the files whose data lies in it: the
    // only candidate, with no room anywhere else to move its data to.
    let groups: Vec<_> = fs
        .block_groups()?
        .into_iter()
        .filter(|g| g.kind == BlockGroupKind::Data)
        .collect();
    let victim = groups
        .iter()
        .max_by_key(|g| g.length.bytes())
        .copied()
        .ok_or("no data chunk")?;
    let range = victim.logical..victim.logical + victim.length.bytes();
    let mut reader = btrfs_kit::fiemap::FiemapReader::new();
    let mut kept = Vec::new();
    let mut freed = 0u64;
    let goal = victim.used.bytes() - victim.length.bytes() * 35 / 100;
    for &i in &written {
        let path = scratch.path().join(format!("f-{i}"));
        let inside = freed < goal
            && reader
                .extents_of_path(&path)?
                .iter()
                .all(|e| range.contains(&e.physical.bytes()));
        if inside {
            std::fs::remove_file(&path)?;
            freed += size as u64;
        } else {
            kept.push(i);
        }
    }
    fs.sync()?;
    let env = upkeep_env("")?;
    let (code, l, out) = maintain(
        &env,
        scratch.path(),
        &[
            "--only",
            "grow,balance,scrub",
            "--unallocated-target",
            "50%",
            "--grow-max",
            "10g",
        ],
    )?;
    let all = String::from_utf8_lossy(&out.stdout);
    ensure!(
        code == 1,
        "a full filesystem needs a human: exit {code}: {}",
        text(&out)
    );
    let b = task(&l, "balance")?;
    ensure!(b["outcome"] == "needs-human", "{b}");
    ensure!(
        b["figures"]["enospc_steps"].as_f64() >= Some(1.0),
        "no ENOSPC was met: {all}"
    );
    ensure!(
        l.iter().any(|l| l["event"] == "step"
            && l["priority"] == "warning"
            && l["message"].as_str().is_some_and(|m| m.contains("ENOSPC"))),
        "the ENOSPC step is not reported as a warning: {all}"
    );
    let g = task(&l, "grow")?;
    ensure!(
        g["outcome"] == "needs-human"
            && g["summary"]
                .as_str()
                .is_some_and(|s| s.contains("not an LVM logical volume")),
        "{g}"
    );
    ensure!(
        task(&l, "scrub")?["outcome"] == "done",
        "the scrub after it: {}",
        task(&l, "scrub")?
    );
    ensure!(fs.balance_status()?.is_none(), "a balance was left behind");
    verify_files(scratch.path(), &kept, size)
}

testkit::register!(prefix "upkeep"; root: sigterm_mid_balance_stops_cleanly_with_nothing_paused);
fn sigterm_mid_balance_stops_cleanly_with_nothing_paused() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(2048 * MIB)?;
    let fs = Filesystem::open(scratch.path())?;
    let kept = sparse_chunks(&fs, scratch.path(), 1200 * MIB)?;
    let env = upkeep_env("")?;
    let mut child = spawn_maintain(
        &env,
        scratch.path(),
        &[
            "--only",
            "balance",
            "--unallocated-target",
            "100%",
            "--balance-chunks-per-step",
            "1",
        ],
    )?;
    // Wait for the first step line, then for the kernel to show the balance.
    let mut stdout = BufReader::new(child.stdout.take().ok_or("stdout")?);
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.contains("\"event\":\"step\"") {
        ensure!(Instant::now() < deadline, "no step within a minute: {seen}");
        let mut line = String::new();
        ensure!(
            stdout.read_line(&mut line)? > 0,
            "ended before a step: {seen}"
        );
        seen.push_str(&line);
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let mut rest = String::new();
    stdout.read_to_string(&mut rest)?;
    let status = child.wait()?;
    let l = lines(rest.as_bytes())?;
    ensure!(status.code() == Some(5), "exit {status}: {seen}{rest}");
    let b = task(&l, "balance")?;
    ensure!(b["outcome"] == "stopped", "{b}");
    ensure!(
        b["summary"]
            .as_str()
            .is_some_and(|s| s.contains("nothing is left paused")),
        "{b}"
    );
    ensure!(
        fs.balance_status()?.is_none(),
        "the balance was left paused or running"
    );
    verify_files(scratch.path(), &kept, MIB as usize)
}

testkit::register!(prefix "upkeep"; root: someone_elses_paused_balance_is_left_alone);
fn someone_elses_paused_balance_is_left_alone() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(2048 * MIB)?;
    let fs = Filesystem::open(scratch.path())?;
    sparse_chunks(&fs, scratch.path(), 1200 * MIB)?;
    // Someone pauses a balance of every data chunk after its first chunk.
    let handle = fs.balance_background(&Balance::new().data(ChunkFilters::all()))?;
    handle.wait_running(Duration::from_secs(30))?;
    handle.pause()?;
    let outcome = handle.wait()?;
    ensure!(matches!(outcome, BalanceOutcome::Paused(_)), "{outcome:?}");
    struct Cancel<'a>(&'a Filesystem);
    impl Drop for Cancel<'_> {
        fn drop(&mut self) {
            let _ = self.0.balance_cancel();
        }
    }
    let _cancel = Cancel(&fs);
    let before = fs.balance_status()?.ok_or("not paused")?;
    let env = upkeep_env("")?;
    let (code, l, out) = maintain(
        &env,
        scratch.path(),
        &["--only", "balance", "--unallocated-target", "100%"],
    )?;
    ensure!(code == 1, "exit {code}: {}", text(&out));
    let b = task(&l, "balance")?;
    ensure!(
        b["outcome"] == "needs-human"
            && b["summary"]
                .as_str()
                .is_some_and(|s| s.contains("paused") && s.contains("left alone")),
        "{b}"
    );
    let after = fs.balance_status()?.ok_or("the paused balance is gone")?;
    ensure!(
        !after.running && after.progress == before.progress,
        "the paused balance was touched: {before:?} -> {after:?}"
    );
    Ok(())
}

testkit::register!(prefix "upkeep"; root: metrics_pass_promtool_and_equal_node_exporter);
/// `metrics --textfile` after a maintain run: promtool passes, and every node_btrfs series of
/// this filesystem equals node_exporter's.
fn metrics_pass_promtool_and_equal_node_exporter() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let fs = Filesystem::open(scratch.path())?;
    write_files(scratch.path(), 30, MIB as usize, false)?;
    let env = upkeep_env("")?;
    let (code, _, out) = maintain(&env, scratch.path(), &[])?;
    ensure!(code == 0, "{}", text(&out));
    fs.sync()?;
    let dir = env.root().join("textfile");
    std::fs::create_dir_all(&dir)?;
    let out = env.run(&[
        "metrics",
        s(scratch.path())?,
        "--textfile",
        s(&dir)?,
        "--node-btrfs",
        "always",
    ])?;
    ensure!(out.status.success(), "{}", text(&out));
    let names: Vec<_> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    ensure!(
        names == ["dockroot.prom"],
        "the directory holds {names:?} (no temporary file may stay)"
    );
    let ours_text = std::fs::read_to_string(dir.join("dockroot.prom"))?;
    prom::promtool(&ours_text)?;
    let ours = prom::parse(&ours_text)?;
    let uuid = fs.info()?.fsid.to_string();
    let node = prom::NodeExporter::start(env.root())?;
    let theirs = prom::parse(&node.scrape()?)?;
    compare_node_btrfs(&ours, &theirs, &uuid)?;
    // Ours are there too, with this run's outcomes.
    let get = |name: &str, labels: &[(&str, &str)]| {
        ours.iter()
            .find(|((n, l), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| *v)
    };
    let usage = fs.usage()?;
    ensure!(
        get("dockroot_btrfs_unallocated_bytes", &[("uuid", &uuid)])
            == Some(usage.unallocated().bytes() as f64),
        "unallocated"
    );
    ensure!(
        get(
            "dockroot_maintain_task_outcome",
            &[("task", "scrub"), ("outcome", "done")]
        ) == Some(1.0),
        "scrub outcome"
    );
    ensure!(
        get("dockroot_btrfs_scrub_last_verdict", &[("verdict", "clean")]) == Some(1.0),
        "scrub verdict"
    );
    ensure!(
        get("dockroot_btrfs_balance_paused", &[("uuid", &uuid)]) == Some(0.0),
        "balance paused"
    );
    ensure!(
        get("dockroot_check_status", &[("check", "space.used")]) == Some(0.0),
        "doctor check"
    );
    ensure!(get("dockroot_up", &[]) == Some(1.0), "up");
    // The default for a textfile leaves node_exporter's own names to node_exporter.
    let out = env.run(&["metrics", s(scratch.path())?, "--textfile", s(&dir)?])?;
    ensure!(out.status.success(), "{}", text(&out));
    let plain = std::fs::read_to_string(dir.join("dockroot.prom"))?;
    ensure!(
        !plain.contains("node_btrfs_"),
        "node_exporter's names in the default textfile"
    );
    prom::promtool(&plain)
}

fn compare_node_btrfs(
    ours: &std::collections::BTreeMap<prom::Series, f64>,
    theirs: &std::collections::BTreeMap<prom::Series, f64>,
    uuid: &str,
) -> Result<(), Failed> {
    let ours = prom::node_btrfs_of(ours, uuid);
    let theirs = prom::node_btrfs_of(theirs, uuid);
    ensure!(
        !theirs.is_empty(),
        "node_exporter exported nothing for {uuid}"
    );
    let only_ours: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    let only_theirs: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    ensure!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "series differ: only ours {only_ours:?}, only node_exporter's {only_theirs:?}"
    );
    for (k, v) in &theirs {
        ensure!(ours[k] == *v, "{k:?}: ours {} node_exporter {v}", ours[k]);
    }
    Ok(())
}

testkit::register!(prefix "upkeep"; root: metrics_over_http_equal_node_exporter_on_raid1);
/// `metrics --listen` on a raid1 filesystem of two devices: served, promtool passes, equal to
/// node_exporter; SIGTERM ends it with exit 0.
fn metrics_over_http_equal_node_exporter_on_raid1() -> Result<(), Failed> {
    let multi = MultiScratch::new(2, 1024 * MIB, Profile::Raid1, Profile::Raid1)?;
    let fs = Filesystem::open(multi.path())?;
    write_files(multi.path(), 20, MIB as usize, false)?;
    fs.sync()?;
    let env = upkeep_env("")?;
    let addr = format!("127.0.0.1:{}", prom::free_port()?);
    let mut server = Command::new(bin())
        .args(env.args())
        .args(["metrics", s(multi.path())?, "--listen", &addr])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    struct Stop(u32);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0 as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let guard = Stop(server.id());
    let body = prom::wait_for_metrics(&addr, &mut server, Duration::from_secs(30))?;
    prom::promtool(&body)?;
    let (code, _) = prom::get(&addr, "/nothing")?;
    ensure!(code == 404, "GET /nothing: {code}");
    let node = prom::NodeExporter::start(env.root())?;
    let uuid = fs.info()?.fsid.to_string();
    let theirs = prom::parse(&node.scrape()?)?;
    let ours = prom::parse(&prom::get(&addr, "/metrics")?.1)?;
    compare_node_btrfs(&ours, &theirs, &uuid)?;
    let ratio = ours
        .iter()
        .find(|((n, l), _)| {
            n == "node_btrfs_allocation_ratio"
                && l.get("block_group_type").map(String::as_str) == Some("data")
        })
        .map(|(_, v)| *v);
    ensure!(ratio == Some(2.0), "raid1 data ratio {ratio:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let status = server.wait()?;
    std::mem::forget(guard);
    ensure!(status.code() == Some(0), "after SIGTERM: {status}");
    Ok(())
}

testkit::register!(prefix "upkeep"; plain: units_pass_systemd_analyze_verify_and_escape_like_systemd);
fn units_pass_systemd_analyze_verify_and_escape_like_systemd() -> Result<(), Failed> {
    // The escaping, against the real systemd-escape.
    for path in [
        "/var/lib/docker",
        "/",
        "/srv/docker-data",
        "//srv//x/",
        "/.hidden/x",
        "/a b/c",
        "/mnt/ünïcode",
        "/x/./y",
        "/a:b_c.d",
        "/tab\there",
        "/back\\slash",
    ] {
        let out = Command::new("systemd-escape")
            .args(["--path", path])
            .output()?;
        ensure!(
            out.status.success(),
            "systemd-escape --path {path:?}: {}",
            text(&out)
        );
        let real = String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .to_string();
        let ours = dockroot::units::escape_path(path)?;
        ensure!(
            ours == real,
            "{path:?}: ours {ours:?}, systemd-escape {real:?}"
        );
    }
    let refused = Command::new("systemd-escape")
        .args(["--path", "/a/../b"])
        .output()?;
    ensure!(
        !refused.status.success() && dockroot::units::escape_path("/a/../b").is_err(),
        "a path with .. must be refused by both"
    );
    // The units, verified by systemd itself.
    let env = Env::new()?;
    let prefix = env.root().join("prefix");
    let out = env.run(&[
        "install-units",
        "/var/lib/docker",
        "--prefix",
        s(&prefix)?,
        "--exec",
        s(&bin())?,
        "--json",
    ])?;
    ensure!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    ensure!(
        doc["instance"] == "dockroot-maintain@var-lib-docker",
        "{doc}"
    );
    let units = prefix.join(env.unit_dir().strip_prefix("/").unwrap_or(&env.unit_dir()));
    let service = std::fs::read_to_string(units.join("dockroot-maintain@.service"))?;
    let timer = std::fs::read_to_string(units.join("dockroot-maintain@.timer"))?;
    for needed in [
        "IOSchedulingClass=idle",
        "CPUSchedulingPolicy=idle",
        "maintain --wait %f",
        "Type=oneshot",
    ] {
        ensure!(
            service.contains(needed),
            "the service lacks {needed}: {service}"
        );
    }
    for needed in [
        "OnCalendar=daily",
        "RandomizedDelaySec=",
        "Persistent=true",
        "WantedBy=timers.target",
    ] {
        ensure!(timer.contains(needed), "the timer lacks {needed}: {timer}");
    }
    let link = units.join("timers.target.wants/dockroot-maintain@var-lib-docker.timer");
    ensure!(
        std::fs::read_link(&link)? == Path::new("../dockroot-maintain@.timer"),
        "the timer is not enabled"
    );
    // Instances, as systemd would load them: a copy of the template under the instance name.
    let check = env.root().join("verify");
    std::fs::create_dir_all(&check)?;
    let mut files = Vec::new();
    for (template, instance) in [
        (
            "dockroot-maintain@.service",
            "dockroot-maintain@var-lib-docker.service",
        ),
        (
            "dockroot-maintain@.timer",
            "dockroot-maintain@var-lib-docker.timer",
        ),
        ("dockroot-metrics.service", "dockroot-metrics.service"),
    ] {
        let to = check.join(instance);
        std::fs::copy(units.join(template), &to)?;
        files.push(to);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&files)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success(),
        "systemd-analyze verify: {}: {said}",
        out.status
    );
    ensure!(
        !said.contains("dockroot"),
        "systemd-analyze verify complained about our units: {said}"
    );
    // The crontab line for hosts without systemd.
    let out = env.run(&[
        "install-units",
        "/var/lib/docker",
        "--cron",
        "--exec",
        "/usr/local/bin/dockroot",
    ])?;
    let cron = String::from_utf8_lossy(&out.stdout);
    let line = cron
        .lines()
        .find(|l| !l.starts_with('#'))
        .ok_or("no cron line")?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    ensure!(
        fields.len() > 6
            && fields[2..5] == ["*", "*", "*"]
            && line.contains("/usr/local/bin/dockroot")
            && line.contains("maintain --wait /var/lib/docker"),
        "{cron}"
    );
    ensure!(!line.contains("balance start"), "{cron}");
    Ok(())
}

testkit::register!(prefix "upkeep"; plain: a_bad_maintain_configuration_is_refused);
fn a_bad_maintain_configuration_is_refused() -> Result<(), Failed> {
    let env = upkeep_env("balance_usage_max = 0")?;
    let out = env.run(&["maintain", "/nonexistent"])?;
    ensure!(out.status.code() == Some(3), "{}", text(&out));
    ensure!(
        String::from_utf8_lossy(&out.stderr).contains("balance_usage_max"),
        "{}",
        text(&out)
    );
    let env = upkeep_env("")?;
    let out = env.run(&["maintain", "/nonexistent", "--grow-step", "12"])?;
    ensure!(
        out.status.code() == Some(3),
        "a bare number: {}",
        text(&out)
    );
    Ok(())
}
