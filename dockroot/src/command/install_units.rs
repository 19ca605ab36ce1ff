//! `install-units`: the systemd units (or a crontab line) that run `maintain` daily and serve
//! the metrics; [`crate::units`] renders and writes them.

use super::EXIT_USAGE;
use crate::config::Config;
use crate::units::{self, UnitSettings};
use crate::{errln, outln};
use std::path::{Path, PathBuf};

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

/// Runs `install-units`.
///
/// `config_file` is the `--config` given, which the units pass on.
pub fn run(config: &Config, config_file: Option<&Path>, args: &InstallUnitsArgs) -> u8 {
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
        config: config_file.map(Path::to_path_buf),
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
