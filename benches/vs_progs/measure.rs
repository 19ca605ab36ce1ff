//! Measuring: wall time, the calling thread's CPU time, peak heap of our side, and spawning
//! btrfs-progs with its own wall time, CPU time and peak RSS.
//!
//! btrfs-progs is not spawned by the harness itself but by a small spawner: this same binary,
//! started with [`SPAWNER_ENV`] set, which does nothing but fork, exec the program, reap it
//! with `wait4` and report. The reason is the peak RSS: exec keeps the high-water mark of the
//! memory it replaces in the child's `ru_maxrss` (Linux `exec_mmap`), so a child of the harness
//! reports at least the harness's RSS, and a vfork child (what `posix_spawn` does) at least its
//! parent's. The spawner forks (a fork copies only the pages a page fault could not refill, so
//! the child starts small) and holds the program's arguments in one buffer; the child reads its
//! own RSS just before exec (`getrusage`), the floor under that run's figure: a peak at or below
//! it is reported as "at most". The spawner also times the run, from the child's last step
//! before exec to the reap, so neither the extra process nor its fork costs btrfs-progs anything
//! (a direct spawn's vfork is not counted either: BENCHMARKS.md says how much that leaves out).

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

/// The clock `id` now, as a duration since its origin: `CLOCK_THREAD_CPUTIME_ID` is the CPU
/// time the calling thread has used so far (user + system, exact). No allocation: the
/// spawner's child calls it between fork and exec.
fn clock(id: libc::clockid_t) -> Duration {
    // SAFETY: an all-zero timespec is a valid value of this plain C struct.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: clock_gettime writes only into the owned timespec; the callers pass clocks Linux
    // has.
    unsafe { libc::clock_gettime(id, &mut t) };
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
    /// For btrfs-progs: the spawner child's RSS just before exec in the run that gave
    /// `peak_mem` (a `peak_mem` at or below it is only an upper bound); 0 for ours.
    pub peak_floor: u64,
}

impl Sample {
    /// Takes `run`'s peak RSS (with its floor) when it is the largest so far.
    pub fn add_progs_peak(&mut self, run: &ProgsRun) {
        if run.max_rss > self.peak_mem {
            self.peak_mem = run.max_rss;
            self.peak_floor = run.rss_floor;
        }
    }
}

/// Runs `op` `batch` times in this thread and returns the per-call sample with the heap peak
/// it reached above the heap in use before. Never inlined, so that
/// `valgrind --tool=callgrind --toggle-collect='*measure::ours*'` counts our side alone.
#[inline(never)]
pub fn ours<T>(batch: u32, mut op: impl FnMut() -> BenchResult<T>) -> BenchResult<(Sample, T)> {
    let base = start_peak();
    let cpu0 = clock(libc::CLOCK_THREAD_CPUTIME_ID);
    let start = Instant::now();
    let mut last = op()?;
    for _ in 1..batch {
        last = op()?;
    }
    let wall = start.elapsed();
    let cpu1 = clock(libc::CLOCK_THREAD_CPUTIME_ID);
    let peak = peak_since(base);
    Ok((
        Sample {
            wall: wall / batch,
            cpu: cpu1.saturating_sub(cpu0) / batch,
            peak_mem: peak as u64,
            peak_floor: 0,
        },
        last,
    ))
}

/// Set in the environment of this binary when it is started as the spawner of one program;
/// its value is the file the spawner writes its report to. Its one argument is the file
/// holding the program's argv (each argument followed by a NUL byte).
pub const SPAWNER_ENV: &str = "VS_PROGS_SPAWNER_REPORT";

/// If this process was started as the spawner (see the module docs), runs the program its
/// arguments name, writes the report and exits; otherwise returns at once. Called first thing in
/// `main`, before anything else allocates or maps memory.
pub fn run_as_spawner_if_asked() {
    let Some(report) = std::env::var_os(SPAWNER_ENV) else {
        return;
    };
    let code = match spawner(Path::new(&report)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("vs_progs spawner: {e}");
            70
        }
    };
    std::process::exit(code);
}

