//! `doctor`: every check of the data root as a table or one JSON document, and the safe
//! repairs (`--fix`, `--fix-orphans`); [`crate::doctor`] does the work.

use super::{EXIT_CODES, EXIT_USAGE};
use crate::config::{Config, ThresholdError};
use crate::doctor::{self, Scope, Target};
use crate::report::Report;
use crate::{errln, outln};
use std::path::PathBuf;

/// `doctor`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct DoctorArgs {
    /// Docker's data root [config: docker.data_root; default /var/lib/docker].
    pub path: Option<PathBuf>,
    /// Print the report as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Repair what is safe to repair: a quota rescan when qgroups are inconsistent.
    #[arg(long)]
    pub fix: bool,
    /// Delete orphaned layer subvolumes, and orphaned snapshot subvolumes of containerd's btrfs
    /// snapshotter (only while Docker and containerd are stopped), and list them.
    #[arg(long)]
    pub fix_orphans: bool,
    /// Warn at this data used percentage [config: thresholds.used_warn; default 80].
    #[arg(long)]
    pub warn: Option<f64>,
    /// Critical at this data used percentage [config: thresholds.used_crit; default 90].
    #[arg(long)]
    pub crit: Option<f64>,
}

/// The target of `doctor` and `check`: the data root and the thresholds, flags over the
/// configuration.
pub(super) fn thresholds(
    config: &Config,
    path: Option<PathBuf>,
    warn: Option<f64>,
    crit: Option<f64>,
) -> Result<Target, ThresholdError> {
    let mut target = Target::from_config(config, path);
    if let Some(w) = warn {
        target.thresholds.used_warn = w;
    }
    if let Some(c) = crit {
        target.thresholds.used_crit = c;
    }
    target.thresholds.validate()?;
    Ok(target)
}

fn print_report(report: &Report) {
    outln!(
        "dockroot doctor {}: {}",
        report.path.display(),
        report.status.label()
    );
    let width = report.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for c in &report.checks {
        outln!(
            "  {:<8}  {:<width$}  {}",
            c.status.to_string(),
            c.id,
            c.summary
        );
        for item in c.items.iter().take(SHOWN_ITEMS) {
            outln!("  {:<8}  {:<width$}     {item}", "", "");
        }
        if c.items.len() > SHOWN_ITEMS {
            outln!(
                "  {:<8}  {:<width$}     ... and {} more (--json lists every one)",
                "",
                "",
                c.items.len() - SHOWN_ITEMS
            );
        }
        if !c.action.is_empty() {
            outln!("  {:<8}  {:<width$}  -> {}", "", "", c.action);
        }
    }
}

/// How many of a check's items the table shows.
const SHOWN_ITEMS: usize = 10;

/// Runs `doctor`; returns the exit code.
pub fn run(config: &Config, args: &DoctorArgs) -> u8 {
    let target = match thresholds(config, args.path.clone(), args.warn, args.crit) {
        Ok(t) => t,
        Err(e) => {
            errln!("dockroot doctor: {e}");
            return EXIT_USAGE;
        }
    };
    // A fix must not be cut short by a closed stdout.
    let _keep_going = (args.fix || args.fix_orphans).then(opskit::keep_going);
    let mut fixes = serde_json::Map::new();
    if args.fix {
        match doctor::rescan_quota(&target) {
            Ok(true) => {
                fixes.insert("quota_rescan".into(), "done".into());
                if !args.json {
                    outln!("fixed: the quota rescan ran; qgroup counts and limits are right again");
                }
            }
            Ok(false) => {
                fixes.insert("quota_rescan".into(), "not needed".into());
            }
            Err(e) => {
                errln!("dockroot doctor --fix: quota rescan: {e}");
                fixes.insert("quota_rescan".into(), e.to_string().into());
                if let Some(errno) = e.errno() {
                    fixes.insert("quota_rescan_errno".into(), errno.into());
                }
            }
        }
    }
    if args.fix_orphans {
        match doctor::fix_orphans(&target) {
            Ok(fix) => {
                if !args.json {
                    outln!("deleted {} orphaned layer subvolume(s):", fix.removed.len());
                    for r in &fix.removed {
                        let bytes = r
                            .exclusive
                            .map(|b| format!(", {} exclusive", btrfs_kit::ByteSize(b)))
                            .unwrap_or_default();
                        outln!("  {} (subvolume {}{bytes})", r.name, r.id);
                    }
                    if let Some(root) = &fix.snapshotter_root {
                        outln!(
                            "deleted {} orphaned snapshot subvolume(s) of containerd's btrfs snapshotter under {}:",
                            fix.snapshots_removed.len(),
                            root.display()
                        );
                        for r in &fix.snapshots_removed {
                            outln!("  {} (subvolume {})", r.name, r.id);
                        }
                    }
                    for record in &fix.records_removed {
                        outln!(
                            "removed the layer record of a container that is gone: {}",
                            record.display()
                        );
                    }
                }
                for (name, error) in &fix.failed {
                    errln!("dockroot doctor --fix-orphans: could not delete {name}: {error}");
                }
                fixes.insert(
                    "orphans".into(),
                    serde_json::to_value(&fix).expect("serialises"),
                );
            }
            Err(e) => {
                errln!("dockroot doctor --fix-orphans: {e}");
                let mut refused = serde_json::json!({ "refused": e.to_string() });
                if let Some(errno) = e.errno() {
                    refused["errno"] = errno.into();
                }
                fixes.insert("orphans".into(), refused);
            }
        }
    }
    let report = doctor::run(&target, Scope::All);
    if args.json {
        let mut doc = serde_json::to_value(&report).expect("report serialises");
        if !fixes.is_empty() {
            doc["fixes"] = fixes.into();
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialises")
        );
    } else {
        print_report(&report);
    }
    report.status.exit_code()
}
