//! Defragment files on btrfs, with a dry run that shows shared extents first.
//!
//! ```text
//! cargo run --example defrag -- [PATH]... [options]      # PATH defaults to /var/lib/docker
//! ```
//!
//! Every run starts with a dry run (FIEMAP): per file the extent count, the shared extents and
//! the bytes defragmenting would unshare. Defragmenting a file that shares extents with
//! snapshots or reflinks (Docker image layers do) copies them and **grows used space**, so:
//!
//! * `--dry-run` only reports;
//! * without options, a tree with shared extents is only reported (as `--dry-run`), and the
//!   example says what defragmenting it would cost; nothing is changed (exit 3);
//! * `--skip-shared` defragments the files without shared extents and leaves the others;
//! * `--allow-shared` defragments everything, unsharing what it must.
//!
//! The walk does not enter nested subvolumes (`--cross-subvolumes`) or other mounts
//! (`--cross-mounts`). `-t SIZE` sets the extent-size threshold (default 256K), `-c zlib|lzo|zstd`
//! recompresses, `--start/--length` limit the range of each file, `--flush` starts writeback
//! at once. Ctrl-C or SIGTERM stops after the current file. `--json` prints one JSON document.
//!
//! Exit codes: 0 done (or nothing shared in a dry run), 1 error, 2 usage error, 3 shared extents
//! found and nothing defragmented, 4 interrupted, 5 done but some files failed.

use btrfs_kit::defrag::{
    self, Compression, DefragOptions, FileOutcome, FilePlan, TreeProgress, TreeReport, WalkOptions,
};
use btrfs_kit::ByteSize;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use opskit::Interrupts;
use opskit::{errln, outln};
use serde::Serialize;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

const EXIT_ERROR: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_SHARED: u8 = 3;
const EXIT_INTERRUPTED: u8 = 4;
const EXIT_SOME_FAILED: u8 = 5;

#[derive(Parser, Debug)]
#[command(
    about = "Defragment files on btrfs; a dry run first shows extents shared with snapshots or reflinks, which defragmenting would unshare (growing used space)",
    after_help = "By default a tree with shared extents is only reported (like --dry-run): pass --skip-shared to \
defragment the unshared files only, or --allow-shared to unshare too.\n\
--json prints one JSON document on stdout when the run ends.\n\
Exit codes: 0 done (or a dry run found nothing shared), 1 error, 2 usage error, 3 shared extents found and nothing \
defragmented, 4 interrupted (Ctrl-C/SIGTERM), 5 done but some files failed."
)]
struct Args {
    /// Files or directories on a mounted btrfs filesystem.
    #[arg(default_value = "/var/lib/docker")]
    paths: Vec<PathBuf>,
    /// Only report what defragmenting would do.
    #[arg(long, conflicts_with_all = ["allow_shared", "skip_shared"])]
    dry_run: bool,
    /// Defragment files with shared extents too (used space grows by the unshared bytes).
    #[arg(long, conflicts_with = "skip_shared")]
    allow_shared: bool,
    /// Defragment only the files without shared extents.
    #[arg(long)]
    skip_shared: bool,
    /// Rewrite extents smaller than this (e.g. 256K, 32M; default 256K).
    #[arg(short = 't', long, value_name = "SIZE")]
    threshold: Option<ByteSize>,
    /// Recompress with zlib, lzo or zstd.
    #[arg(short = 'c', long, value_name = "ALGO")]
    compress: Option<Compression>,
    /// First byte of each file to defragment.
    #[arg(long, value_name = "SIZE", default_value = "0")]
    start: ByteSize,
    /// How many bytes from --start (default: to the end).
    #[arg(long, value_name = "SIZE")]
    length: Option<ByteSize>,
    /// Start writing the rewritten data out at once.
    #[arg(long)]
    flush: bool,
    /// Walk into nested subvolumes (snapshots, Docker layers) too.
    #[arg(long)]
    cross_subvolumes: bool,
    /// Walk into other mounted btrfs filesystems too.
    #[arg(long)]
    cross_mounts: bool,
    /// How many files to list in the text report (the most fragmented and the shared ones).
    #[arg(long, default_value = "10")]
    top: usize,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    json: bool,
}

