//! `metrics`: the Prometheus exposition of the data root, printed, written as a textfile or
//! served; [`crate::metrics`] collects it.

use crate::config::Config;
use crate::doctor::Target;
use crate::metrics::{self, NodeBtrfs, Source};
use crate::{errln, outln};
use std::path::PathBuf;

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

/// What the metrics are collected from: the data root, maintain's state directory, and
/// whether node_exporter's btrfs figures are included.
pub(super) fn source(
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

/// Runs `metrics`.
pub fn run(config: &Config, args: &MetricsArgs) -> u8 {
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
