//! Balance a btrfs filesystem: by default btrfsmaintenance's daily usage-filtered policy.
//!
//! ```text
//! cargo run --example balance -- [PATH] [options]      # PATH defaults to /var/lib/docker
//! ```
//!
//! * no filter options: the daily policy (data usage 0, 5, 10; metadata usage 0, 5), one line
//!   per step with what was relocated and the unallocated space before and after; a step no
//!   chunk qualifies for (judged from the block groups) is skipped unless `--no-skip`; with
//!   mixed block groups (data and metadata in the same chunks) each step balances both kinds
//!   with one threshold (usage 0, 5, 10), as the kernel requires;
//! * `-d[FILTERS]`, `-m[FILTERS]`, `-s[FILTERS]` in btrfs-progs' syntax
//!   (`-dusage=0..50,limit=4`, `-mconvert=single,soft`), `--full` for an unfiltered balance,
//!   `-f` to force;
//! * `--status`, `--pause`, `--cancel`, `--resume` act on a balance started by anyone;
//! * Ctrl-C pauses the balance (and says how to resume); a second Ctrl-C cancels it;
//! * `--json` prints the outcome for scripts.
//!
//! Exit codes: 0 done, 1 error, 2 usage error, 3 paused, 4 cancelled.

use btrfs_kit::balance::{Balance, BalanceOutcome, BalanceStatus, ChunkFilters, DailyPolicy};
use btrfs_kit::{ByteSize, Filesystem};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const EXIT_ERROR: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_PAUSED: u8 = 3;
const EXIT_CANCELLED: u8 = 4;

#[derive(Parser, Debug)]
#[command(
    about = "Balance a btrfs filesystem (default: the daily usage-filtered maintenance policy)",
    after_help = "Filters use btrfs-progs' syntax: -d[FILTERS] for data, -m[FILTERS] for metadata (also applied to \
system chunks), -s[FILTERS] for system (needs -f). FILTERS is a comma list of profiles=a|b, usage=N or usage=A..B, \
devid=N, drange=A..B, vrange=A..B, limit=N or limit=A..B, stripes=A..B, convert=PROFILE, soft.\n\
Examples: balance /var/lib/docker;  balance -dusage=0..50,limit=4 /mnt;  balance -mconvert=single,soft -f /mnt\n\
Exit codes: 0 done, 1 error, 2 usage error, 3 paused, 4 cancelled."
)]
struct Args {
    /// A path on the mounted btrfs filesystem.
    #[arg(default_value = "/var/lib/docker")]
    path: PathBuf,
    /// Data chunk filters (written -d[FILTERS]).
    #[arg(long = "data", value_name = "FILTERS", require_equals = true, num_args = 0..=1, default_missing_value = "", hide = true)]
    data: Option<String>,
    /// Metadata chunk filters (written -m[FILTERS]).
    #[arg(long = "metadata", value_name = "FILTERS", require_equals = true, num_args = 0..=1, default_missing_value = "", hide = true)]
    metadata: Option<String>,
    /// System chunk filters (written -s[FILTERS]).
    #[arg(long = "system", value_name = "FILTERS", require_equals = true, num_args = 0..=1, default_missing_value = "", hide = true)]
    system: Option<String>,
    /// Balance everything, unfiltered (rewrites all chunks: slow on big filesystems).
    #[arg(long, conflicts_with_all = ["data", "metadata", "system"])]
    full: bool,
    /// Force: allow reducing metadata redundancy and balancing system chunks.
    #[arg(short = 'f', long)]
    force: bool,
    /// Show the running or paused balance.
    #[arg(long, group = "control")]
    status: bool,
    /// Pause the running balance.
    #[arg(long, group = "control")]
    pause: bool,
    /// Cancel the running or paused balance.
    #[arg(long, group = "control")]
    cancel: bool,
    /// Resume a paused balance.
    #[arg(long, group = "control")]
    resume: bool,
    /// Data usage thresholds of the daily policy, in order.
    #[arg(long, value_delimiter = ',', default_value = "0,5,10")]
    data_usage: Vec<u8>,
    /// Metadata usage thresholds of the daily policy, in order.
    #[arg(long, value_delimiter = ',', default_value = "0,5")]
    metadata_usage: Vec<u8>,
    /// Run every policy step through the kernel, even one no chunk qualifies for (by default
    /// such steps are skipped: each balance call costs two transaction commits).
    #[arg(long)]
    no_skip: bool,
    /// Print a machine-readable outcome on stdout.
    #[arg(long)]
    json: bool,
}

/// btrfs-progs writes filters glued to the flag (`-dusage=5`); clap cannot tell `-d /mnt` from
/// `-d FILTERS`, so rewrite them to `--data=FILTERS` before parsing.
fn rewrite_filter_flags(args: impl Iterator<Item = String>) -> Vec<String> {
    args.enumerate()
        .map(|(i, arg)| {
            for (short, long) in [("-d", "--data"), ("-m", "--metadata"), ("-s", "--system")] {
                if i > 0 && arg.starts_with(short) {
                    return format!("{long}={}", &arg[2..]);
                }
            }
            arg
        })
        .collect()
}