/// One file in the report.
#[derive(Serialize, Clone)]
struct FileLine {
    path: PathBuf,
    size: u64,
    extents: u64,
    shared_extents: u64,
    targets: u64,
    would_unshare: u64,
    /// planned, defragmented, skipped_shared
    state: &'static str,
}

#[derive(Serialize)]
struct Failure {
    path: PathBuf,
    error: String,
}

#[derive(Serialize)]
struct PathReport {
    path: PathBuf,
    mode: &'static str,
    totals: defrag::TreeTotals,
    /// Files with extents to rewrite or shared extents.
    files: Vec<FileLine>,
    boundaries: Vec<defrag::Boundary>,
    failures: Vec<Failure>,
    stopped: bool,
}

#[derive(Serialize)]
struct Report {
    /// dry-run, defragment, or refused-shared (a dry run because shared extents were found).
    outcome: &'static str,
    paths: Vec<PathReport>,
}

/// An error with its exit code; an empty message exits quietly (closed pipe).
struct Exit {
    message: String,
    code: u8,
}

impl From<btrfs_kit::Error> for Exit {
    fn from(e: btrfs_kit::Error) -> Self {
        let code = if matches!(e.kind(), btrfs_kit::ErrorKind::InvalidArguments { .. }) {
            EXIT_USAGE
        } else {
            EXIT_ERROR
        };
        Exit {
            message: e.to_string(),
            code,
        }
    }
}

/// Writes a report to stdout (a closed pipe ends the program as `opskit` says).
fn emit(text: &str) -> Result<(), Exit> {
    outln!("{}", text.strip_suffix('\n').unwrap_or(text));
    Ok(())
}

fn main() -> ExitCode {
    opskit::run(|| match run(&Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            if !e.message.is_empty() {
                errln!("error: {}", e.message);
            }
            e.code
        }
    })
}

fn options(args: &Args) -> DefragOptions {
    let mut o = DefragOptions::default()
        .flush(args.flush)
        .allow_shared(args.allow_shared);
    if let Some(t) = args.threshold {
        o = o.extent_threshold(t);
    }
    if let Some(c) = args.compress {
        o = o.compression(c);
    }
    o.start = args.start;
    o.length = args.length;
    o
}

fn walk_options(args: &Args) -> WalkOptions {
    WalkOptions::default()
        .cross_subvolumes(args.cross_subvolumes)
        .cross_mounts(args.cross_mounts)
        // The progress bar wants the totals; with --json nobody sees it.
        .count_first(!args.json)
}

fn bar(label: &str, json: bool) -> ProgressBar {
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar
}

fn line_of(plan: &FilePlan, state: &'static str) -> FileLine {
    FileLine {
        path: plan.path.clone(),
        size: plan.size.bytes(),
        extents: plan.extents,
        shared_extents: plan.shared_extents,
        targets: plan.targets,
        would_unshare: plan.would_unshare.bytes(),
        state,
    }
}

