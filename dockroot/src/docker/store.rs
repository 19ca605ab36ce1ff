//! Which image store a dockerd uses: the legacy **graph driver** (layers as subvolumes under
//! `<data-root>/btrfs/subvolumes`) or the **containerd image store** (layers as snapshots of
//! containerd's btrfs snapshotter, under containerd's root), and why.
//!
//! moby's rules (`determineImageStoreChoice`, `daemon/image_store_choice.go`):
//!
//! * `"features": {"containerd-snapshotter": true|false}` in daemon.json decides, whatever the
//!   version: true is the containerd store (`"storage-driver"` then names the snapshotter, so
//!   `btrfs` is containerd's btrfs snapshotter), false the graph driver.
//! * Without the feature key, a named `"storage-driver"` of `btrfs`, `overlay2` or `vfs` is the
//!   graph driver on every version (moby: "if btrfs is explicitly chosen, the user most likely
//!   means graphdrivers"). This is the ambiguity: `"storage-driver": "btrfs"` alone never gives
//!   the containerd store, not even on Engine 29.
//! * With neither, Engine 29 and later pick the containerd store, unless the data root already
//!   holds a graph driver's data (a non-empty `<data-root>/<driver>`: "graphdriver-prior");
//!   Engine 28 and earlier pick the graph driver.
//!
//! moby defines no automatic migration from the btrfs graph driver (Engine 29's
//! `containerd-migration` feature handles overlay2 and vfs images only): switching stores hides
//! the old store's images and containers until switched back.

use super::daemon_json::DaemonJson;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;

/// The key under `"features"` that selects the containerd image store.
pub const CONTAINERD_SNAPSHOTTER: &str = "containerd-snapshotter";

/// The graph drivers moby checks for prior data in the data root (Linux).
const GRAPH_DRIVERS: &[&str] = &[
    "btrfs",
    "overlay2",
    "fuse-overlayfs",
    "zfs",
    "vfs",
    "aufs",
    "devicemapper",
];

/// Where images and containers' layers live.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum ImageStore {
    /// moby's legacy btrfs graph driver: one subvolume per layer under
    /// `<data-root>/btrfs/subvolumes`.
    Graphdriver,
    /// The containerd image store with containerd's btrfs snapshotter: one subvolume per
    /// snapshot under `<containerd-root>/io.containerd.snapshotter.v1.btrfs`.
    Containerd,
}

impl ImageStore {
    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            ImageStore::Graphdriver => "graphdriver",
            ImageStore::Containerd => "containerd",
        }
    }
}

impl std::fmt::Display for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a store is chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Reason {
    /// The operator asked for it (`provision --image-store`).
    Requested,
    /// `features.containerd-snapshotter` is set.
    Feature {
        /// Its value.
        enabled: bool,
    },
    /// A graph driver is named in `storage-driver` without the feature key.
    NamedDriver {
        /// The driver.
        driver: String,
    },
    /// Nothing chosen: the engine's default for a fresh data root.
    EngineDefault {
        /// The engine's major version, if known.
        major: Option<u32>,
    },
    /// Engine 29+ would pick containerd, but the data root holds a graph driver's data.
    PriorGraphdriverData {
        /// The non-empty driver directory.
        driver: String,
    },
}

/// A store and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreChoice {
    /// The store.
    pub store: ImageStore,
    /// Why.
    #[serde(flatten)]
    pub reason: Reason,
}

impl StoreChoice {
    /// The choice in words, for plans and reports.
    pub fn explain(&self) -> String {
        match &self.reason {
            Reason::Requested => format!("{}: asked for with --image-store", self.store),
            Reason::Feature { enabled } => format!(
                "{}: daemon.json sets features.{CONTAINERD_SNAPSHOTTER} to {enabled}",
                self.store
            ),
            Reason::NamedDriver { driver } => format!(
                "{}: daemon.json names storage-driver {driver:?} without features.{CONTAINERD_SNAPSHOTTER}, which every Docker version reads as the graph driver",
                self.store
            ),
            Reason::EngineDefault { major: Some(m) } => {
                format!("{}: the default of Docker {m} on a fresh data root", self.store)
            }
            Reason::EngineDefault { major: None } => format!(
                "{}: no dockerd version known; the graph driver is what every Docker version runs",
                self.store
            ),
            Reason::PriorGraphdriverData { driver } => format!(
                "{}: Docker 29+ would default to containerd, but the data root already holds {driver} graph driver data",
                self.store
            ),
        }
    }
}

/// The `storage-driver` values that select the graph driver whatever the engine's version.
const SELECTING_DRIVERS: [&str; 3] = ["btrfs", "overlay2", "vfs"];

