//! Measuring: wall time, the calling thread's CPU time, peak heap of our side, and spawning
//! btrfs-progs with its own CPU time and peak RSS (from `wait4`).

use crate::counting_alloc::{peak_since, start_peak};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The harness's error type: every failure carries a message naming what failed.
pub type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Set by Ctrl-C: scenarios stop at the next sample and release their filesystems.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Fails when Ctrl-C was pressed, so the caller unwinds through its `Drop` guards.
pub fn check_stop() -> BenchResult<()> {
    if STOP.load(Ordering::SeqCst) {
        return Err("interrupted".into());
    }
    Ok(())
}

/// CPU time the calling thread has used so far (user + system, exact).
fn thread_cpu() -> Duration {
    // SAFETY: clock_gettime writes only into the zeroed timespec we own.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: as above; CLOCK_THREAD_CPUTIME_ID is valid on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// One measured run of one contender.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Wall time (per call, for batched micro rows).
    pub wall: Duration,
    /// CPU time (user + system) of the thread or process that made the calls (per call);
    /// kernel worker threads are not counted on either side.
    pub cpu: Duration,
    /// Peak memory: our heap growth during the run, or btrfs-progs' peak RSS, in bytes.
    pub peak_mem: u64,
}

/// Runs `op` `batch` times in this thread and returns the per-call sample with the heap peak
/// it reached above the heap in use before. Never inlined, so that
/// `valgrind --tool=callgrind --toggle-collect='*measure::ours*'` counts our side alone.
#[inline(never)]
pub fn ours<T>(batch: u32, mut op: impl FnMut() -> BenchResult<T>) -> BenchResult<(Sample, T)> {
    let base = start_peak();
    let cpu0 = thread_cpu();
    let start = Instant::now();
    let mut last = op()?;
    for _ in 1..batch {
        last = op()?;
    }
    let wall = start.elapsed();
    let cpu1 = thread_cpu();
    let peak = peak_since(base);
    Ok((
        Sample {
            wall: wall / batch,
            cpu: cpu1.saturating_sub(cpu0) / batch,
            peak_mem: peak as u64,
        },
        last,
    ))
}

/// The result of one btrfs-progs run.
pub struct ProgsRun {
    /// Its arguments (without the path).
    pub args: Vec<String>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// Its exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// CPU time (user + system) of the child.
    pub cpu: Duration,
    /// Peak RSS of the child in bytes.
    pub max_rss: u64,
}

/// Spawns `btrfs ARGS... PATH`, reads its output and reaps it with `wait4` for its rusage.
pub fn spawn_btrfs(args: &[&str], path: &Path) -> BenchResult<ProgsRun> {
    spawn_program("btrfs", args, &[path.as_os_str()])
}

/// Spawns `PROGRAM ARGS... OPERANDS...`, reads its output and reaps it with `wait4` for its
/// rusage.
pub fn spawn_program(
    program: &str,
    args: &[&str],
    operands: &[&std::ffi::OsStr],
) -> BenchResult<ProgsRun> {
    let mut child = Command::new(program)
        .args(args)
        .args(operands)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {program} {args:?}: {e} (is it installed?)"))?;
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut stdout)?;
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)?;
    let mut status = 0;
    // SAFETY: wait4 writes only into the owned status and rusage; the pid is our child's, and
    // it is reaped here only (std's Child is never waited on afterwards).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: as above.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if rc != pid {
        return Err(format!(
            "wait4 for {program} {args:?}: {}",
            std::io::Error::last_os_error()
        )
        .into());
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ok(ProgsRun {
        args: args.iter().map(|a| a.to_string()).collect(),
        stdout,
        stderr,
        code,
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        max_rss: usage.ru_maxrss as u64 * 1024,
    })
}

impl ProgsRun {
    /// Fails unless the exit code is one of `ok`, quoting stderr.
    pub fn expect_code(&self, ok: &[i32]) -> BenchResult<()> {
        match self.code {
            Some(c) if ok.contains(&c) => Ok(()),
            code => Err(format!(
                "btrfs {:?} exited {code:?}: {}",
                self.args,
                self.stderr.trim()
            )
            .into()),
        }
    }
}

/// Times one spawn of btrfs-progs plus `parse` of its output (spawned and parsed, as a tool
/// that shells out must).
pub fn progs<T>(
    args: &[&str],
    path: &Path,
    parse: impl FnOnce(&ProgsRun) -> BenchResult<T>,
) -> BenchResult<(Sample, T)> {
    program("btrfs", args, &[path.as_os_str()], parse)
}

/// Times one spawn of `PROGRAM ARGS... OPERANDS...` plus `parse` of its output.
pub fn program<T>(
    program: &str,
    args: &[&str],
    operands: &[&std::ffi::OsStr],
    parse: impl FnOnce(&ProgsRun) -> BenchResult<T>,
) -> BenchResult<(Sample, T)> {
    let start = Instant::now();
    let run = spawn_program(program, args, operands)?;
    let parsed = parse(&run)?;
    let wall = start.elapsed();
    Ok((
        Sample {
            wall,
            cpu: run.cpu,
            peak_mem: run.max_rss,
        },
        parsed,
    ))
}

/// Times a sequence of btrfs-progs runs as one sample (wall time of all, CPU time summed,
/// the largest peak RSS), parsing each output with `parse`.
pub fn progs_seq<T>(
    commands: &[Vec<&str>],
    path: &Path,
    mut parse: impl FnMut(&ProgsRun) -> BenchResult<T>,
) -> BenchResult<(Sample, Vec<T>)> {
    let start = Instant::now();
    let mut sample = Sample::default();
    let mut parsed = Vec::new();
    for args in commands {
        let run = spawn_btrfs(args, path)?;
        parsed.push(parse(&run)?);
        sample.cpu += run.cpu;
        sample.peak_mem = sample.peak_mem.max(run.max_rss);
    }
    sample.wall = start.elapsed();
    Ok((sample, parsed))
}

/// A pair of samples taken back to back: ours (A), then btrfs-progs (B).
#[derive(Debug, Clone, Copy)]
pub struct Pair {
    /// Our sample.
    pub ours: Sample,
    /// btrfs-progs' sample.
    pub progs: Sample,
}

impl Pair {
    /// How many times longer btrfs-progs took in this pair.
    pub fn ratio(&self) -> f64 {
        self.progs.wall.as_secs_f64() / self.ours.wall.as_secs_f64().max(1e-12)
    }
}

/// Median, minimum and maximum of some values.
#[derive(Debug, Clone, Copy)]
pub struct Spread<T> {
    /// The median (the upper middle one for an even count).
    pub median: T,
    /// The smallest.
    pub min: T,
    /// The largest.
    pub max: T,
}

/// The median and range of `values` (which must not be empty).
pub fn spread<T: Copy + PartialOrd>(values: impl IntoIterator<Item = T>) -> Spread<T> {
    let mut v: Vec<T> = values.into_iter().collect();
    assert!(!v.is_empty(), "spread of no values");
    v.sort_by(|a, b| a.partial_cmp(b).expect("comparable values"));
    Spread {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}
