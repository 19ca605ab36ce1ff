//! The `[metrics]` section of the configuration.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Whether to export the figures node_exporter's btrfs collector also exports, under its
/// names (`node_btrfs_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NodeBtrfs {
    /// With `--listen` (Prometheus scrapes us directly); not in the textfile, because
    /// node_exporter's own btrfs collector (on by default) exports them there and two sources
    /// of one series make node_exporter's scrape fail for them.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl NodeBtrfs {
    /// Whether to export them, for a textfile (`true`) or an HTTP endpoint.
    pub fn include(self, textfile: bool) -> bool {
        match self {
            NodeBtrfs::Auto => !textfile,
            NodeBtrfs::Always => true,
            NodeBtrfs::Never => false,
        }
    }
}

/// The `[metrics]` section.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `metrics --listen` binds.
    pub listen: String,
    /// A directory for `metrics --textfile`'s default, also written after every `maintain`.
    pub textfile_dir: Option<PathBuf>,
    /// node_exporter's btrfs names.
    pub node_btrfs: NodeBtrfs,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: "127.0.0.1:9940".into(),
            textfile_dir: None,
            node_btrfs: NodeBtrfs::Auto,
        }
    }
}