/// Whether [`choose`] needs the engine's major version for `config`: neither the feature key
/// nor a driver that selects the graph driver is set (so Engine 29's default decides).
pub fn needs_engine_major(config: &DaemonJson) -> bool {
    config.feature(CONTAINERD_SNAPSHOTTER).is_none()
        && !config
            .storage_driver()
            .is_some_and(|d| SELECTING_DRIVERS.contains(&d))
}

/// What a dockerd of major version `engine_major` (None: unknown) picks with `config` and the
/// data root `data_root`, by moby's rules (module docs).
pub fn choose(config: &DaemonJson, engine_major: Option<u32>, data_root: &Path) -> StoreChoice {
    if let Some(enabled) = config.feature(CONTAINERD_SNAPSHOTTER) {
        let store = if enabled {
            ImageStore::Containerd
        } else {
            ImageStore::Graphdriver
        };
        return StoreChoice {
            store,
            reason: Reason::Feature { enabled },
        };
    }
    if let Some(driver) = config.storage_driver() {
        if SELECTING_DRIVERS.contains(&driver) {
            return StoreChoice {
                store: ImageStore::Graphdriver,
                reason: Reason::NamedDriver {
                    driver: driver.to_string(),
                },
            };
        }
    }
    match engine_major {
        Some(m) if m >= 29 => match prior_graphdriver(data_root) {
            Some(driver) => StoreChoice {
                store: ImageStore::Graphdriver,
                reason: Reason::PriorGraphdriverData { driver },
            },
            None => StoreChoice {
                store: ImageStore::Containerd,
                reason: Reason::EngineDefault { major: Some(m) },
            },
        },
        major => StoreChoice {
            store: ImageStore::Graphdriver,
            reason: Reason::EngineDefault { major },
        },
    }
}

/// The first graph driver whose directory under `data_root` is non-empty.
pub fn prior_graphdriver(data_root: &Path) -> Option<String> {
    GRAPH_DRIVERS
        .iter()
        .find(|d| {
            std::fs::read_dir(data_root.join(d)).is_ok_and(|mut entries| entries.next().is_some())
        })
        .map(|d| d.to_string())
}

/// The major version of the dockerd at `program` (`dockerd --version`: `Docker version
/// 28.5.2+dfsg4, build …`); None when it is not installed or says something else.
pub fn installed_engine_major(program: &Path) -> Option<u32> {
    let out = Command::new(program).arg("--version").output().ok()?;
    parse_engine_major(&String::from_utf8_lossy(&out.stdout))
}

/// The major version in `dockerd --version`'s output.
pub fn parse_engine_major(text: &str) -> Option<u32> {
    let rest = text.trim().strip_prefix("Docker version ")?;
    rest.split(['.', ',', ' ']).next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, DaemonJson) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("daemon.json"), text).unwrap();
        let c = DaemonJson::read(dir.path()).unwrap();
        (dir, c)
    }

    #[test]
    fn moby_rules() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let cases = [
            (
                r#"{"storage-driver":"btrfs"}"#,
                Some(29),
                ImageStore::Graphdriver,
            ),
            (
                r#"{"storage-driver":"btrfs"}"#,
                Some(28),
                ImageStore::Graphdriver,
            ),
            (
                r#"{"storage-driver":"btrfs","features":{"containerd-snapshotter":true}}"#,
                Some(28),
                ImageStore::Containerd,
            ),
            (
                r#"{"features":{"containerd-snapshotter":false}}"#,
                Some(29),
                ImageStore::Graphdriver,
            ),
            ("{}", Some(29), ImageStore::Containerd),
            ("{}", Some(28), ImageStore::Graphdriver),
            ("{}", None, ImageStore::Graphdriver),
            // A snapshotter name that is no graph driver: containerd.
            (
                r#"{"storage-driver":"overlayfs"}"#,
                Some(29),
                ImageStore::Containerd,
            ),
        ];
        for (text, major, want) in cases {
            let (_d, c) = config(text);
            let got = choose(&c, major, r);
            assert_eq!(got.store, want, "{text} on {major:?}: {}", got.explain());
        }
        // Prior graph driver data keeps Docker 29 on the graph driver.
        std::fs::create_dir_all(r.join("btrfs/subvolumes")).unwrap();
        let (_d, c) = config("{}");
        let got = choose(&c, Some(29), r);
        assert_eq!(
            got.reason,
            Reason::PriorGraphdriverData {
                driver: "btrfs".into()
            }
        );
        assert!(
            got.explain().contains("already holds btrfs"),
            "{}",
            got.explain()
        );
    }

    #[test]
    fn engine_versions() {
        assert_eq!(
            parse_engine_major("Docker version 28.5.2+dfsg4, build 3ef3c07\n"),
            Some(28)
        );
        assert_eq!(
            parse_engine_major("Docker version 20.10.24+dfsg1, build 5d6db84"),
            Some(20)
        );
        assert_eq!(parse_engine_major("dockerd: command not found"), None);
    }
}