/// One balance run, as printed and as JSON.
#[derive(Serialize)]
struct StepReport {
    request: String,
    state: &'static str,
    considered: u64,
    relocated: u64,
    unallocated_before: u64,
    unallocated_after: u64,
}

#[derive(Serialize)]
struct Report {
    path: PathBuf,
    mode: &'static str,
    state: &'static str,
    considered: u64,
    relocated: u64,
    steps: Vec<StepReport>,
}

fn state_name(outcome: &BalanceOutcome) -> &'static str {
    match outcome {
        BalanceOutcome::Completed { .. } => "completed",
        BalanceOutcome::Paused(_) => "paused",
        BalanceOutcome::Cancelled(_) => "cancelled",
    }
}

fn main() -> ExitCode {
    let args = Args::parse_from(rewrite_filter_flags(std::env::args()));
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.code)
        }
    }
}

/// An error with the exit code it maps to.
struct Failure {
    message: String,
    code: u8,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<btrfs_kit::Error> for Failure {
    fn from(e: btrfs_kit::Error) -> Self {
        let code = if matches!(e, btrfs_kit::Error::InvalidArguments { .. }) {
            EXIT_USAGE
        } else {
            EXIT_ERROR
        };
        Failure {
            message: with_flags(&e),
            code,
        }
    }
}

/// The library's message, which names library calls, followed by this tool's flags for them.
fn with_flags(e: &btrfs_kit::Error) -> String {
    use btrfs_kit::Error;
    let flags = match e {
        Error::BalanceAlreadyRunning { .. } => {
            "with this tool: --status, --pause, --cancel or --resume"
        }
        Error::InvalidArguments { .. } | Error::KernelRejected { .. } => {
            "with this tool, Balance::force is -f and Balance::full is --full"
        }
        _ => return e.to_string(),
    };
    format!("{e} ({flags})")
}

fn usage_error(message: String) -> Failure {
    Failure {
        message,
        code: EXIT_USAGE,
    }
}

fn run(args: &Args) -> Result<u8, Failure> {
    let fs = Arc::new(Filesystem::open(&args.path)?);
    if args.status {
        return print_status(&fs, fs.balance_status()?, args.json);
    }
    if args.pause || args.cancel {
        if args.pause {
            fs.balance_pause()?
        } else {
            fs.balance_cancel()?
        }
        let verb = if args.pause { "pause" } else { "cancel" };
        if args.json {
            println!(
                "{}",
                serde_json::json!({ "path": args.path, "requested": verb })
            );
        } else {
            println!("{verb} requested on {}", args.path.display());
        }
        return Ok(0);
    }
    let interrupts = install_ctrl_c();
    let (mode, steps): (&str, Vec<Option<Balance>>) = if args.resume {
        ("resume", vec![None])
    } else if let Some(request) = filtered_request(args)? {
        ("filters", vec![Some(request)])
    } else {
        let policy = DailyPolicy {
            data_usage: args.data_usage.clone(),
            metadata_usage: args.metadata_usage.clone(),
        };
        (
            "policy",
            policy
                .steps_for(fs.is_mixed()?)
                .into_iter()
                .map(|s| Some(s.request))
                .collect(),
        )
    };
    let mut reports = Vec::new();
    let mut last_state = "completed";
    // Each step's "after" is the next step's "before": read the usage once per step.
    let mut unallocated = fs.usage()?.unallocated();
    for (i, request) in steps.iter().enumerate() {
        let label = request
            .as_ref()
            .map_or("--resume".to_string(), |r| r.to_string());
        let before = unallocated;
        let skip = match request {
            Some(r) if mode == "policy" && !args.no_skip => fs.balance_candidates(r)? == Some(0),
            _ => false,
        };
        let outcome = if skip {
            BalanceOutcome::Completed {
                considered: 0,
                relocated: 0,
            }
        } else {
            run_one(&fs, request.as_ref(), &label, &interrupts, args.json)?
        };
        // A skipped step changed nothing.
        let after = if skip {
            before
        } else {
            fs.usage()?.unallocated()
        };
        unallocated = after;
        last_state = if skip {
            "skipped"
        } else {
            state_name(&outcome)
        };
        if !args.json {
            println!(
                "step {}/{} {label}: {last_state}, relocated {} of {} chunks considered; unallocated {before} -> {after}",
                i + 1,
                steps.len(),
                outcome.relocated(),
                outcome.considered(),
            );
        }
        reports.push(StepReport {
            request: label,
            state: last_state,
            considered: outcome.considered(),
            relocated: outcome.relocated(),
            unallocated_before: before.bytes(),
            unallocated_after: after.bytes(),
        });
        if !matches!(outcome, BalanceOutcome::Completed { .. }) {
            break;
        }
    }
    let report = Report {
        path: args.path.clone(),
        mode,
        state: if last_state == "skipped" {
            "completed"
        } else {
            last_state
        },
        considered: reports.iter().map(|r| r.considered).sum(),
        relocated: reports.iter().map(|r| r.relocated).sum(),
        steps: reports,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    }
    Ok(match last_state {
        "paused" => {
            eprintln!(
                "balance paused; resume with: cargo run --example balance -- --resume {} (or cancel with --cancel)",
                args.path.display()
            );
            EXIT_PAUSED
        }
        "cancelled" => EXIT_CANCELLED,
        _ => 0,
    })
}

/// The request of the -d/-m/-s/--full options, or `None` for the daily policy.
fn filtered_request(args: &Args) -> Result<Option<Balance>, Failure> {
    let parse = |s: &Option<String>| -> Result<Option<ChunkFilters>, Failure> {
        s.as_deref()
            .map(|s| {
                s.parse::<ChunkFilters>()
                    .map_err(|e| usage_error(e.to_string()))
            })
            .transpose()
    };
    let request = if args.full {
        Balance::full()
    } else {
        let (data, metadata, system) = (
            parse(&args.data)?,
            parse(&args.metadata)?,
            parse(&args.system)?,
        );
        if data.is_none() && metadata.is_none() && system.is_none() {
            return Ok(None);
        }
        let mut request = Balance::new();
        request.data = data;
        request.metadata = metadata;
        request.system = system;
        request
    };
    let request = request.force(args.force);
    request
        .validate()
        .map_err(|e| usage_error(with_flags(&e)))?;
    Ok(Some(request))
}

/// Counts Ctrl-C presses; the main loop turns them into pause and cancel requests.
fn install_ctrl_c() -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let handler_count = Arc::clone(&count);
    // Without a handler SIGINT is fatal, which the kernel turns into a cancel (5.9+); with
    // one, we must ask for the pause ourselves.
    let _ = ctrlc::set_handler(move || {
        handler_count.fetch_add(1, Ordering::SeqCst);
    });
    count
}

