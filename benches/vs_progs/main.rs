//! Our ioctl path vs btrfs-progs, on identical filesystems, as ratios.
//!
//! ```text
//! cargo bench --bench vs_progs                      # the table on stdout (needs root)
//! cargo bench --bench vs_progs -- --write           # also update BENCHMARKS.md
//! cargo bench --bench vs_progs -- --only space,usage --pairs 50
//! cargo test --bench vs_progs -- --smoke            # CI: one short pair of each, no timings
//! ```
//!
//! Each scenario builds its filesystem once (sparse image, loop device, mkfs.btrfs), then
//! clones it (sparse copy + `btrfstune -u`), so ours (A) and btrfs-progs (B) start from
//! byte-identical layouts. Runs alternate A, B, A, B; the table shows each side's median and
//! range and the ratio pair by pair. Relocating scenarios fail unless both sides relocate the
//! same chunks and end with the same chunk counts per kind and profile. Loop devices and mounts
//! are released on drop, also on errors and Ctrl-C.
#![warn(clippy::undocumented_unsafe_blocks)]

#[path = "../common/counting_alloc.rs"]
mod counting_alloc;
mod defrag_plan;
mod fsbuild;
mod health;
mod measure;
mod profile;
mod progs;
mod report;
mod scenarios;

use counting_alloc::Counting;
use measure::BenchResult;
use scenarios::{Config, Row};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Every scenario's name for `--only` (`relocation` includes the full balance).
const SCENARIOS: [&str; 10] = [
    "defrag",
    "noop",
    "policy",
    "relocation",
    "convert",
    "status",
    "space",
    "usage",
    "scrub",
    "health-status",
];

struct Args {
    config: Config,
    write: bool,
    only: Option<Vec<String>>,
    /// `--profile OP`: count instructions under callgrind instead of timing.
    profile: Option<String>,
    calls: u32,
}

fn usage_text() -> String {
    format!(
        "usage: vs_progs [--smoke] [--write] [--abba] [--pairs N] [--only {}]\n       vs_progs --profile {} [--calls N]   (under callgrind: benches/callgrind.sh)",
        SCENARIOS.join(","),
        profile::OPS.join("|")
    )
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        config: Config {
            smoke: false,
            pairs: None,
            abba: false,
        },
        write: false,
        only: None,
        profile: None,
        calls: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--smoke" => args.config.smoke = true,
            "--write" => args.write = true,
            "--abba" => args.config.abba = true,
            "--pairs" => {
                let n = it.next().ok_or("--pairs needs a number")?;
                let n: usize = n.parse().map_err(|e| format!("--pairs {n}: {e}"))?;
                if n == 0 {
                    return Err("--pairs must be at least 1".into());
                }
                args.config.pairs = Some(n);
            }
            "--only" => {
                let list = it.next().ok_or("--only needs a list")?;
                let names: Vec<String> = list.split(',').map(str::to_string).collect();
                if let Some(bad) = names.iter().find(|n| !SCENARIOS.contains(&n.as_str())) {
                    return Err(format!("unknown scenario {bad:?}\n{}", usage_text()));
                }
                args.only = Some(names);
            }
            "--profile" => {
                let op = it.next().ok_or("--profile needs an operation")?;
                if !profile::OPS.contains(&op.as_str()) {
                    return Err(format!("--profile: one of {:?}", profile::OPS));
                }
                args.profile = Some(op);
            }
            "--calls" => {
                let n = it.next().ok_or("--calls needs a number")?;
                args.calls = n.parse().map_err(|e| format!("--calls {n}: {e}"))?;
            }
            // What cargo bench and cargo test pass to every harness.
            "--bench" | "--nocapture" | "--quiet" | "-q" => {}
            "--help" | "-h" => return Err(usage_text()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage_text())),
        }
    }
    Ok(args)
}

fn run(args: &Args) -> BenchResult<Vec<Row>> {
    let wanted = |name: &str| {
        args.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|n| n == name))
    };
    let config = &args.config;
    let mut rows = Vec::new();
    let step = |name: &str| eprintln!("vs_progs: {name}...");
    if wanted("noop") || wanted("space") || wanted("usage") {
        step("building the no-op / query filesystem");
        let quiet = scenarios::quiet_template(config)?;
        if wanted("noop") {
            step("no-op balance");
            rows.extend(scenarios::noop_balance(config, &quiet)?);
        }
        if wanted("space") || wanted("usage") {
            step("space info and device usage");
            rows.extend(scenarios::queries(
                config,
                &quiet,
                wanted("space"),
                wanted("usage"),
            )?);
        }
    }
    if wanted("status") {
        step("status poll");
        rows.extend(scenarios::status_poll(config)?);
    }
    if wanted("policy") {
        step("daily policy");
        rows.extend(scenarios::daily_policy(config)?);
    }
    if wanted("convert") {
        step("convert metadata");
        rows.extend(scenarios::convert(config)?);
    }
    if wanted("defrag") {
        step("defrag dry run vs filefrag");
        rows.extend(defrag_plan::defrag_dry_run(config)?);
    }
    if wanted("relocation") {
        step("real relocation and full balance");
        rows.extend(scenarios::relocation(config)?);
    }
    if wanted("scrub") {
        step("scrub");
        rows.extend(health::scrub(config)?);
    }
    if wanted("health-status") {
        step("scrub status and device stats polls");
        rows.extend(health::status_polls(config)?);
    }
    Ok(rows)
}

fn main() -> ExitCode {
    // Started as the spawner of one btrfs-progs run: do that and nothing else.
    measure::run_as_spawner_if_asked();
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if !testkit::fixture::is_root() {
        eprintln!("vs_progs needs root (loop devices, mount, balance)");
        return ExitCode::from(if testkit::fixture::root_tests_required() {
            1
        } else {
            0
        });
    }
    // SIGINT or SIGTERM: finish the current run, then release every filesystem.
    if let Ok(interrupts) = opskit::Interrupts::install() {
        std::thread::spawn(move || {
            interrupts.wait_beyond(0, std::time::Duration::MAX);
            eprintln!("vs_progs: stopping after the current run, releasing filesystems");
            measure::STOP.store(true, Ordering::SeqCst);
        });
    }
    if let Some(op) = &args.profile {
        return match profile::run(op, args.calls) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("vs_progs: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let rows = match run(&args) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("vs_progs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut command = String::from("cargo bench --bench vs_progs -- --write");
    if let Some(n) = args.config.pairs {
        command.push_str(&format!(" --pairs {n}"));
    }
    if args.config.smoke {
        println!(
            "vs_progs smoke: {} rows ran, both sides reached the same end states and figures; timings are not asserted (one pair on small filesystems is not a measurement; see BENCHMARKS.md)",
            rows.len()
        );
        print!("{}", report::table(&rows));
        return ExitCode::SUCCESS;
    }
    let section = report::section(&rows, &command);
    print!("{section}");
    if args.write {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
        if args.only.is_some() {
            eprintln!("vs_progs: --write updates BENCHMARKS.md only from a run of every scenario");
            return ExitCode::from(2);
        }
        if let Err(e) = report::update_markdown(&path, &section) {
            eprintln!("vs_progs: {e}");
            return ExitCode::FAILURE;
        }
        eprintln!("vs_progs: updated {}", path.display());
    }
    ExitCode::SUCCESS
}
