//! The upkeep commands: `maintain`, `metrics`, `install-units`.

use super::{Cli, EXIT_USAGE};
use crate::config::{Config, Size};
use crate::doctor::Target;
use crate::maintain::{
    self, Amount, DefragMode, Log, LogPrefix, Options, Priority, Task, EXIT_CODES,
};
use crate::metrics::{self, NodeBtrfs, Source};
use crate::units::{self, UnitSettings};
use crate::{cli, errln, outln};
use std::path::PathBuf;

/// `maintain`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct MaintainArgs {
    /// The filesystem's mount point [config: docker.data_root; default /var/lib/docker].
    pub path: Option<PathBuf>,
    /// Wait while another run holds the filesystem's lock (without it: exit 4 at once, naming
    /// the holder's pid and start time).
    #[arg(long)]
    pub wait: bool,
    /// Consider only these tasks, comma-separated (each still runs only when due).
    #[arg(long, value_delimiter = ',', value_enum)]
    pub only: Vec<Task>,
    /// Print JSON lines: one object per step and per task (`event`: run, step, task), and a
    /// last one (`event`: end) with the exit code and the whole report.
    #[arg(long)]
    pub json: bool,
    /// Syslog priority prefixes (`<6>`) on each line: auto (when stdout is the journal),
    /// always, never.
    #[arg(long, value_enum, default_value_t = LogPrefix::Auto)]
    pub log_prefix: LogPrefix,
    /// The state directory [config: maintain.state_dir; default /var/lib/dockroot].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The lock directory [config: maintain.lock_dir; default /run/dockroot].
    #[arg(long, value_name = "DIR")]
    pub lock_dir: Option<PathBuf>,
    /// Balance until this much is unallocated, e.g. 2g or 10% [config:
    /// maintain.unallocated_target; default 10%].
    #[arg(long, value_name = "SIZE|N%")]
    pub unallocated_target: Option<Amount>,
    /// Relocate only chunks less used than this percentage [config: maintain.balance_usage_max;
    /// default 50].
    #[arg(long, value_name = "PERCENT")]
    pub balance_usage_max: Option<u8>,
    /// Chunks per balance call [config: maintain.balance_chunks_per_step; default 4].
    #[arg(long, value_name = "N")]
    pub balance_chunks_per_step: Option<u32>,
    /// Relocate metadata chunks too [config: maintain.balance_metadata].
    #[arg(long)]
    pub balance_metadata: bool,
    /// On a signal, keep the balance paused instead of cancelling it [config:
    /// maintain.keep_paused].
    #[arg(long)]
    pub keep_paused: bool,
    /// Scrub when the last completed scrub is older (0: never) [config:
    /// maintain.scrub_interval_days; default 30].
    #[arg(long, value_name = "DAYS")]
    pub scrub_interval_days: Option<u64>,
    /// Trim when the last trim is older (0: never) [config: maintain.trim_interval_days;
    /// default 7].
    #[arg(long, value_name = "DAYS")]
    pub trim_interval_days: Option<u64>,
    /// Defragmentation: never, or a dry-run report [config: maintain.defrag; default never].
    #[arg(long, value_enum)]
    pub defrag: Option<DefragMode>,
    /// Grow the LV past this data used percentage [config: maintain.grow_threshold; default 80].
    #[arg(long, value_name = "PERCENT")]
    pub grow_threshold: Option<f64>,
    /// Grow by this much, e.g. 10% or 2g [config: maintain.grow_step; default 10%].
    #[arg(long, value_name = "SIZE|N%")]
    pub grow_step: Option<Amount>,
    /// Grow by at least this much [config: maintain.grow_step_min; default 1g].
    #[arg(long, value_name = "SIZE")]
    pub grow_step_min: Option<Size>,
    /// The largest the LV may grow to; auto-grow is off without it [config: maintain.grow_max].
    #[arg(long, value_name = "SIZE")]
    pub grow_max: Option<Size>,
    /// Also write the metrics textfile here after the run [config: metrics.textfile_dir].
    #[arg(long, value_name = "DIR")]
    pub textfile_dir: Option<PathBuf>,
}

/// `metrics`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Without --textfile or --listen the exposition is printed to stdout (Prometheus text format, \
version 0.0.4; there is no JSON form: the format is the report). Exit codes: 0 written or served until SIGINT/SIGTERM, \
1 the file could not be written or the address not bound, 3 bad command line or configuration."
)]
pub struct MetricsArgs {
    /// The data root [config: docker.data_root; default /var/lib/docker].
    pub path: Option<PathBuf>,
    /// Write DIR/dockroot.prom atomically, for node_exporter's textfile collector
    /// (--collector.textfile.directory) [config: metrics.textfile_dir].
    #[arg(long, value_name = "DIR", conflicts_with = "listen")]
    pub textfile: Option<PathBuf>,
    /// Serve /metrics over HTTP on ADDR [config: metrics.listen; default 127.0.0.1:9940].
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "")]
    pub listen: Option<String>,
    /// Export node_exporter's btrfs figures under its names: auto (with --listen only),
    /// always, never [config: metrics.node_btrfs].
    #[arg(long, value_enum)]
    pub node_btrfs: Option<NodeBtrfs>,
    /// maintain's state directory [config: maintain.state_dir].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `install-units`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Prints what it wrote, or one JSON document with --json. Exit codes: 0 written (or the cron \
