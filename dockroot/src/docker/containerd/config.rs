//! containerd's configuration file (`/etc/containerd/config.toml` for a system containerd,
//! `<exec-root>/containerd/containerd.toml` for the one dockerd starts): the keys that say where
//! images and containers live.
//!
//! Versions 2 and 3 (containerd 1.x/2.x) name plugins by their full id,
//! `[plugins."io.containerd.snapshotter.v1.btrfs"]`; version 1 (no `version` key) by the short
//! name, `[plugins.btrfs]`. The btrfs snapshotter's root is its `root_path`, else
//! `<root>/io.containerd.snapshotter.v1.btrfs`. `imports` are not followed (a path of theirs
//! that overrides these keys is not seen).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// containerd's default root.
pub const DEFAULT_ROOT: &str = "/var/lib/containerd";
/// containerd's default state directory.
pub const DEFAULT_STATE: &str = "/run/containerd";
/// containerd's default API socket.
pub const DEFAULT_ADDRESS: &str = "/run/containerd/containerd.sock";
/// A system containerd's default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/containerd/config.toml";
/// The btrfs snapshotter's plugin id (and its directory under the root).
pub const BTRFS_PLUGIN: &str = "io.containerd.snapshotter.v1.btrfs";
/// The content store's directory under the root.
pub const CONTENT_DIR: &str = "io.containerd.content.v1.content";
/// The metadata plugin's database, below the root.
pub const META_DB: &str = "io.containerd.metadata.v1.bolt/meta.db";

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It could not be read.
    #[error("read containerd's configuration {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// It is not valid TOML of containerd's shape.
    #[error("containerd's configuration {} is not valid: {reason}; containerd refuses to start with it too: fix it", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Default, Deserialize)]
struct Raw {
    version: Option<i64>,
    root: Option<PathBuf>,
    state: Option<PathBuf>,
    #[serde(default)]
    grpc: Grpc,
    #[serde(default)]
    disabled_plugins: Vec<String>,
    #[serde(default)]
    plugins: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Grpc {
    address: Option<PathBuf>,
}

/// What containerd's configuration says about storage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerdConfig {
    /// The file read (None: no file, containerd's defaults).
    pub path: Option<PathBuf>,
    /// The format version (1 when the key is absent).
    pub version: i64,
    /// Its root (persistent data: content, snapshots, metadata).
    pub root: PathBuf,
    /// Its state directory (sockets, mounts).
    pub state: PathBuf,
    /// Its API socket.
    pub address: PathBuf,
    /// The btrfs snapshotter's `root_path`, when set.
    pub btrfs_root_path: Option<PathBuf>,
    /// Whether the btrfs snapshotter is in `disabled_plugins`.
    pub btrfs_disabled: bool,
}

impl ContainerdConfig {
    /// containerd's defaults, as without a configuration file.
    pub fn defaults() -> ContainerdConfig {
        ContainerdConfig {
            path: None,
            version: 3,
            root: DEFAULT_ROOT.into(),
            state: DEFAULT_STATE.into(),
            address: DEFAULT_ADDRESS.into(),
            btrfs_root_path: None,
            btrfs_disabled: false,
        }
    }

    /// Reads `path`; a missing file gives containerd's defaults (as containerd runs without
    /// one).
    pub fn read(path: &Path) -> Result<ContainerdConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::defaults()),
            Err(source) => Err(ConfigError::Io {
                path: path.into(),
                source,
            }),
        }
    }

    /// Parses the text of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<ContainerdConfig, ConfigError> {
        let raw: Raw = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.into(),
            reason: e.message().to_string(),
        })?;
        let version = raw.version.unwrap_or(1);
        let plugin = if version >= 2 { BTRFS_PLUGIN } else { "btrfs" };
        let btrfs_root_path = raw
            .plugins
            .get(plugin)
            .and_then(|p| p.get("root_path"))
            .and_then(toml::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let btrfs_disabled = raw
            .disabled_plugins
            .iter()
            .any(|p| p == BTRFS_PLUGIN || p == "btrfs");
        let d = Self::defaults();
        Ok(ContainerdConfig {
            path: Some(path.into()),
            version,
            root: raw
                .root
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(d.root),
            state: raw
                .state
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(d.state),
            address: raw
                .grpc
                .address
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(d.address),
            btrfs_root_path,
            btrfs_disabled,
        })
    }

    /// The btrfs snapshotter's root: `root_path`, else `<root>/io.containerd.snapshotter.v1.btrfs`.
    pub fn btrfs_root(&self) -> PathBuf {
        self.btrfs_root_path
            .clone()
            .unwrap_or_else(|| self.root.join(BTRFS_PLUGIN))
    }

    /// The content store (image blobs).
    pub fn content_root(&self) -> PathBuf {
        self.root.join(CONTENT_DIR)
    }

    /// The metadata database (namespaces, images, containers, leases, snapshot keys).
    pub fn meta_db(&self) -> PathBuf {
        self.root.join(META_DB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_2_and_3_and_the_btrfs_root() {
        let p = Path::new("/etc/containerd/config.toml");
        let v3 = r#"version = 3
root = "/srv/containerd"
state = "/run/c"
[grpc]
  address = "/run/c/c.sock"
[plugins.'io.containerd.snapshotter.v1.btrfs']
  root_path = "/var/lib/docker/snapshots"
"#;
        let c = ContainerdConfig::parse(p, v3).unwrap();
        assert_eq!(c.root, Path::new("/srv/containerd"));
        assert_eq!(c.address, Path::new("/run/c/c.sock"));
        assert_eq!(c.btrfs_root(), Path::new("/var/lib/docker/snapshots"));
        assert_eq!(
            c.meta_db(),
            Path::new("/srv/containerd/io.containerd.metadata.v1.bolt/meta.db")
        );
        let v2 = "version = 2\ndisabled_plugins = [\"io.containerd.snapshotter.v1.btrfs\"]\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"x\"\n";
        let c = ContainerdConfig::parse(p, v2).unwrap();
        assert_eq!(c.root, Path::new(DEFAULT_ROOT));
        assert!(c.btrfs_disabled);
        assert_eq!(
            c.btrfs_root(),
            Path::new("/var/lib/containerd/io.containerd.snapshotter.v1.btrfs")
        );
        let v1 = "root = \"/r\"\n[plugins.btrfs]\n  root_path = \"/b\"\n";
        assert_eq!(
            ContainerdConfig::parse(p, v1).unwrap().btrfs_root(),
            Path::new("/b")
        );
        let e = ContainerdConfig::parse(p, "root = [")
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.toml") && e.contains("not valid"), "{e}");
    }
}
