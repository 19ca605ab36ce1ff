//! Scenarios 8–10, health: a scrub of 1 GiB (kernel-bound), and the status polls a monitor
//! makes while a scrub runs: scrub progress and device error counters.

use crate::counting_alloc::{peak_since, start_peak};
use crate::fsbuild::{self, Template, MIB};
use crate::measure::{self, check_stop, BenchResult, Pair, ProgsRun, Sample};
use crate::scenarios::{Config, Row, Target};
use btrfs_kit::scrub::ScrubRequest;
use btrfs_kit::sysfs::{FsSysfs, SpeedLimit};
use btrfs_kit::{ByteSize, Filesystem};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::fixture::BtrfsOptions;

const GIB: u64 = 1 << 30;

/// CPU time (user + system) of this whole process so far: our scrub runs one thread per device
/// plus a monitor, so the calling thread's time would miss it; btrfs-progs' side is its whole
/// process too.
fn process_cpu() -> BenchResult<Duration> {
    use nix::sys::resource::{getrusage, UsageWho};
    let u = getrusage(UsageWho::RUSAGE_SELF)?;
    let d = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    Ok(d(u.user_time()) + d(u.system_time()))
}

/// The raw counters `btrfs scrub start -B -R` prints (`data_bytes_scrubbed: N` ...).
fn raw_counters(run: &ProgsRun) -> BenchResult<BTreeMap<String, u64>> {
    run.expect_code(&[0])?;
    let counters: BTreeMap<String, u64> = run
        .stdout
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(':')?;
            Some((k.trim().to_string(), v.trim().parse().ok()?))
        })
        .collect();
    if !counters.contains_key("data_bytes_scrubbed") {
        return Err(format!("scrub output without counters: {:?}", run.stdout).into());
    }
    Ok(counters)
}

/// btrfs-progs records every scrub in `/var/lib/btrfs/scrub.status.<fsid>`: remove the one our
/// runs made (the clones' fsids are fresh, nobody else's file is touched).
fn remove_progs_status(fs: &Filesystem) -> BenchResult<()> {
    let path = format!("/var/lib/btrfs/scrub.status.{}", fs.info()?.fsid);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("remove {path}: {e}").into())
        }
        _ => Ok(()),
    }
}

/// Scenario 8: a scrub of 1 GiB of data, ours (`Filesystem::scrub`, state recorded, kernel log
/// watched) vs `btrfs scrub start -B -R`. Both read the same clone layout from the host's page
/// cache; the harness checks that both scrubbed the same data and metadata bytes.
pub fn scrub(config: &Config) -> BenchResult<Vec<Row>> {
    let data = config.pick(1024, 64) * MIB;
    let template = Template::build(
        config.pick(3 * GIB, GIB),
        BtrfsOptions::default(),
        fsbuild::packed(data),
    )?;
    let a = template.clone_mounted()?;
    let b = template.clone_mounted()?;
    let fs_a = Filesystem::open(a.path())?;
    let fs_b = Filesystem::open(b.path())?;
    let state = tempfile::tempdir()?;
    let request = ScrubRequest::new().state_dir(state.path());
    let run_ours = || -> BenchResult<(Sample, (u64, u64))> {
        let base = start_peak();
        let cpu0 = process_cpu()?;
        let start = Instant::now();
        let outcome = fs_a.scrub(&request)?;
        let wall = start.elapsed();
        let cpu = process_cpu()?.saturating_sub(cpu0);
        if outcome.total.errors() > 0 {
            return Err(format!("scrub found errors: {:?}", outcome.total).into());
        }
        Ok((
            Sample {
                wall,
                cpu,
                peak_mem: peak_since(base) as u64,
                peak_floor: 0,
            },
            (
                outcome.total.data_bytes.bytes(),
                outcome.total.tree_bytes.bytes(),
            ),
        ))
    };
    let run_progs = || -> BenchResult<(Sample, (u64, u64))> {
        let (sample, c) = measure::progs(&["scrub", "start", "-B", "-R"], b.path(), raw_counters)?;
        Ok((sample, (c["data_bytes_scrubbed"], c["tree_bytes_scrubbed"])))
    };
    // One untimed round each, so both clones are equally warm.
    run_ours()?;
    run_progs()?;
    let mut pairs = Vec::new();
    let mut scrubbed = (0, 0);
    for i in 0..config.pairs(7) {
        check_stop()?;
        let ((ours, ours_bytes), (progs, progs_bytes)) = if config.abba && i % 2 == 1 {
            let p = run_progs()?;
            (run_ours()?, p)
        } else {
            let o = run_ours()?;
            (o, run_progs()?)
        };
        if ours_bytes != progs_bytes || ours_bytes.0 < data {
            return Err(format!(
                "scrub: ours scrubbed (data, metadata) {ours_bytes:?}, btrfs-progs {progs_bytes:?}"
            )
            .into());
        }
        scrubbed = ours_bytes;
        pairs.push(Pair { ours, progs });
    }
    remove_progs_status(&fs_b)?;
    Ok(vec![Row {
        scenario: format!("scrub of {}", ByteSize(data)),
        detail: format!(
            "{}, a clone per side, read from the host's page cache (one untimed scrub each first); ours: `Filesystem::scrub` (a thread per device, progress polled, state file recorded, kernel log watched); btrfs-progs: `btrfs scrub start -B -R`, output parsed. CPU is the whole process on both sides (kernel scrub workers are not counted on either)",
            template.description
        ),
        pairs,
        target: Target::Within(2.0),
        end_state: Some(format!(
            "{} of data and {} of metadata scrubbed by each run of each side",
            ByteSize(scrubbed.0),
            ByteSize(scrubbed.1)
        )),
    }])
}

