//! containerd's side of the containerd image store: its bbolt metadata ([`bolt`]), its
//! configuration ([`config`]), which containerd a dockerd uses ([`locate`]), the btrfs
//! snapshotter's layout ([`snapshotter`]), meta.db's namespaces and who owns each snapshot
//! ([`meta`]), and what `ctr` says while containerd runs ([`ctr`]).
//!
//! Which containerd (moby's `libcontainerd/supervisor`): without `--containerd`, dockerd starts
//! its own (**managed**), socket `<exec-root>/containerd/containerd.sock`, configuration
//! `<exec-root>/containerd/containerd.toml`, root `<data-root>/containerd/daemon`: on the data
//! root's filesystem. With `--containerd SOCK` (Docker CE's docker.service passes
//! `/run/containerd/containerd.sock`) it uses a **system** containerd, configured by
//! `/etc/containerd/config.toml`, root `/var/lib/containerd` by default: then the image store's
//! snapshots and content are **not** under the data root (moby#50517) and can fill `/`.

pub mod bolt;
pub mod config;
pub mod ctr;
pub mod meta;
pub mod snapshotter;

pub use config::ContainerdConfig;

use super::engine::Info;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The snapshotter name of the btrfs snapshotter (Docker's `storage-driver` with the
/// containerd store).
pub const BTRFS: &str = "btrfs";
/// The plugin type of snapshotters (`ctr plugins ls`).
pub const SNAPSHOTTER_TYPE: &str = "io.containerd.snapshotter.v1";

/// Whose containerd it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Supervision {
    /// Started by dockerd itself.
    Managed,
    /// A containerd of the system that dockerd connects to.
    System,
}

/// The containerd a dockerd uses, and where it keeps images and containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Containerd {
    /// Managed or system.
    pub supervision: Supervision,
    /// Its API socket.
    pub address: PathBuf,
    /// Its configuration (defaults where the file says nothing).
    pub config: ContainerdConfig,
    /// How this was found, in words.
    pub evidence: String,
}

impl Containerd {
    /// The roots holding images and containers: (name, path).
    pub fn roots(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("containerd root", self.config.root.clone()),
            ("content store", self.config.content_root()),
            ("btrfs snapshotter root", self.config.btrfs_root()),
        ]
    }
}

/// The managed containerd's configuration file next to its socket.
fn managed_config(address: &Path) -> Option<PathBuf> {
    let dir = address.parent()?;
    let file = dir.join("containerd.toml");
    (dir.file_name()? == "containerd" && file.is_file()).then_some(file)
}

/// The managed containerd of a data root: its defaults, or its configuration file when found.
fn managed(data_root: &Path, address: Option<PathBuf>, evidence: String) -> Containerd {
    let address_known = address.is_some();
    let address =
        address.unwrap_or_else(|| PathBuf::from("/var/run/docker/containerd/containerd.sock"));
    let mut config = managed_config(&address)
        .filter(|_| address_known)
        .and_then(|f| ContainerdConfig::read(&f).ok())
        .unwrap_or_else(ContainerdConfig::defaults);
    if config.path.is_none() {
        config.root = data_root.join("containerd/daemon");
        if let Some(exec) = address.parent() {
            config.state = exec.join("daemon");
        }
    }
    config.address = address.clone();
    Containerd {
        supervision: Supervision::Managed,
        address,
        config,
        evidence,
    }
}