/// Runs the dry run or the defragmentation over one path, with a progress bar.
fn walk_one(
    path: &PathBuf,
    args: &Args,
    apply: bool,
    options: &DefragOptions,
    stop: &AtomicBool,
) -> Result<PathReport, Exit> {
    let label = if apply { "defragmenting" } else { "planning" };
    let bar = bar(label, args.json);
    let mut files = Vec::new();
    let mut failures = Vec::new();
    let on_file = |outcome: &FileOutcome, p: &TreeProgress| {
        match outcome {
            FileOutcome::Failed { path, error } => failures.push(Failure {
                path: path.clone(),
                error: error.to_string(),
            }),
            FileOutcome::Planned(plan) | FileOutcome::Defragmented(plan)
                if plan.targets > 0 || plan.shared_extents > 0 =>
            {
                let state = if apply { "defragmented" } else { "planned" };
                files.push(line_of(plan, state));
            }
            FileOutcome::Skipped { plan, .. } => files.push(line_of(plan, "skipped_shared")),
            _ => {}
        }
        bar.set_length(p.bytes_total.bytes());
        bar.set_position(p.bytes_done.bytes());
        bar.set_message(format!("{}/{} files", p.files_done, p.files_total));
        if stop.load(Ordering::SeqCst) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let report: TreeReport = if apply {
        defrag::defragment_tree(path, options, &walk_options(args), on_file)?
    } else {
        defrag::plan_tree(path, options, &walk_options(args), on_file)?
    };
    bar.finish_and_clear();
    failures.extend(report.walk_errors.iter().map(|e| Failure {
        path: path.clone(),
        error: e.to_string(),
    }));
    Ok(PathReport {
        path: path.clone(),
        mode: if apply { "defragment" } else { "dry-run" },
        totals: report.totals,
        files,
        boundaries: report.boundaries,
        failures,
        stopped: report.stopped,
    })
}

fn run(args: &Args) -> Result<u8, Exit> {
    // SIGINT and SIGTERM stop after the current file.
    let stop = Interrupts::install()
        .map_err(|e| Exit {
            message: format!("cannot handle SIGINT and SIGTERM: {e}"),
            code: EXIT_ERROR,
        })?
        .first_signal_flag();
    let opts = options(args);

    // The dry run always comes first.
    let mut plans = Vec::new();
    for path in &args.paths {
        plans.push(walk_one(path, args, false, &opts, &stop)?);
    }
    let shared: u64 = plans.iter().map(|p| p.totals.files_with_shared).sum();
    let interrupted = plans.iter().any(|p| p.stopped);
    let (outcome, reports) = if args.dry_run || interrupted {
        ("dry-run", plans)
    } else if shared > 0 && !args.allow_shared && !args.skip_shared {
        ("refused-shared", plans)
    } else {
        let mut done = Vec::new();
        for path in &args.paths {
            let report = walk_one(path, args, true, &opts, &stop)?;
            let stopped = report.stopped;
            done.push(report);
            if stopped {
                break;
            }
        }
        ("defragment", done)
    };
    let report = Report {
        outcome,
        paths: reports,
    };
    if args.json {
        emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report).expect("report serialises")
        ))?;
    } else {
        emit(&text_report(&report, args.top))?;
    }
    let stopped = report.paths.iter().any(|p| p.stopped);
    let failed = report.paths.iter().any(|p| !p.failures.is_empty());
    Ok(if stopped {
        EXIT_INTERRUPTED
    } else if outcome == "refused-shared" || (outcome == "dry-run" && shared > 0) {
        EXIT_SHARED
    } else if failed {
        EXIT_SOME_FAILED
    } else {
        0
    })
}

fn text_report(report: &Report, top: usize) -> String {
    let mut s = String::new();
    for p in &report.paths {
        let t = &p.totals;
        s += &format!(
            "{} ({}): {} files, {} in {} extents; {} extents to rewrite ({}); {} files share {} extents ({}), {} would be unshared\n",
            p.path.display(),
            p.mode,
            t.files,
            t.bytes,
            t.extents,
            t.targets,
            t.target_bytes,
            t.files_with_shared,
            t.shared_extents,
            t.shared_bytes,
            t.would_unshare,
        );
        if p.mode == "defragment" {
            s += &format!(
                "  defragmented {} files, unshared {}, skipped {} shared files\n",
                t.defragmented, t.unshared, t.skipped_shared
            );
        }
        let mut files = p.files.clone();
        files.sort_by(|a, b| {
            (b.would_unshare, b.targets)
                .cmp(&(a.would_unshare, a.targets))
                .then_with(|| a.path.cmp(&b.path))
        });
        for f in files.iter().take(top) {
            s += &format!(
                "  {}: {} extents, {} shared, {} to rewrite, would unshare {} [{}]\n",
                f.path.display(),
                f.extents,
                f.shared_extents,
                f.targets,
                ByteSize(f.would_unshare),
                f.state
            );
        }
        for b in &p.boundaries {
            s += &format!("  not entered: {} ({:?})\n", b.path.display(), b.kind);
        }
        for f in &p.failures {
            s += &format!("  failed: {}: {}\n", f.path.display(), f.error);
        }
        if p.stopped {
            s += "  interrupted: stopped after the current file\n";
        }
    }
    if report.outcome == "refused-shared" {
        let unshare: u64 = report
            .paths
            .iter()
            .map(|p| p.totals.would_unshare.bytes())
            .sum();
        s += &format!(
            "nothing was defragmented: files share extents with snapshots or reflinks, and defragmenting them would grow used space by up to {}.\n\
             Re-run with --skip-shared to defragment only the other files, or --allow-shared to defragment everything.\n",
            ByteSize(unshare)
        );
    }
    s
}
