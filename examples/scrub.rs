//! Scrub a btrfs filesystem: verify every copy of every block, repair from good copies, and
//! name the files that cannot be repaired.
//!
//! ```text
//! cargo run --example scrub -- start  [PATH] [--read-only] [--device ID]... [--limit 100m] [--json]
//! cargo run --example scrub -- resume [PATH] [--json]
//! cargo run --example scrub -- status [PATH] [--json]
//! cargo run --example scrub -- cancel [PATH]
//! cargo run --example scrub -- files  PATH LOGICAL      # which files hold a logical address
//! ```
//!
//! PATH defaults to /var/lib/docker. A progress bar shows bytes, rate and errors so far;
//! Ctrl-C (or SIGTERM) cancels cleanly, records where each device got to, and says how to
//! resume. `--json` prints one JSON document at the end instead.
//!
//! Exit codes: 0 clean (or the command succeeded), 1 error, 2 usage error, 3 errors found and
//! all corrected, 4 uncorrectable errors, 5 cancelled (resumable), 6 a device's scrub failed.

use btrfs_kit::scrub::{
    DamageReport, DeviceScrubState, ResumeOrigin, ScrubHandle, ScrubOutcome, ScrubProgress,
    ScrubRequest, ScrubState, ScrubVerdict, DEFAULT_STATE_DIR,
};
use btrfs_kit::sysfs::SpeedLimit;
use btrfs_kit::{ByteSize, Error, ErrorKind, Filesystem};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use opskit::Interrupts;
use opskit::{errln, outln};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

const EXIT_ERROR: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_CORRECTED: u8 = 3;
const EXIT_UNCORRECTABLE: u8 = 4;
const EXIT_CANCELLED: u8 = 5;
const EXIT_FAILED: u8 = 6;

/// The exit codes and output rules, at the end of every `--help`.
const AFTER_HELP: &str = "Exit codes: 0 clean (or the command succeeded), 1 error, 2 usage error, 3 errors found and all corrected, \
4 uncorrectable errors, 5 cancelled (resume it), 6 a device's scrub failed.\n\
--json prints one JSON document (not JSON lines) when the command ends.\n\
Ctrl-C or SIGTERM cancels the scrub cleanly and records each device's position for `resume`.";

#[derive(Parser, Debug)]
#[command(
    about = "Scrub a btrfs filesystem: verify checksums of every copy, repair from good copies, name damaged files",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a new scrub (from the beginning of each device).
    #[command(after_help = AFTER_HELP)]
    Start(RunArgs),
    /// Continue the cancelled or interrupted scrub recorded for this filesystem; with nothing
    /// recorded, start from the beginning (and say so).
    #[command(after_help = AFTER_HELP)]
    Resume(RunArgs),
    /// Show the running scrub and the recorded ones.
    #[command(after_help = AFTER_HELP)]
    Status(StatusArgs),
    /// Cancel the running scrub (whoever started it).
    Cancel {
        /// A path on the mounted btrfs filesystem.
        #[arg(default_value = "/var/lib/docker")]
        path: PathBuf,
    },
    /// Name the files that hold a logical address (e.g. from a kernel log message).
    Files {
        /// A path on the mounted btrfs filesystem.
        path: PathBuf,
        /// The logical byte address.
        logical: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// A path on the mounted btrfs filesystem.
    #[arg(default_value = "/var/lib/docker")]
    path: PathBuf,
    /// Only verify; never write repairs (needed on a read-only mount).
    #[arg(short = 'r', long)]
    read_only: bool,
    /// Scrub only this device id (repeat for more); default every device.
    #[arg(long = "device", value_name = "ID")]
    devices: Vec<u64>,
    /// Limit each device to this many bytes per second (e.g. 100m, 1g) for this scrub.
    #[arg(long, value_parser = parse_size)]
    limit: Option<u64>,
    /// Where the scrub state file lives.
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Record no state (the scrub cannot be resumed).
    #[arg(long, conflicts_with = "state_dir")]
    no_state: bool,
    /// Print one JSON document with the outcome instead of a progress bar and text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct StatusArgs {
    /// A path on the mounted btrfs filesystem.
    #[arg(default_value = "/var/lib/docker")]
    path: PathBuf,
    /// Where the scrub state file lives.
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// A size like `100m` or `1G` (binary units, btrfs-kit's `ByteSize`) or plain bytes; not 0.
fn parse_size(s: &str) -> Result<u64, String> {
    let size = s
        .parse::<btrfs_kit::ByteSize>()
        .map_err(|_| format!("{s:?} is not a size (e.g. 100m)"))?;
    Some(size.bytes())
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("{s:?} is out of range"))
}