/// Forks and execs the argv held in the file named by its argument, with this process's stdio;
/// reaps the child with `wait4`, and writes `wall_ns cpu_ns maxrss_bytes exit_code
/// floor_bytes` (exit code -1: killed by a signal; 127: the exec failed) to `report`. The wall
/// time runs from the child's last step before exec (it reads the clock and its own RSS and
/// hands them over a pipe) to the reap, so the fork is not counted.
fn spawner(report: &Path) -> BenchResult<()> {
    let argv_file = std::env::args_os()
        .nth(1)
        .ok_or("spawner: no argv file given")?;
    // One buffer, the arguments pointed into in place: the child's RSS at exec holds them once.
    let argv = std::fs::read(&argv_file)?;
    if argv.last() != Some(&0) {
        return Err("spawner: the argv file does not end with a NUL".into());
    }
    let mut arg_ptrs: Vec<*const libc::c_char> = argv[..argv.len() - 1]
        .split(|&b| b == 0)
        .map(|arg| arg.as_ptr().cast())
        .collect();
    arg_ptrs.push(std::ptr::null());
    let env = std::env::vars_os()
        .filter(|(k, _)| k != SPAWNER_ENV)
        .map(|(k, v)| {
            use std::os::unix::ffi::OsStrExt;
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            std::ffi::CString::new(kv.as_bytes())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    const EXEC_FAILED: &[u8] = b"vs_progs spawner: exec failed (is the program installed?)\n";
    let mut pipe = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the owned array.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2: {}", std::io::Error::last_os_error()).into());
    }
    let [read_end, write_end] = pipe;
    // SAFETY: this process runs no other thread (the spawner does nothing else), so the child
    // may run anything; it calls only getrusage, clock_gettime, write, execvpe and _exit, on
    // pointers into values that outlive the call.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above; the argument and environment arrays are null-terminated and point
        // into live buffers, the rusage is the child's own, the pipe's write end is open
        // (closed by the exec).
        unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            let now = clock(libc::CLOCK_MONOTONIC);
            let handover: [i64; 3] = [
                now.as_secs() as i64,
                i64::from(now.subsec_nanos()),
                usage.ru_maxrss as i64,
            ];
            libc::write(
                write_end,
                handover.as_ptr().cast(),
                std::mem::size_of_val(&handover),
            );
            libc::execvpe(arg_ptrs[0], arg_ptrs.as_ptr(), env_ptrs.as_ptr());
            libc::write(2, EXEC_FAILED.as_ptr().cast(), EXEC_FAILED.len());
            libc::_exit(127);
        }
    }
    // SAFETY: closing our copy of the write end, which nothing else uses.
    unsafe { libc::close(write_end) };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()).into());
    }
    let (status, usage) = wait4(pid)?;
    let reaped = clock(libc::CLOCK_MONOTONIC);
    let mut handover = [0i64; 3];
    // SAFETY: read writes at most the size of the owned array; the read end is ours.
    let n = unsafe {
        libc::read(
            read_end,
            handover.as_mut_ptr().cast(),
            std::mem::size_of_val(&handover),
        )
    };
    // SAFETY: closing our read end, which nothing else uses.
    unsafe { libc::close(read_end) };
    if n != std::mem::size_of_val(&handover) as isize {
        return Err("the child did not hand over its clock and RSS readings".into());
    }
    let [sec, nsec, floor_kib] = handover;
    let wall = reaped.saturating_sub(Duration::new(sec as u64, nsec as u32));
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let cpu = timeval(usage.ru_utime) + timeval(usage.ru_stime);
    std::fs::write(
        report,
        format!(
            "{} {} {} {code} {}\n",
            wall.as_nanos(),
            cpu.as_nanos(),
            usage.ru_maxrss as u64 * 1024,
            floor_kib as u64 * 1024
        ),
    )?;
    Ok(())
}

/// Reaps our child `pid` with `wait4`: its wait status and resource usage.
fn wait4(pid: libc::pid_t) -> BenchResult<(libc::c_int, libc::rusage)> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes only into the owned status and rusage; the pid is our child's, and
    // it is reaped here only.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if rc != pid {
        return Err(format!("wait4 for pid {pid}: {}", std::io::Error::last_os_error()).into());
    }
    Ok((status, usage))
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
    /// Wall time from spawning it to reaping it (taken by the spawner).
    pub wall: Duration,
    /// CPU time (user + system) of the child.
    pub cpu: Duration,
    /// Peak RSS of the child in bytes (`ru_maxrss`; never below `rss_floor`).
    pub max_rss: u64,
    /// The child's RSS just before exec, in bytes: a `max_rss` at or below it is only an upper
    /// bound of the program's own peak.
    pub rss_floor: u64,
}

