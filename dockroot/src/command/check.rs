//! `check`: the monitoring probe, one Nagios/Icinga plugin line ([`crate::check`] renders it).

use super::doctor::thresholds;
use super::{EXIT_CODES, EXIT_USAGE};
use crate::config::Config;
use crate::doctor::{self, Scope};
use crate::outln;
use std::path::PathBuf;

/// `check`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct CheckArgs {
    /// Docker's data root [config: docker.data_root; default /var/lib/docker].
    pub path: Option<PathBuf>,
    /// Warn at this data used percentage [config: thresholds.used_warn; default 80].
    #[arg(long)]
    pub warn: Option<f64>,
    /// Critical at this data used percentage [config: thresholds.used_crit; default 90].
    #[arg(long)]
    pub crit: Option<f64>,
    /// Print the report as one JSON document instead of the plugin format.
    #[arg(long)]
    pub json: bool,
}

/// Runs `check`; returns the exit code.
pub fn run(config: &Config, args: &CheckArgs) -> u8 {
    let target = match thresholds(config, args.path.clone(), args.warn, args.crit) {
        Ok(t) => t,
        Err(e) => {
            outln!("{} UNKNOWN - {e}", crate::check::NAME);
            return EXIT_USAGE;
        }
    };
    let report = doctor::run(&target, Scope::Probe);
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        outln!("{}", crate::check::render(&report));
    }
    report.status.exit_code()
}