/// A slow scrub kept running in the background by `btrfs scrub start -B` (btrfs-progs records
/// progress where `btrfs scrub status` reads it; for a scrub it did not start it says "no
/// stats available"). Cancelled and reaped on drop.
struct Running<'a> {
    fs: &'a Filesystem,
    path: &'a Path,
    child: Option<std::process::Child>,
}

impl Running<'_> {
    fn ensure(&mut self) -> BenchResult<()> {
        if self.fs.scrub_status()?.is_some() {
            return Ok(());
        }
        if let Some(mut done) = self.child.take() {
            done.wait()?;
        }
        let sysfs = FsSysfs::for_fs(self.fs)?;
        for d in self.fs.devices()? {
            sysfs.set_scrub_speed_max(d.devid, SpeedLimit::BytesPerSecond(ByteSize(MIB)))?;
        }
        let child = std::process::Command::new("btrfs")
            .args(["scrub", "start", "-B"])
            .arg(self.path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn btrfs scrub start -B: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.fs.scrub_status()?.is_none() {
            if Instant::now() >= deadline {
                return Err("the background scrub did not start within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.fs.scrub_cancel();
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

/// `btrfs device stats`: `[/dev/loopN].write_io_errs   0` lines, by (device, counter).
fn device_stats(run: &ProgsRun) -> BenchResult<BTreeMap<(String, String), u64>> {
    run.expect_code(&[0])?;
    let out: BTreeMap<(String, String), u64> = run
        .stdout
        .lines()
        .filter_map(|l| {
            let (dev, rest) = l.strip_prefix('[')?.split_once("].")?;
            let mut words = rest.split_whitespace();
            Some((
                (dev.to_string(), words.next()?.to_string()),
                words.next()?.parse().ok()?,
            ))
        })
        .collect();
    if out.is_empty() {
        return Err(format!("device stats output: {:?}", run.stdout).into());
    }
    Ok(out)
}

/// `btrfs scrub status`: that it reports a running scrub.
fn scrub_running(run: &ProgsRun) -> BenchResult<(bool, String)> {
    run.expect_code(&[0])?;
    Ok((run.stdout.contains("running"), run.stdout.clone()))
}

/// Scenarios 9 and 10: status polls while a scrub runs.
pub fn status_polls(config: &Config) -> BenchResult<Vec<Row>> {
    let template = Template::build(
        config.pick(2 * GIB, GIB),
        BtrfsOptions::default(),
        fsbuild::packed(config.pick(512, 128) * MIB),
    )?;
    let scratch = template.clone_mounted()?;
    let fs = Filesystem::open(scratch.path())?;
    let path: &Path = scratch.path();
    // Both sides must report the same counters.
    let ours = fs.device_stats_all()?;
    let devices = fs.devices()?;
    let run = measure::spawn_btrfs(&["device", "stats"], path)?;
    let theirs = device_stats(&run)?;
    for s in &ours {
        let dev = devices
            .iter()
            .find(|d| d.devid == s.devid)
            .ok_or("device vanished")?;
        for (name, value) in s.named() {
            let key = (dev.path.display().to_string(), name.to_string());
            if theirs.get(&key) != Some(&value) {
                return Err(format!(
                    "device stats {key:?}: ours {value}, btrfs-progs {:?}",
                    theirs.get(&key)
                )
                .into());
            }
        }
    }
    let (mut scrub_pairs, mut stats_pairs) = (Vec::new(), Vec::new());
    let (mut ours_saw, mut progs_saw) = (0, 0);
    let mut progs_said = String::new();
    {
        let mut running = Running {
            fs: &fs,
            path,
            child: None,
        };
        for _ in 0..config.pairs(30) {
            check_stop()?;
            running.ensure()?;
            let (ours, status) = measure::ours(config.batch(200), || Ok(fs.scrub_status()?))?;
            let (progs, (progs_running, said)) =
                measure::progs(&["scrub", "status"], path, scrub_running)?;
            progs_said = said;
            ours_saw += usize::from(status.is_some());
            progs_saw += usize::from(progs_running);
            scrub_pairs.push(Pair { ours, progs });
            let (ours, _) = measure::ours(config.batch(200), || Ok(fs.device_stats_all()?))?;
            let (progs, _) = measure::progs(&["device", "stats"], path, device_stats)?;
            stats_pairs.push(Pair { ours, progs });
        }
    }
    if ours_saw == 0 || progs_saw == 0 {
        return Err(format!(
            "scrub status: a running scrub was seen by ours {ours_saw} and btrfs-progs {progs_saw} times of {}; btrfs-progs said: {progs_said}",
            scrub_pairs.len()
        )
        .into());
    }
    remove_progs_status(&fs)?;
    let n = scrub_pairs.len();
    Ok(vec![
        Row {
            scenario: "scrub status poll".into(),
            detail: format!(
                "{}, a scrub started by `btrfs scrub start -B` running (limited to 1 MiB/s); ours: `scrub_status()` (FS_INFO, DEV_INFO and SCRUB_PROGRESS per device) on an open handle, batches of {}; btrfs-progs: `btrfs scrub status`, output parsed; running seen by ours {ours_saw}/{n}, btrfs-progs {progs_saw}/{n}",
                template.description,
                config.batch(200)
            ),
            pairs: scrub_pairs,
            target: Target::AtLeast(50.0),
            end_state: None,
        },
        Row {
            scenario: "device stats poll".into(),
            detail: format!(
                "same filesystem and running scrub; ours: `device_stats_all()` (FS_INFO, DEV_INFO and GET_DEV_STATS per device) on an open handle, batches of {}; btrfs-progs: `btrfs device stats`, output parsed; both report the same counters",
                config.batch(200)
            ),
            pairs: stats_pairs,
            target: Target::AtLeast(50.0),
            end_state: None,
        },
    ])
}