/// Runs one balance (or a resume) in the background with a progress bar and Ctrl-C handling.
fn run_one(
    fs: &Filesystem,
    request: Option<&Balance>,
    label: &str,
    interrupts: &AtomicUsize,
    quiet: bool,
) -> Result<BalanceOutcome, Failure> {
    let handle = match request {
        Some(r) => fs.balance_background(r)?,
        None => fs.balance_resume_background()?,
    };
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:30}] {pos}/{len} chunks relocated, {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    let mut acted_on = 0;
    while !handle.is_finished() {
        let presses = interrupts.load(Ordering::SeqCst);
        if presses > acted_on {
            acted_on = presses;
            let result = if presses == 1 {
                handle.pause()
            } else {
                handle.cancel()
            };
            let what = if presses == 1 {
                "pausing after the current chunk (Ctrl-C again to cancel)"
            } else {
                "cancelling"
            };
            bar.suspend(|| eprintln!("{what}"));
            if let Err(e) = result {
                bar.suspend(|| eprintln!("balance: {e}"));
            }
        }
        if let Ok(Some(p)) = handle.progress() {
            bar.set_length(p.expected);
            bar.set_position(p.relocated);
            bar.set_message(format!("{} considered", p.considered));
        }
        bar.tick();
        std::thread::sleep(Duration::from_millis(200));
    }
    bar.finish_and_clear();
    Ok(handle.wait()?)
}

fn print_status(fs: &Filesystem, status: Option<BalanceStatus>, json: bool) -> Result<u8, Failure> {
    let path = fs.path().display();
    match (status, json) {
        (None, true) => println!(
            "{}",
            serde_json::json!({ "path": fs.path(), "state": "none" })
        ),
        (None, false) => println!("no balance found on {path}"),
        (Some(s), true) => {
            let state = if s.running { "running" } else { "paused" };
            println!(
                "{}",
                serde_json::json!({
                    "path": fs.path(), "state": state, "request": s.request.to_string(),
                    "expected": s.progress.expected, "considered": s.progress.considered,
                    "relocated": s.progress.relocated,
                    "pause_requested": s.pause_requested, "cancel_requested": s.cancel_requested,
                })
            );
        }
        (Some(s), false) => {
            let state = if s.running { "running" } else { "paused" };
            let left = if s.progress.expected > 0 {
                100.0 * (1.0 - s.progress.relocated as f64 / s.progress.expected as f64)
            } else {
                0.0
            };
            println!("balance on {path} is {state} ({})", s.request);
            println!(
                "{} out of about {} chunks balanced ({} considered), {left:.0}% left",
                s.progress.relocated, s.progress.expected, s.progress.considered
            );
            let unallocated: ByteSize = fs.usage().map(|u| u.unallocated()).unwrap_or_default();
            println!("unallocated: {unallocated}");
        }
    }
    Ok(0)
}
