//! The `dockroot` command line: argument parsing and printing. The work is in
//! [`provision`], [`doctor`] and [`probe`].

use crate::config::{Config, Size};
use crate::doctor::{self, Scope, Target};
use crate::provision::{self, ProvisionError, Request};
use crate::status::Report;
use crate::{cli, errln, outln, probe};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

pub mod du;
pub mod upkeep;

/// Exit code of a usage or configuration error (monitoring's UNKNOWN for doctor and check).
pub const EXIT_USAGE: u8 = 3;
/// Exit code of `provision` when it refused: nothing was changed.
pub const EXIT_REFUSED: u8 = 4;
/// Exit code of `provision` when a step failed or a signal stopped it part-way.
pub const EXIT_FAILED: u8 = 1;

const EXIT_CODES: &str = "Exit codes: doctor and check follow the monitoring-plugin convention: 0 ok, 1 warning, 2 critical, 3 unknown \
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
    /// The configuration file [default: /etc/dockroot.toml, if it exists].
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Docker's configuration directory (holds daemon.json) [config: docker.config_dir].
    #[arg(long, global = true, value_name = "DIR")]
    pub docker_config_dir: Option<PathBuf>,
    /// The Docker Engine API socket [config: docker.socket].
    #[arg(long, global = true, value_name = "PATH")]
    pub docker_socket: Option<PathBuf>,
    /// dockerd's pidfile [config: docker.pidfile].
    #[arg(long, global = true, value_name = "PATH")]
    pub docker_pidfile: Option<PathBuf>,
    /// The dockerd program (its version decides provision's default image store) [config:
    /// docker.dockerd; default: dockerd in PATH].
    #[arg(long, global = true, value_name = "PATH")]
    pub dockerd: Option<PathBuf>,
    /// A system containerd's API socket [config: docker.containerd_socket; default
    /// /run/containerd/containerd.sock].
    #[arg(long, global = true, value_name = "PATH")]
    pub containerd_socket: Option<PathBuf>,
    /// A system containerd's configuration file, read when dockerd uses one [config:
    /// containerd.config; default /etc/containerd/config.toml].
    #[arg(long, global = true, value_name = "PATH")]
    pub containerd_config: Option<PathBuf>,
    /// containerd's client, asked while containerd runs [config: containerd.ctr; default ctr].
    #[arg(long, global = true, value_name = "PROGRAM")]
    pub ctr: Option<PathBuf>,
    /// systemd's unit directory [config: paths.unit_dir].
    #[arg(long, global = true, value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
    /// The fstab file [config: paths.fstab].
    #[arg(long, global = true, value_name = "PATH")]
    pub fstab_file: Option<PathBuf>,
    /// Confine LVM to these devices, comma-separated [config: lvm.devices].
    #[arg(long, global = true, value_delimiter = ',', value_name = "DEV")]
    pub devices: Vec<PathBuf>,
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
    Provision(ProvisionArgs),
    /// Check the data root: filesystem, Docker's driver, kernel, space, state, orphaned layers,
    /// quotas, LVM. Prints a table, or one JSON document with --json.
    Doctor(DoctorArgs),
    /// A monitoring probe (Nagios/Icinga plugin format): one status line with performance data
    /// for used, unallocated and metadata space. Cheap enough to run every minute.
    Check(CheckArgs),
    /// One run of the upkeep: grow the LV when nearly full, balance only when unallocated
    /// space is short, scrub monthly, trim weekly. Made for a timer: one line per step
    /// (journald priorities), or JSON lines with --json.
    Maintain(upkeep::MaintainArgs),
    /// Prometheus metrics of the data root: a textfile for node_exporter's textfile collector
    /// (--textfile DIR), or an HTTP endpoint serving /metrics (--listen ADDR).
    Metrics(upkeep::MetricsArgs),
    /// Write the systemd units that run maintain daily (a template service + timer instanced
    /// by the escaped mount path) and the metrics service; or print a crontab line (--cron).
    InstallUnits(upkeep::InstallUnitsArgs),
    /// Space per image, container and layer subvolume, and what deleting each would free:
    /// exact from btrfs metadata, without quotas (root). A table, or one JSON document with --json.
    Du(du::DuArgs),
}

