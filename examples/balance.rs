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
//! * Ctrl-C or SIGTERM pauses the balance (and says how to resume); a second one cancels it,
//!   also while the pause waits for a big chunk; between policy steps it stops the policy;
//! * a step that hits ENOSPC (a full filesystem: no room to relocate a chunk) is reported with
//!   the others, in text and in JSON (`"state": "enospc"`), and the policy goes on with the
//!   remaining steps: harmless, and a full filesystem is when they matter most;
//! * `--json` prints the outcome for scripts (one JSON document);
//! * a closed stdout (`balance | head -1`) never stops a policy half-way: it runs to its end.
//!
//! Exit codes: 0 done, 1 error, 2 usage error, 3 paused (resume with `--resume`), 4 cancelled
//! or stopped between steps (nothing left paused), 5 done, but steps hit ENOSPC (nothing
//! harmed: free space or grow the filesystem, then run it again), 141 stdout closed (as killed
//! by SIGPIPE).

use btrfs_kit::balance::cli::SignalAwareRunner;
use btrfs_kit::balance::{
    Balance, BalanceStatus, ChunkFilters, DailyPolicy, Sequence, SequenceReport, SequenceState,
    Step, StepReport, StepRunner, StepState,
};
use btrfs_kit::{ByteSize, Filesystem};
use clap::Parser;
use opskit::Interrupts;
use opskit::{errln, outln};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_ERROR: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_PAUSED: u8 = 3;
const EXIT_CANCELLED: u8 = 4;
const EXIT_NO_SPACE: u8 = 5;

#[derive(Parser, Debug)]
#[command(
    about = "Balance a btrfs filesystem (default: the daily usage-filtered maintenance policy)",
    after_help = "Filters use btrfs-progs' syntax: -d[FILTERS] for data, -m[FILTERS] for metadata (also applied to \
system chunks), -s[FILTERS] for system (needs -f). FILTERS is a comma list of profiles=a|b, usage=N or usage=A..B, \
devid=N, drange=A..B, vrange=A..B, limit=N or limit=A..B, stripes=A..B, convert=PROFILE, soft.\n\
Examples: balance /var/lib/docker;  balance -dusage=0..50,limit=4 /mnt;  balance -mconvert=single,soft -f /mnt\n\
Ctrl-C or SIGTERM pauses the balance after the current chunk; a second one cancels it.\n\
A step that hits ENOSPC (no room to relocate a chunk on a full filesystem) is reported and the policy goes on.\n\
--json prints one JSON document at the end.\n\
Exit codes: 0 done, 1 error, 2 usage error, 3 paused, 4 cancelled or stopped between steps, \
5 done but steps hit ENOSPC (nothing harmed; free space or grow the filesystem, then run again), 141 stdout closed."
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
    /// Print the outcome on stdout as one JSON document.
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

/// The outcome, as JSON.
#[derive(Serialize)]
struct Report<'a> {
    path: &'a PathBuf,
    mode: Mode,
    state: SequenceState,
    considered: u64,
    relocated: u64,
    steps: &'a [StepReport],
}

/// What the command line asked for.
#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// The daily policy.
    Policy,
    /// One request from -d/-m/-s/--full.
    Filters,
    /// Resume the paused balance.
    Resume,
}

