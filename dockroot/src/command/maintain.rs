//! `maintain`: one run of the upkeep (grow, balance, scrub, trim), made for a timer;
//! [`crate::maintain`] does the work.

use super::metrics::source;
use super::EXIT_USAGE;
use crate::config::{Config, Size};
use crate::errln;
use crate::maintain::{
    self, Amount, DefragMode, Log, LogPrefix, Options, Priority, Task, EXIT_CODES,
};
use crate::metrics;
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

fn maintain_options(
    config: &Config,
    args: &MaintainArgs,
) -> Result<Options, maintain::MaintainConfigError> {
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

/// Runs `maintain`.
pub fn run(config: &Config, args: &MaintainArgs) -> u8 {
    let opts = match maintain_options(config, args) {
        Ok(o) => o,
        Err(e) => {
            errln!("dockroot maintain: {e}");
            return EXIT_USAGE;
        }
    };
    // The work must not stop half-way because stdout's reader went away.
    let _keep_going = opskit::keep_going();
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
