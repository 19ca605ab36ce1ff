//! The `du` command: space per image, container and layer subvolume, for either image store.

use super::EXIT_USAGE;
use crate::config::Config;
use crate::docker::containerd::{self, bolt::ReadFrom, snapshotter};
use crate::docker::{layout, store, DaemonJson, ImageStore};
use crate::du::{self, LayerMap};
use crate::{errln, outln};
use std::path::{Path, PathBuf};

/// Exit codes of `du`.
pub const EXIT_CODES: &str = "Exit codes: 0 measured, 1 the data root could not be read or measured (not btrfs, \
not root: TREE_SEARCH needs CAP_SYS_ADMIN; containerd's databases unreadable), 3 bad command line or configuration, \
141 stdout's reader went away.";

/// Which store `du` measures.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreArg {
    /// The store holding layers; when both do, the one daemon.json selects (moby's rules).
    Auto,
    /// The btrfs graph driver's layers under `<data-root>/btrfs/subvolumes`.
    Graphdriver,
    /// containerd's btrfs snapshotter (dockerd's own containerd, or the system one daemon.json
    /// names), read from its databases; from point-in-time reflink copies while containerd
    /// runs.
    Containerd,
}

/// `du`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct DuArgs {
    /// Docker's data root [config: docker.data_root; default /var/lib/docker].
    pub path: Option<PathBuf>,
    /// The image store to measure.
    #[arg(long, value_enum, default_value = "auto")]
    pub store: StoreArg,
    /// Measure without writing back and committing first: faster on a busy filesystem, but
    /// data written in the last seconds (not yet written back) is not counted.
    #[arg(long)]
    pub no_sync: bool,
    /// Print the report as one JSON document (every subvolume; sizes in bytes).
    #[arg(long)]
    pub json: bool,
}

/// The containerd snapshotter root and meta.db of the daemon of `data_root`.
fn containerd_paths(
    config: &Config,
    daemon: Option<&DaemonJson>,
    data_root: &Path,
) -> Result<(PathBuf, PathBuf), String> {
    let named = containerd::named_address(daemon, &config.paths.unit_dir);
    let c = containerd::locate(None, data_root, named.as_ref(), &config.containerd.config)
        .map_err(|e| e.to_string())?;
    Ok((c.config.btrfs_root(), c.config.meta_db()))
}

/// How many layer subvolumes each store holds.
fn layer_counts(containerd_root: Option<&Path>, data_root: &Path) -> (usize, usize) {
    let graph = layout::subvolume_names(data_root)
        .ok()
        .flatten()
        .map_or(0, |n| n.len());
    let snap = containerd_root
        .and_then(|r| snapshotter::entries(r).ok())
        .map_or(0, |e| e.len());
    (graph, snap)
}

/// The store `auto` measures, and a note when the other one also holds layers.
fn choose(
    config: &Config,
    daemon: Option<&DaemonJson>,
    data_root: &Path,
    containerd_root: Option<&Path>,
) -> (ImageStore, Option<String>) {
    let (graph, snap) = layer_counts(containerd_root, data_root);
    let configured = || {
        daemon.map_or(ImageStore::Graphdriver, |d| {
            let major = store::needs_engine_major(d)
                .then(|| store::installed_engine_major(&config.docker.dockerd))
                .flatten();
            store::choose(d, major, data_root).store
        })
    };
    let chosen = match (graph > 0, snap > 0) {
        (true, false) => ImageStore::Graphdriver,
        (false, true) => ImageStore::Containerd,
        _ => configured(),
    };
    let note = match chosen {
        ImageStore::Graphdriver if snap > 0 => Some(format!(
            "containerd's snapshotter also holds {snap} subvolumes: dockroot du --store containerd"
        )),
        ImageStore::Containerd if graph > 0 => Some(format!(
            "the graph driver also holds {graph} layer subvolumes: dockroot du --store graphdriver"
        )),
        _ => None,
    };
    (chosen, note)
}

/// The layer map of `store`, and the notes on how it was read.
fn map_of(
    store: ImageStore,
    paths: Option<&(PathBuf, PathBuf)>,
    data_root: &Path,
) -> Result<(LayerMap, Vec<String>), String> {
    match store {
        ImageStore::Graphdriver => du::graphdriver::layer_map(data_root)
            .map(|m| (m, Vec::new()))
            .map_err(|e| {
                format!(
                    "reading Docker's layer store under {}: {e}",
                    data_root.display()
                )
            }),
        ImageStore::Containerd => {
            let (root, meta_db) = paths.ok_or("containerd's configuration could not be read")?;
            let m = du::containerd::layer_map(root, meta_db, data_root)
                .map_err(|e| format!("reading containerd's image store: {e}"))?;
            let notes = m
                .read
                .iter()
                .filter(|(_, how)| *how == ReadFrom::PointInTimeCopy)
                .map(|(path, _)| {
                    format!(
                        "{} was read from a point-in-time reflink copy (containerd holds it)",
                        path.display()
                    )
                })
                .collect();
            Ok((m.map, notes))
        }
    }
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
    let daemon = DaemonJson::read(&config.docker.config_dir).ok();
    let paths = containerd_paths(config, daemon.as_ref(), &path);
    let (store, note) = match args.store {
        StoreArg::Graphdriver => (ImageStore::Graphdriver, None),
        StoreArg::Containerd => (ImageStore::Containerd, None),
        StoreArg::Auto => choose(
            config,
            daemon.as_ref(),
            &path,
            paths.as_ref().ok().map(|(root, _)| root.as_path()),
        ),
    };
    if let (ImageStore::Containerd, Err(e)) = (store, &paths) {
        errln!("dockroot du: locating containerd: {e}");
        return EXIT_USAGE;
    }
    let (map, mut notes) = match map_of(store, paths.as_ref().ok(), &path) {
        Ok(m) => m,
        Err(e) => {
            errln!("dockroot du: {e}");
            return 1;
        }
    };
    let pending = if args.no_sync {
        du::Pending::AsIs
    } else {
        du::Pending::Flush
    };
    let mut report = match du::measure(&path, &map, pending) {
        Ok(r) => r,
        Err(e) => {
            errln!("dockroot du: {e}");
            return 1;
        }
    };
    notes.extend(note);
    report.notes = notes;
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
