//! The `du` command: space per image, container and layer subvolume.

use super::EXIT_USAGE;
use crate::config::Config;
use crate::du;
use crate::{errln, outln};
use std::path::PathBuf;

/// Exit codes of `du`.
pub const EXIT_CODES: &str = "Exit codes: 0 measured, 1 the data root could not be read or measured (not btrfs, \
not root: TREE_SEARCH needs CAP_SYS_ADMIN), 3 bad command line or configuration, 141 stdout's reader went away.";

/// `du`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct DuArgs {
    /// Docker's data root [config: docker.data_root; default /var/lib/docker].
    pub path: Option<PathBuf>,
    /// Print the report as one JSON document (every subvolume; sizes in bytes).
    #[arg(long)]
    pub json: bool,
}

/// Runs `du`; returns the exit code.
pub fn run(config: &Config, args: &DuArgs) -> u8 {
    let path = args
        .path
        .clone()
        .unwrap_or_else(|| config.docker.data_root.clone());
    if !path.is_dir() {
        errln!("dockroot du: {}: not a directory", path.display());
        return EXIT_USAGE;
    }
    let map = match du::graphdriver::layer_map(&path) {
        Ok(m) => m,
        Err(e) => {
            errln!(
                "dockroot du: reading Docker's layer store under {}: {e}",
                path.display()
            );
            return 1;
        }
    };
    let report = match du::measure(&path, &map) {
        Ok(r) => r,
        Err(e) => {
            errln!("dockroot du: {e}");
            return 1;
        }
    };
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        outln!("{}", du::render(&report).trim_end());
    }
    0
}