/// `provision`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct ProvisionArgs {
    /// The volume group [config: provision.vg].
    #[arg(long)]
    pub vg: Option<String>,
    /// The LV's size with an lvm2 unit, e.g. 10g [config: provision.size].
    #[arg(long)]
    pub size: Option<Size>,
    /// The LV's name [config: provision.lv; default docker].
    #[arg(long)]
    pub lv: Option<String>,
    /// Where to mount it [config: docker.data_root; default /var/lib/docker].
    #[arg(long = "mount", value_name = "PATH")]
    pub mount_point: Option<PathBuf>,
    /// The filesystem label [config: provision.label; default docker].
    #[arg(long)]
    pub label: Option<String>,
    /// Mount options [config: provision.mount_options; default noatime].
    #[arg(long)]
    pub mount_options: Option<String>,
    /// Make the mount permanent with an fstab line instead of a systemd mount unit.
    #[arg(long)]
    pub fstab: bool,
    /// Where images and containers live [config: provision.image_store; default: what the
    /// installed dockerd picks on a fresh data root (Docker 29+: containerd, older:
    /// graphdriver), said in the plan]. With containerd and a system containerd, its root
    /// becomes a subvolume of the same filesystem, mounted by a unit keyed by the UUID.
    #[arg(long, value_enum)]
    pub image_store: Option<crate::docker::ImageStore>,
    /// Print the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the plan and the outcome as one JSON document.
    #[arg(long)]
    pub json: bool,
}

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