/// An error with the exit code it maps to.
struct Failure {
    message: String,
    code: u8,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = if matches!(e.kind(), ErrorKind::InvalidArguments { .. }) {
            EXIT_USAGE
        } else {
            EXIT_ERROR
        };
        let hint = match e.kind() {
            ErrorKind::ReadOnly => "; or scrub read-only with --read-only",
            ErrorKind::ScrubAlreadyRunning { .. } => {
                "; see `scrub status`, or stop it with `scrub cancel`"
            }
            _ => "",
        };
        Failure {
            message: format!("{e}{hint}"),
            code,
        }
    }
}

/// Writes a report to stdout (a closed pipe ends the program as `opskit` says).
fn emit(text: &str) {
    outln!("{}", text.strip_suffix('\n').unwrap_or(text));
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).expect("values serialise") + "\n"
}

fn main() -> ExitCode {
    opskit::run(|| match run(Cli::parse().command) {
        Ok(code) => code,
        Err(f) => {
            errln!("error: {}", f.message);
            f.code
        }
    })
}

fn run(command: Command) -> Result<u8, Failure> {
    match command {
        Command::Start(args) => scrub(&args, false),
        Command::Resume(args) => scrub(&args, true),
        Command::Status(args) => status(&args),
        Command::Cancel { path } => {
            Filesystem::open(&path)?.scrub_cancel()?;
            emit(&format!("scrub on {} cancelled\n", path.display()));
            Ok(0)
        }
        Command::Files {
            path,
            logical,
            json,
        } => {
            let files = Filesystem::open(&path)?.files_at_logical(logical)?;
            if json {
                emit(&to_json(&files));
            } else if files.is_empty() {
                emit(&format!("no file holds logical address {logical}\n"));
            } else {
                let mut text = String::new();
                for f in &files {
                    text += &describe_file(f);
                }
                emit(&text);
            }
            Ok(0)
        }
    }
}

/// SIGINT and SIGTERM, counted on their own threads; the progress loop turns the first into
/// a cancel.
fn watch_signals() -> Result<Interrupts, Failure> {
    Interrupts::install().map_err(|e| Failure {
        message: format!("cannot handle SIGINT and SIGTERM: {e}"),
        code: EXIT_ERROR,
    })
}

fn request_of(args: &RunArgs) -> ScrubRequest {
    let mut request = ScrubRequest::new().read_only(args.read_only);
    for &devid in &args.devices {
        request = request.device(devid);
    }
    if let Some(limit) = args.limit {
        request = request.speed_limit(SpeedLimit::BytesPerSecond(ByteSize(limit)));
    }
    if args.no_state {
        request.no_state()
    } else {
        request.state_dir(&args.state_dir)
    }
}

fn scrub(args: &RunArgs, resume: bool) -> Result<u8, Failure> {
    let fs = Filesystem::open(&args.path)?;
    let signals = watch_signals()?;
    let request = request_of(args);
    let handle = if resume {
        fs.scrub_resume_background(&request)?
    } else {
        fs.scrub_background(&request)?
    };
    if let ResumeOrigin::NothingToResume { reason } = handle.origin() {
        errln!("nothing to resume ({reason}): scrubbing from the beginning");
    }
    let cancelled = follow(&handle, &signals, args.json)?;
    let outcome = handle.wait()?;
    let stats = fs.device_stats_all().unwrap_or_default();
    if args.json {
        emit(&to_json(&serde_json::json!({
            "path": args.path,
            "outcome": outcome,
            "device_stats": stats,
        })));
    } else {
        emit(&describe_outcome(&args.path, &outcome, &stats));
    }
    if cancelled || outcome.verdict == ScrubVerdict::Cancelled {
        let how = if outcome.resumable() {
            format!(
                "resume with: cargo run --example scrub -- resume {}{}",
                args.path.display(),
                if args.state_dir != Path::new(DEFAULT_STATE_DIR) {
                    format!(" --state-dir {}", args.state_dir.display())
                } else {
                    String::new()
                }
            )
        } else {
            "no state was recorded (--no-state): start it again to scrub everything".into()
        };
        errln!("scrub cancelled; {how}");
    }
    Ok(match outcome.verdict {
        ScrubVerdict::Clean => 0,
        ScrubVerdict::Corrected => EXIT_CORRECTED,
        ScrubVerdict::Uncorrectable => EXIT_UNCORRECTABLE,
        ScrubVerdict::Cancelled => EXIT_CANCELLED,
        ScrubVerdict::Failed => EXIT_FAILED,
    })
}