line printed), 1 a file could not be written, 3 bad command line or configuration."
)]
pub struct InstallUnitsArgs {
    /// The data root's mount point [config: docker.data_root; default /var/lib/docker].
    pub path: Option<PathBuf>,
    /// Write under this root: the units go to PREFIX/etc/systemd/system (or PREFIX + the unit
    /// directory) [default: /].
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,
    /// Print the equivalent crontab line (for root's crontab) instead of writing units.
    #[arg(long)]
    pub cron: bool,
    /// The dockroot binary the units run [default: this one].
    #[arg(long, value_name = "PATH")]
    pub exec: Option<PathBuf>,
    /// Where the metrics service listens [config: metrics.listen].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Print what was written as one JSON document.
    #[arg(long)]
    pub json: bool,
}

fn maintain_options(config: &Config, args: &MaintainArgs) -> Result<Options, String> {
    let mut m = config.maintain.clone();
    let set = |slot: &mut PathBuf, v: &Option<PathBuf>| {
        if let Some(v) = v {
            *slot = v.clone();
        }
    };
    set(&mut m.state_dir, &args.state_dir);
    set(&mut m.lock_dir, &args.lock_dir);
    macro_rules! over {
        ($($field:ident),*) => {$(
            if let Some(v) = args.$field.clone() { m.$field = v; }
        )*};
    }
    over!(
        unallocated_target,
        balance_usage_max,
        balance_chunks_per_step,
        scrub_interval_days,
        trim_interval_days,
        defrag,
        grow_threshold,
        grow_step,
        grow_step_min
    );
    if args.grow_max.is_some() {
        m.grow_max = args.grow_max;
    }
    m.balance_metadata |= args.balance_metadata;
    m.keep_paused |= args.keep_paused;
    m.validate()?;
    Ok(Options {
        path: args
            .path
            .clone()
            .unwrap_or_else(|| config.docker.data_root.clone()),
        config: m,
        scrub_state_dir: config.paths.scrub_state_dir.clone(),
        lvm_devices: config.lvm.devices.clone(),
        tasks: if args.only.is_empty() {
            Task::ALL.to_vec()
        } else {
            args.only.clone()
        },
        wait: args.wait,
    })
}

fn source(
    config: &Config,
    path: Option<PathBuf>,
    state_dir: &Option<PathBuf>,
    node: bool,
) -> Source {
    Source {
        target: Target::from_config(config, path),
        maintain_state_dir: state_dir
            .clone()
            .unwrap_or_else(|| config.maintain.state_dir.clone()),
        node_btrfs: node,
    }
}

/// Runs `maintain`.
pub fn run_maintain(config: &Config, args: &MaintainArgs) -> u8 {
    let opts = match maintain_options(config, args) {
        Ok(o) => o,
        Err(e) => {
            errln!("dockroot maintain: {e}");
            return EXIT_USAGE;
        }
    };
    // The work must not stop half-way because stdout's reader went away.
    let _keep_going = cli::keep_going();
    let log = Log::new(args.log_prefix, args.json);
    let report = match maintain::run(&opts, &log) {
        Ok(r) => r,
        Err(e) => {
            log.run_line(
                Priority::Err,
                &format!("maintain {}: {e}", opts.path.display()),
                serde_json::json!({ "exit_code": e.exit_code() }),
            );
            if !log.is_json() {
                errln!("dockroot maintain: {e}");
            }
            return e.exit_code();
        }
    };
    let code = report.exit_code();
    let counts = |o: maintain::Outcome| report.tasks.iter().filter(|t| t.outcome == o).count();
    let verdict = match code {
        0 => "ok",
        maintain::EXIT_NEEDS_HUMAN => "needs a human",
        maintain::EXIT_STOPPED => "stopped by a signal",
        _ => "a task failed",
    };
    log.run_line(
        if code == 0 { Priority::Info } else if code == maintain::EXIT_STOPPED { Priority::Notice } else { Priority::Warning },
        &format!(
            "maintain {}: {verdict} (exit {code}): {} done, {} not due, {} skipped, {} need a human, {} failed",
            opts.path.display(),
            counts(maintain::Outcome::Done),
            counts(maintain::Outcome::NotDue),
            counts(maintain::Outcome::Skipped),
            counts(maintain::Outcome::NeedsHuman),
            counts(maintain::Outcome::Failed),
        ),
        serde_json::json!({ "event": "end", "exit_code": code, "report": report }),
    );
    let textfile = args
        .textfile_dir
        .clone()
        .or_else(|| config.metrics.textfile_dir.clone());
    if let Some(dir) = textfile {
        let node = config.metrics.node_btrfs.include(true);
        let src = source(
            config,
            Some(opts.path.clone()),
            &Some(opts.config.state_dir.clone()),
            node,
        );
        match metrics::write_textfile(&dir, &metrics::collect(&src)) {
            Ok(path) => log.run_line(
                Priority::Info,
                &format!("metrics written to {}", path.display()),
                serde_json::json!({ "textfile": path }),
            ),
            Err(e) => log.run_line(
                Priority::Warning,
                &format!("metrics textfile in {}: {e}", dir.display()),
                serde_json::json!({}),
            ),
        }
    }
    code
}

