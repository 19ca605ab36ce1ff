//! The `dockroot` command line: [`Cli`] (the global flags and the commands), the exit codes,
//! and the dispatch. Each command is one module with its clap arguments and its `run`:
//! [`provision`], [`doctor`], [`check`], [`maintain`], [`metrics`], [`install_units`], [`du`].
//! The global flags go through one step, [`GlobalArgs::resolve`], which loads the configuration
//! file and applies every flag over it; the commands see only the resolved [`Config`].
//!
//! The work itself is in the library: [`crate::provision`], [`crate::doctor`],
//! [`crate::check`], [`crate::maintain`], [`crate::metrics`], [`crate::units`], [`crate::du`].

use crate::config::Config;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub mod check;
pub mod doctor;
pub mod du;
mod global;
pub mod install_units;
pub mod maintain;
pub mod metrics;
pub mod provision;

pub use global::GlobalArgs;

/// Exit code of a usage or configuration error (monitoring's UNKNOWN for doctor and check).
pub const EXIT_USAGE: u8 = 3;
/// Exit code of `provision` when it refused: nothing was changed.
pub const EXIT_REFUSED: u8 = 4;
/// Exit code of `provision` when a step failed or a signal stopped it part-way.
pub const EXIT_FAILED: u8 = 1;

pub(crate) const EXIT_CODES: &str = "Exit codes: doctor and check follow the monitoring-plugin convention: 0 ok, 1 warning, 2 critical, 3 unknown \
(also a bad command line or configuration). provision: 0 done or nothing to do, 1 failed or stopped part-way (what was done \
and how to undo it is printed; running again continues), 3 bad command line or configuration, 4 refused (nothing was changed). \
maintain: 0 ok (every task done or not due), 1 something needs a human (the LV cannot grow: at its maximum or the VG is full; \
a balance hit ENOSPC short of the unallocated target; a scrub found errors; someone else's balance is paused), 2 a task failed \
(the other tasks ran), 3 bad command line or configuration, 4 another run holds the filesystem's lock (nothing done), \
5 stopped by SIGINT/SIGTERM part-way (nothing left paused unless keep_paused). metrics: 0 written or served until a signal, \
1 the filesystem could not be read or the file not written, 3 bad command line or configuration. install-units: 0 written, \
1 a file could not be written, 3 bad command line or configuration. du: 0 measured, 1 not measured (not btrfs, not root), \
3 bad command line or configuration. \
Every command: 141 when stdout's reader went away (killed by SIGPIPE, as a filter ends).";

/// Keep Docker's data root healthy on LVM + btrfs.
#[derive(Parser, Debug)]
#[command(name = "dockroot", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// The global flags: where the configuration and the system's files are.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create (or accept) an LV, format it btrfs, mount it on the data root, make the mount
    /// permanent and select Docker's btrfs storage driver. Idempotent: run it again to check or
    /// to continue after a failure.
    Provision(provision::ProvisionArgs),
    /// Check the data root: filesystem, Docker's driver, kernel, space, state, orphaned layers,
    /// quotas, LVM. Prints a table, or one JSON document with --json.
    Doctor(doctor::DoctorArgs),
    /// A monitoring probe (Nagios/Icinga plugin format): one status line with performance data
    /// for used, unallocated and metadata space. Cheap enough to run every minute.
    Check(check::CheckArgs),
    /// One run of the upkeep: grow the LV when nearly full, balance only when unallocated
    /// space is short, scrub monthly, trim weekly. Made for a timer: one line per step
    /// (journald priorities), or JSON lines with --json.
    Maintain(maintain::MaintainArgs),
    /// Prometheus metrics of the data root: a textfile for node_exporter's textfile collector
    /// (--textfile DIR), or an HTTP endpoint serving /metrics (--listen ADDR).
    Metrics(metrics::MetricsArgs),
    /// Write the systemd units that run maintain daily (a template service + timer instanced
    /// by the escaped mount path) and the metrics service; or print a crontab line (--cron).
    InstallUnits(install_units::InstallUnitsArgs),
    /// Space per image, container and layer subvolume, and what deleting each would free:
    /// exact from btrfs metadata, without quotas (root). A table, or one JSON document with --json.
    Du(du::DuArgs),
}

/// The program: parse, run, exit.
pub fn main() -> ExitCode {
    opskit::run(|| {
        let args = match Cli::try_parse() {
            Ok(args) => args,
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() { EXIT_USAGE } else { 0 };
            }
        };
        run(args)
    })
}

/// Runs a parsed command line; returns the exit code.
pub fn run(args: Cli) -> u8 {
    let config: Config = match args.global.resolve() {
        Ok(c) => c,
        Err(e) => {
            crate::errln!("dockroot: {e}");
            return EXIT_USAGE;
        }
    };
    match &args.command {
        Command::Provision(p) => provision::run(&config, p),
        Command::Doctor(d) => doctor::run(&config, d),
        Command::Check(c) => check::run(&config, c),
        Command::Maintain(m) => maintain::run(&config, m),
        Command::Metrics(m) => metrics::run(&config, m),
        Command::InstallUnits(u) => install_units::run(&config, args.global.config.as_deref(), u),
        Command::Du(d) => du::run(&config, d),
    }
}