/// Shows progress until the scrub ends; cancels on the first signal. Whether it cancelled.
fn follow(handle: &ScrubHandle, signals: &Interrupts, quiet: bool) -> Result<bool, Failure> {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} scrub [{bar:30}] {bytes}/{total_bytes} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut cancelled = false;
    while !handle.is_finished() {
        if signals.count() > 0 && !cancelled {
            cancelled = true;
            bar.suspend(|| errln!("cancelling the scrub (each device's position is recorded)"));
            if let Err(e) = handle.cancel() {
                // Not running any more: it ended on its own meanwhile.
                if !matches!(e.kind(), ErrorKind::ScrubNotRunning) {
                    bar.suspend(|| errln!("cancel: {e}"));
                }
            }
        }
        if let Ok(p) = handle.progress() {
            bar.set_length(p.expected.bytes().max(p.total.bytes_scrubbed().bytes()));
            bar.set_position(p.total.bytes_scrubbed().bytes());
            bar.set_message(format!(
                "{}/s, {} errors ({} corrected, {} uncorrectable)",
                ByteSize(p.rate() as u64),
                p.total.errors(),
                p.total.corrected_errors,
                p.total.uncorrectable_errors
            ));
        }
        bar.tick();
        std::thread::sleep(Duration::from_millis(200));
    }
    bar.finish_and_clear();
    Ok(cancelled)
}

fn counters(p: &ScrubProgress) -> String {
    format!(
        "{} scrubbed (data {}, metadata {}); errors: read {}, csum {}, verify {}, super {}; corrected {}, uncorrectable {}",
        p.bytes_scrubbed(),
        p.data_bytes,
        p.tree_bytes,
        p.read_errors,
        p.csum_errors,
        p.verify_errors,
        p.super_errors,
        p.corrected_errors,
        p.uncorrectable_errors
    )
}

fn describe_file(f: &btrfs_kit::inspect::DamagedFile) -> String {
    let subvolume = match &f.subvolume_path {
        Some(p) if p.as_os_str().is_empty() => "top level".to_string(),
        Some(p) => p.display().to_string(),
        None => "unresolved".to_string(),
    };
    let paths: Vec<String> = f.paths.iter().map(|p| p.display().to_string()).collect();
    format!(
        "  subvolume {} ({subvolume}), inode {}: {} at file offsets {:?}{}\n",
        f.subvolume_id,
        f.inode,
        if paths.is_empty() {
            "(no path found)".into()
        } else {
            paths.join(", ")
        },
        f.offsets,
        if f.reachable {
            ""
        } else {
            " (paths relative to the subvolume, which is not reachable from this mount)"
        }
    )
}

fn describe_damage(d: &DamageReport) -> String {
    let mut text = String::new();
    if d.metadata_damaged() {
        text += "METADATA is damaged: run `btrfs check --readonly` and restore from backup\n";
    }
    if !d.files.is_empty() {
        text += "damaged files (they read as I/O errors there; restore them):\n";
        for f in &d.files {
            text += &describe_file(f);
        }
    }
    if !d.suspects.is_empty() {
        text += "files in damaged stripes where no bad sector was pinned down (check them):\n";
        for f in &d.suspects {
            text += &describe_file(f);
        }
    }
    for l in d.locations.iter().filter(|l| !l.pinpointed) {
        text += &format!(
            "  damaged {} range at logical {} (+{} bytes){}\n",
            l.kind
                .map(|k| k.to_string())
                .unwrap_or_else(|| "unknown".into()),
            l.logical,
            l.length,
            l.devid
                .map(|d| format!(" on device {d}"))
                .unwrap_or_default()
        );
    }
    if !d.complete {
        text += &format!(
            "the list may be incomplete: {}\n",
            if d.notes.is_empty() {
                "not every error could be located".into()
            } else {
                d.notes.join("; ")
            }
        );
    }
    text
}