/// The program: parse, run, exit.
pub fn main() -> ExitCode {
    cli::run(|| {
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

/// Loads the configuration and applies the global flags over it.
fn config(args: &Cli) -> Result<Config, String> {
    let mut c = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    let set = |slot: &mut PathBuf, flag: &Option<PathBuf>| {
        if let Some(v) = flag {
            *slot = v.clone();
        }
    };
    set(&mut c.docker.config_dir, &args.docker_config_dir);
    set(&mut c.docker.socket, &args.docker_socket);
    set(&mut c.docker.pidfile, &args.docker_pidfile);
    set(&mut c.docker.dockerd, &args.dockerd);
    set(&mut c.docker.containerd_socket, &args.containerd_socket);
    set(&mut c.containerd.config, &args.containerd_config);
    set(&mut c.containerd.ctr, &args.ctr);
    set(&mut c.paths.unit_dir, &args.unit_dir);
    set(&mut c.paths.fstab, &args.fstab_file);
    if !args.devices.is_empty() {
        c.lvm.devices = args.devices.clone();
    }
    Ok(c)
}

/// Runs a parsed command line; returns the exit code.
pub fn run(args: Cli) -> u8 {
    let config = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            errln!("dockroot: {e}");
            return EXIT_USAGE;
        }
    };
    match &args.command {
        Command::Provision(p) => run_provision(&config, p),
        Command::Doctor(d) => run_doctor(&config, d),
        Command::Check(c) => run_check(&config, c),
        Command::Maintain(m) => upkeep::run_maintain(&config, m),
        Command::Metrics(m) => upkeep::run_metrics(&config, m),
        Command::InstallUnits(u) => upkeep::run_install_units(&config, &args, u),
        Command::Du(d) => du::run_du(&config, d),
    }
}

fn thresholds(
    config: &Config,
    path: Option<PathBuf>,
    warn: Option<f64>,
    crit: Option<f64>,
) -> Result<Target, String> {
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

fn run_check(config: &Config, args: &CheckArgs) -> u8 {
    let target = match thresholds(config, args.path.clone(), args.warn, args.crit) {
        Ok(t) => t,
        Err(e) => {
            outln!("{} UNKNOWN - {e}", probe::NAME);
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
        outln!("{}", probe::render(&report));
    }
    report.status.exit_code()
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

fn run_doctor(config: &Config, args: &DoctorArgs) -> u8 {
    let target = match thresholds(config, args.path.clone(), args.warn, args.crit) {
        Ok(t) => t,
        Err(e) => {
            errln!("dockroot doctor: {e}");
            return EXIT_USAGE;
        }
    };
    // A fix must not be cut short by a closed stdout.
    let _keep_going = (args.fix || args.fix_orphans).then(cli::keep_going);
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
                fixes.insert(
                    "orphans".into(),
                    serde_json::json!({ "refused": e.to_string() }),
                );
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

fn provision_request(config: &Config, args: &ProvisionArgs) -> Result<Request, String> {
    let p = &config.provision;
    let vg = args
        .vg
        .clone()
        .or_else(|| p.vg.clone())
        .ok_or("give the volume group: --vg VG (or provision.vg in the configuration)")?;
    let size = args
        .size
        .or(p.size)
        .ok_or("give the size: --size 10g (or provision.size in the configuration)")?;
    Ok(Request {
        vg,
        size: size.0,
        lv: args.lv.clone().unwrap_or_else(|| p.lv.clone()),
        label: args.label.clone().unwrap_or_else(|| p.label.clone()),
        mount_point: args
            .mount_point
            .clone()
            .unwrap_or_else(|| config.docker.data_root.clone()),
        mount_options: args
            .mount_options
            .clone()
            .unwrap_or_else(|| p.mount_options.clone()),
        fstab: args.fstab || p.fstab,
        image_store: args.image_store.or(p.image_store),
        containerd_config: config.containerd.config.clone(),
        docker: config.docker.clone(),
        paths: config.paths.clone(),
        lvm_devices: config.lvm.devices.clone(),
    })
}

fn run_provision(config: &Config, args: &ProvisionArgs) -> u8 {
    let request = match provision_request(config, args) {
        Ok(r) => r,
        Err(e) => {
            errln!("dockroot provision: {e}");
            return EXIT_USAGE;
        }
    };
    let plan = match provision::plan(&request) {
        Ok(plan) => plan,
        Err(e) => {
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&e).expect("serialises"));
            }
            errln!("dockroot provision: {e}");
            return EXIT_REFUSED;
        }
    };
    let total = plan.steps.len();
    if !args.json {
        outln!(
            "plan for {} on {}/{} ({} step(s), {} to do):",
            request.mount_point.display(),
            request.vg,
            request.lv,
            total,
            plan.steps.iter().filter(|s| !s.done).count()
        );
        for (i, s) in plan.steps.iter().enumerate() {
            let mark = if s.done { "done " } else { "to do" };
            outln!("  {}/{total} [{mark}] {}", i + 1, s.description);
        }
    }
    let json = |result: &str, error: Option<&ProvisionError>| {
        let mut doc = serde_json::json!({ "plan": plan, "result": result });
        if let Some(e) = error {
            doc["error"] = serde_json::to_value(e).expect("serialises");
            doc["message"] = e.to_string().into();
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialises")
        );
    };
    if plan.nothing_to_do() {
        if args.json {
            json("nothing to do", None);
        } else {
            outln!(
                "nothing to do: {} is provisioned",
                request.mount_point.display()
            );
        }
        return 0;
    }
    if args.dry_run {
        if args.json {
            json("dry run", None);
        } else {
            outln!("dry run: nothing changed");
        }
        return 0;
    }
    // From here: no stop half-way on a closed stdout, and a signal stops between steps.
    let _keep_going = cli::keep_going();
    let interrupts = cli::Interrupts::install().ok();
    let stop = || interrupts.as_ref().is_some_and(|i| i.count() > 0);
    let quiet = args.json;
    let result = provision::apply(&request, &plan, &stop, &mut |i, step| {
        if !quiet {
            outln!("  {}/{total} done: {}", i + 1, step.description);
        }
    });
    match result {
        Ok(()) => {
            if args.json {
                json("done", None);
            } else {
                let containerd = plan
                    .steps
                    .iter()
                    .any(|s| matches!(s.action, provision::Action::CreateSubvolume { .. }));
                outln!(
                    "provisioned {}: restart {} to use it (`systemctl restart {}`){}",
                    request.mount_point.display(),
                    if containerd {
                        "containerd and Docker"
                    } else {
                        "Docker"
                    },
                    if containerd {
                        "containerd docker"
                    } else {
                        "docker"
                    },
                    if request.fstab {
                        ""
                    } else {
                        "; run `systemctl daemon-reload` so systemd knows the new units"
                    }
                );
            }
            0
        }
        Err(e) => {
            if args.json {
                json("failed", Some(&e));
            }
            errln!("dockroot provision: {e}");
            EXIT_FAILED
        }
    }
}