/// Runs `metrics`.
pub fn run_metrics(config: &Config, args: &MetricsArgs) -> u8 {
    let choice = args.node_btrfs.unwrap_or(config.metrics.node_btrfs);
    if let Some(dir) = args.textfile.clone() {
        let src = source(
            config,
            args.path.clone(),
            &args.state_dir,
            choice.include(true),
        );
        return match metrics::write_textfile(&dir, &metrics::collect(&src)) {
            Ok(_) => 0,
            Err(e) => {
                errln!(
                    "dockroot metrics: write {}/{}: {e}",
                    dir.display(),
                    metrics::textfile_name()
                );
                1
            }
        };
    }
    if let Some(listen) = &args.listen {
        let addr = if listen.is_empty() {
            config.metrics.listen.clone()
        } else {
            listen.clone()
        };
        let src = source(
            config,
            args.path.clone(),
            &args.state_dir,
            choice.include(false),
        );
        return match metrics::serve(&src, &addr, |bound| {
            errln!("dockroot metrics: serving http://{bound}/metrics");
        }) {
            Ok(()) => 0,
            Err(e) => {
                errln!("dockroot metrics: {e}");
                1
            }
        };
    }
    let src = source(
        config,
        args.path.clone(),
        &args.state_dir,
        choice.include(false),
    );
    let text = metrics::collect(&src).render();
    outln!("{}", text.trim_end());
    0
}

/// Runs `install-units`.
pub fn run_install_units(config: &Config, cli_args: &Cli, args: &InstallUnitsArgs) -> u8 {
    let path = args
        .path
        .clone()
        .unwrap_or_else(|| config.docker.data_root.clone());
    if !path.is_absolute() {
        errln!(
            "dockroot install-units: give the mount point as an absolute path (got {})",
            path.display()
        );
        return EXIT_USAGE;
    }
    let exec = match args
        .exec
        .clone()
        .map(Ok)
        .unwrap_or_else(std::env::current_exe)
    {
        Ok(e) => e,
        Err(e) => {
            errln!(
                "dockroot install-units: cannot tell this binary's path ({e}): give --exec PATH"
            );
            return EXIT_USAGE;
        }
    };
    let settings = UnitSettings {
        exec,
        config: cli_args.config.clone(),
        listen: args
            .listen
            .clone()
            .unwrap_or_else(|| config.metrics.listen.clone()),
    };
    if args.cron {
        let line = settings.cron_line(&path);
        if args.json {
            outln!("{}", serde_json::json!({ "cron": line }));
        } else {
            outln!(
                "# dockroot upkeep of {} (replaces a nightly `btrfs balance start {}`):",
                path.display(),
                path.display()
            );
            outln!("{line}");
        }
        return 0;
    }
    let unit_dir = match &args.prefix {
        Some(prefix) => prefix.join(
            config
                .paths
                .unit_dir
                .strip_prefix("/")
                .unwrap_or(&config.paths.unit_dir),
        ),
        None => config.paths.unit_dir.clone(),
    };
    let instance = match units::instance(&path) {
        Ok(i) => i,
        Err(e) => {
            errln!("dockroot install-units: {e}");
            return EXIT_USAGE;
        }
    };
    match units::install(&unit_dir, &settings, &path) {
        Ok(written) => {
            if args.json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "unit_dir": unit_dir, "instance": instance, "written": written,
                    }))
                    .expect("serialises")
                );
            } else {
                for w in &written {
                    match &w.link_to {
                        Some(t) => outln!("linked  {} -> {}", w.path.display(), t.display()),
                        None => outln!("wrote   {}", w.path.display()),
                    }
                }
                outln!("run `systemctl daemon-reload && systemctl start {instance}.timer {}` to start them now", units::METRICS_SERVICE);
            }
            0
        }
        Err(e) => {
            errln!("dockroot install-units: {e}");
            1
        }
    }
}