/// The containerd the daemon of `data_root` uses: from `/info`'s `Containerd.Address` when the
/// daemon runs (`info`); else from the socket its configuration names (`named`: daemon.json's
/// `containerd` key or the unit's `--containerd`, [`named_address`]), else the
/// managed one when `<data-root>/containerd/daemon` exists, else the system one when
/// `system_config` or its socket exists, else the managed one. `system_config` is a system
/// containerd's configuration file (`/etc/containerd/config.toml`).
pub fn locate(
    info: Option<&Info>,
    data_root: &Path,
    named: Option<&NamedAddress>,
    system_config: &Path,
) -> Result<Containerd, config::ConfigError> {
    let system = |address: Option<PathBuf>, evidence: String| -> Result<Containerd, _> {
        let config = ContainerdConfig::read(system_config)?;
        Ok(Containerd {
            supervision: Supervision::System,
            address: address.unwrap_or_else(|| config.address.clone()),
            config,
            evidence,
        })
    };
    if let Some(address) = info
        .and_then(|i| i.containerd.as_ref())
        .map(|c| c.address.clone())
        .filter(|a| !a.as_os_str().is_empty())
    {
        let system_address = ContainerdConfig::read(system_config)
            .map(|c| c.address)
            .unwrap_or_else(|_| config::DEFAULT_ADDRESS.into());
        let own =
            managed_config(&address).is_some() || address.ends_with("containerd/containerd.sock");
        if address != system_address && own {
            let evidence = format!(
                "dockerd runs its own containerd (GET /info: Containerd.Address {})",
                address.display()
            );
            return Ok(managed(data_root, Some(address), evidence));
        }
        return system(
            Some(address.clone()),
            format!(
                "dockerd uses a system containerd (GET /info: Containerd.Address {}), configured by {}",
                address.display(),
                system_config.display()
            ),
        );
    }
    if let Some(named) = named {
        return system(
            Some(named.address.clone()),
            format!(
                "{} names {} (dockerd is not running to confirm), configured by {}",
                named.source,
                named.address.display(),
                system_config.display()
            ),
        );
    }
    let own = data_root.join("containerd/daemon");
    if own.is_dir() {
        return Ok(managed(
            data_root,
            None,
            format!(
                "{} exists: dockerd's own containerd (dockerd is not running to confirm)",
                own.display()
            ),
        ));
    }
    let sys = ContainerdConfig::read(system_config)?;
    if system_config.exists() || sys.address.exists() {
        return system(
            None,
            format!(
                "{} or its socket exists: a system containerd (dockerd is not running to confirm which one it uses)",
                system_config.display()
            ),
        );
    }
    Ok(managed(
        data_root,
        None,
        "no system containerd found: dockerd starts its own (not running to confirm)".into(),
    ))
}

/// The `containerd` key of daemon.json (the `--containerd` flag's socket), if set.
pub fn daemon_json_address(config: &super::DaemonJson) -> Option<PathBuf> {
    config
        .keys
        .get("containerd")
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// Where dockerd's configuration names a containerd socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedBy {
    /// daemon.json's `containerd` key.
    DaemonJson,
    /// The `--containerd` option of this unit file's (or drop-in's) `ExecStart`.
    Unit(PathBuf),
}

impl std::fmt::Display for NamedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NamedBy::DaemonJson => f.write_str("daemon.json's \"containerd\""),
            NamedBy::Unit(file) => write!(f, "{}'s ExecStart --containerd", file.display()),
        }
    }
}

/// A system containerd's socket that dockerd's configuration names, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedAddress {
    /// The socket.
    pub address: PathBuf,
    /// Where it is named.
    pub source: NamedBy,
}

/// The containerd socket dockerd is configured with, without asking it: daemon.json's
/// `containerd` key, else the `--containerd` option of `docker.service`'s `ExecStart` (Docker
/// CE's and Debian's units pass `/run/containerd/containerd.sock`) found on
/// [`super::unit::search_path`] of `unit_dir`.
pub fn named_address(daemon: Option<&super::DaemonJson>, unit_dir: &Path) -> Option<NamedAddress> {
    if let Some(address) = daemon.and_then(daemon_json_address) {
        return Some(NamedAddress {
            address,
            source: NamedBy::DaemonJson,
        });
    }
    let unit = super::unit::docker_service(&super::unit::search_path(unit_dir))?;
    let address = unit.option("--containerd").filter(|a| !a.is_empty())?;
    Some(NamedAddress {
        address: address.into(),
        source: NamedBy::Unit(unit.files.last()?.clone()),
    })
}