fn describe_outcome(
    path: &Path,
    o: &ScrubOutcome,
    stats: &[btrfs_kit::devstats::DeviceStats],
) -> String {
    let mut text = format!(
        "scrub of {} (fsid {}){}: {}\n",
        path.display(),
        o.fsid,
        if o.read_only { ", read-only" } else { "" },
        o.verdict
    );
    if let ResumeOrigin::Resumed { started } = &o.origin {
        text += &format!("  resumed a scrub started {}\n", ago(*started));
    }
    for d in &o.devices {
        let state = match &d.state {
            DeviceScrubState::Finished => "finished".to_string(),
            DeviceScrubState::Skipped => "done in an earlier run".to_string(),
            DeviceScrubState::Cancelled => {
                format!("cancelled at physical {}", d.progress.last_physical)
            }
            DeviceScrubState::Failed { message, .. } => format!("failed: {message}"),
        };
        text += &format!(
            "  device {} {}: {state}; {}\n",
            d.devid,
            d.path.display(),
            counters(&d.progress)
        );
    }
    let run = o.this_run();
    let secs = o.duration.as_secs_f64();
    text += &format!(
        "  total: {}\n  this run: {} in {:.1} s ({}/s)\n",
        counters(&o.total),
        run.bytes_scrubbed(),
        secs,
        ByteSize(if secs > 0.0 {
            (run.bytes_scrubbed().bytes() as f64 / secs) as u64
        } else {
            0
        })
    );
    for s in stats {
        text += &format!(
            "  device {} error counters: write {}, read {}, flush {}, corruption {}, generation {}\n",
            s.devid, s.write_errs, s.read_errs, s.flush_errs, s.corruption_errs, s.generation_errs
        );
    }
    if let Some(d) = &o.damage {
        text += &describe_damage(d);
    }
    text
}

/// "3 days ago" style, from the wall clock.
fn ago(t: SystemTime) -> String {
    let secs = SystemTime::now()
        .duration_since(t)
        .unwrap_or_default()
        .as_secs();
    let (n, unit) = match secs {
        s if s < 120 => (s, "seconds"),
        s if s < 7200 => (s / 60, "minutes"),
        s if s < 172_800 => (s / 3600, "hours"),
        s => (s / 86_400, "days"),
    };
    format!("{n} {unit} ago")
}

fn status(args: &StatusArgs) -> Result<u8, Failure> {
    let fs = Filesystem::open(&args.path)?;
    let fsid = fs.info()?.fsid;
    let running = fs.scrub_status()?;
    let recorded = ScrubState::load(&args.state_dir, fsid)?;
    if args.json {
        emit(&to_json(&serde_json::json!({
            "path": args.path,
            "fsid": fsid,
            "running": running,
            "recorded": recorded,
            "device_stats": fs.device_stats_all()?,
        })));
        return Ok(0);
    }
    let mut text = String::new();
    match &running {
        Some(s) => {
            text += &format!(
                "scrub running on {} device(s) of {}: {}\n",
                s.running(),
                args.path.display(),
                counters(&s.total())
            );
        }
        None => text += &format!("no scrub running on {}\n", args.path.display()),
    }
    match recorded.as_ref().and_then(|r| r.last_completed()) {
        Some(last) => {
            text += &format!(
                "last completed scrub: finished {} ({}), {}\n",
                ago(last.finished),
                last.verdict,
                counters(&last.totals)
            );
            if last.damaged_files > 0 {
                text += &format!("  it named {} damaged file(s)\n", last.damaged_files);
            }
        }
        None => {
            text += &format!(
                "no completed scrub recorded in {}\n",
                args.state_dir.display()
            )
        }
    }
    if let Some(u) = recorded.as_ref().and_then(|r| r.unfinished()) {
        let state = if u.is_running_elsewhere() {
            "running in another process".to_string()
        } else {
            format!(
                "{:?}, last recorded {}; resume with: cargo run --example scrub -- resume {}",
                u.status,
                ago(u.updated),
                args.path.display()
            )
        };
        text += &format!("unfinished scrub started {}: {state}\n", ago(u.started));
    }
    for s in fs.device_stats_all()? {
        if s.total() > 0 {
            text += &format!(
                "device {} has errors: write {}, read {}, flush {}, corruption {}, generation {}\n",
                s.devid,
                s.write_errs,
                s.read_errs,
                s.flush_errs,
                s.corruption_errs,
                s.generation_errs
            );
        }
    }
    emit(&text);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100m"), Ok(100 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("x").is_err());
    }
}