fn main() -> ExitCode {
    opskit::run(|| {
        let args = Args::parse_from(rewrite_filter_flags(std::env::args()));
        match run(&args) {
            Ok(code) => code,
            Err(e) => {
                errln!("error: {e}");
                e.code
            }
        }
    })
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
        let code = if matches!(e.kind(), btrfs_kit::ErrorKind::InvalidArguments { .. }) {
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
    use btrfs_kit::ErrorKind;
    let flags = match e.kind() {
        ErrorKind::BalanceAlreadyRunning => {
            "with this tool: --status, --pause, --cancel or --resume"
        }
        ErrorKind::InvalidArguments { .. } | ErrorKind::KernelRejected { .. } => {
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
    let fs = Filesystem::open(&args.path)?;
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
            outln!(
                "{}",
                serde_json::json!({ "path": args.path, "requested": verb })
            );
        } else {
            outln!("{verb} requested on {}", args.path.display());
        }
        return Ok(0);
    }
    let (mode, sequence) = if args.resume {
        (Mode::Resume, Sequence::single(Step::Resume))
    } else if let Some(request) = filtered_request(args)? {
        (Mode::Filters, Sequence::single(Step::Start(request)))
    } else {
        let policy = DailyPolicy {
            data_usage: args.data_usage.clone(),
            metadata_usage: args.metadata_usage.clone(),
        };
        let mut sequence = policy.sequence(fs.is_mixed()?);
        sequence.skip_unneeded = !args.no_skip;
        (Mode::Policy, sequence)
    };
    let interrupts = Interrupts::install().map_err(|e| Failure {
        message: format!("cannot handle SIGINT and SIGTERM: {e}"),
        code: EXIT_ERROR,
    })?;
    // From here on a closed stdout must not end the process between two steps.
    let _keep_going = opskit::keep_going();
    let mut runner = Lines {
        inner: SignalAwareRunner::new(
            interrupts,
            !args.json,
            format!(
                "cargo run --example balance -- --resume {}",
                args.path.display()
            ),
        ),
        print: !args.json,
    };
    let report = sequence.run(&fs, &mut runner)?;
    if args.json {
        let json = Report {
            path: &args.path,
            mode,
            state: report.state,
            considered: report.considered(),
            relocated: report.relocated(),
            steps: &report.steps,
        };
        outln!(
            "{}",
            serde_json::to_string_pretty(&json).expect("report serialises")
        );
    }
    Ok(exit_code(&report))
}

fn exit_code(report: &SequenceReport) -> u8 {
    let no_space: Vec<&str> = report
        .steps
        .iter()
        .filter(|s| s.state == StepState::NoSpace)
        .map(|s| s.request.as_str())
        .collect();
    if !no_space.is_empty() {
        errln!(
            "ENOSPC in {} step(s): {}: no room to relocate their chunks; nothing was harmed (those chunks stay where they were). Free space (delete files, images, snapshots) or grow the filesystem, then run the balance again",
            no_space.len(),
            no_space.join(", ")
        );
    }
    match report.state {
        SequenceState::Completed => 0,
        SequenceState::NoSpace => EXIT_NO_SPACE,
        SequenceState::Paused => EXIT_PAUSED,
        SequenceState::Cancelled => EXIT_CANCELLED,
        SequenceState::Stopped => {
            errln!(
                "stopped after {} step(s) on a signal: nothing is paused; run the policy again to continue",
                report.steps.len()
            );
            EXIT_CANCELLED
        }
    }
}

/// The signal-aware runner, printing one line per step unless `--json`.
struct Lines {
    inner: SignalAwareRunner,
    print: bool,
}

impl StepRunner for Lines {
    fn proceed(&mut self) -> bool {
        self.inner.proceed()
    }

    fn run(
        &mut self,
        fs: &Filesystem,
        step: &Step,
        label: &str,
    ) -> btrfs_kit::Result<btrfs_kit::balance::BalanceOutcome> {
        self.inner.run(fs, step, label)
    }

    fn finished(&mut self, index: usize, total: usize, r: &StepReport) {
        if self.print && r.state == StepState::NoSpace {
            outln!(
                "step {}/{total} {}: enospc, no room to relocate every selected chunk (the kernel reports no counts); unallocated {} -> {}",
                index + 1,
                r.request,
                r.unallocated_before,
                r.unallocated_after,
            );
        } else if self.print {
            outln!(
                "step {}/{total} {}: {}, relocated {} of {} chunks considered; unallocated {} -> {}",
                index + 1,
                r.request,
                r.state,
                r.relocated,
                r.considered,
                r.unallocated_before,
                r.unallocated_after,
            );
        }
    }
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

fn print_status(fs: &Filesystem, status: Option<BalanceStatus>, json: bool) -> Result<u8, Failure> {
    let path = fs.path().display();
    match (status, json) {
        (None, true) => outln!(
            "{}",
            serde_json::json!({ "path": fs.path(), "state": "none" })
        ),
        (None, false) => outln!("no balance found on {path}"),
        (Some(s), true) => {
            let state = if s.running { "running" } else { "paused" };
            outln!(
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
            outln!("balance on {path} is {state} ({})", s.request);
            outln!(
                "{} out of about {} chunks balanced ({} considered), {left:.0}% left",
                s.progress.relocated,
                s.progress.expected,
                s.progress.considered
            );
            let unallocated: ByteSize = fs.usage().map(|u| u.unallocated()).unwrap_or_default();
            outln!("unallocated: {unallocated}");
        }
    }
    Ok(0)
}