/// Runs `btrfs ARGS... PATH` through the spawner and reads its output and report.
pub fn spawn_btrfs(args: &[&str], path: &Path) -> BenchResult<ProgsRun> {
    spawn_program("btrfs", args, &[path.as_os_str()])
}

/// Runs `PROGRAM ARGS... OPERANDS...` through the spawner (see the module docs) and reads its
/// output and the spawner's report (wall time, CPU time, peak RSS, exit code).
pub fn spawn_program(
    program: &str,
    args: &[&str],
    operands: &[&std::ffi::OsStr],
) -> BenchResult<ProgsRun> {
    let report = tempfile::NamedTempFile::new()?;
    let mut argv = tempfile::NamedTempFile::new()?;
    {
        use std::io::Write;
        use std::os::unix::ffi::OsStrExt;
        let mut all = Vec::new();
        for a in [std::ffi::OsStr::new(program)]
            .into_iter()
            .chain(args.iter().map(std::ffi::OsStr::new))
            .chain(operands.iter().copied())
        {
            if a.as_bytes().contains(&0) {
                return Err(format!("an argument of {program} holds a NUL byte: {a:?}").into());
            }
            all.extend_from_slice(a.as_bytes());
            all.push(0);
        }
        argv.write_all(&all)?;
        argv.flush()?;
    }
    let mut spawner = Command::new(std::env::current_exe()?)
        .arg(argv.path())
        .env(SPAWNER_ENV, report.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start the spawner for {program} {args:?}: {e}"))?;
    let mut stdout = String::new();
    spawner
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut stdout)?;
    let mut stderr = String::new();
    spawner
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)?;
    let status = spawner.wait()?;
    if !status.success() {
        return Err(format!(
            "the spawner of {program} {args:?} failed ({status}): {}",
            stderr.trim()
        )
        .into());
    }
    let text = std::fs::read_to_string(report.path())?;
    let fields: Vec<i64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("spawner report {text:?}: {e}"))?;
    let [wall, cpu, max_rss, code, floor] = fields[..] else {
        return Err(format!("spawner report {text:?}: not five fields").into());
    };
    Ok(ProgsRun {
        args: args.iter().map(|a| a.to_string()).collect(),
        stdout,
        stderr,
        code: (code >= 0).then_some(code as i32),
        wall: Duration::from_nanos(wall as u64),
        cpu: Duration::from_nanos(cpu as u64),
        max_rss: max_rss as u64,
        rss_floor: floor as u64,
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

/// Times one spawn of `PROGRAM ARGS... OPERANDS...` plus `parse` of its output: the
/// spawner's spawn-to-reap time plus the parse.
pub fn program<T>(
    program: &str,
    args: &[&str],
    operands: &[&std::ffi::OsStr],
    parse: impl FnOnce(&ProgsRun) -> BenchResult<T>,
) -> BenchResult<(Sample, T)> {
    let run = spawn_program(program, args, operands)?;
    let start = Instant::now();
    let parsed = parse(&run)?;
    let parse_time = start.elapsed();
    Ok((
        Sample {
            wall: run.wall + parse_time,
            cpu: run.cpu,
            peak_mem: run.max_rss,
            peak_floor: run.rss_floor,
        },
        parsed,
    ))
}

/// Times a sequence of btrfs-progs runs as one sample (the runs' spawn-to-reap times and the
/// parses, CPU time summed, the largest peak RSS), parsing each output with `parse`.
pub fn progs_seq<T>(
    commands: &[Vec<&str>],
    path: &Path,
    mut parse: impl FnMut(&ProgsRun) -> BenchResult<T>,
) -> BenchResult<(Sample, Vec<T>)> {
    let mut sample = Sample::default();
    let mut parsed = Vec::new();
    for args in commands {
        let run = spawn_btrfs(args, path)?;
        let start = Instant::now();
        parsed.push(parse(&run)?);
        sample.wall += run.wall + start.elapsed();
        sample.cpu += run.cpu;
        sample.add_progs_peak(&run);
    }
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
