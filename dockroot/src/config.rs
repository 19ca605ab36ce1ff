//! The configuration file, `/etc/dockroot.toml` by default (`--config PATH`): thresholds,
//! names and paths. Every key is optional; command-line flags override the file. Unknown keys
//! are refused (a typo must not silently keep a default).
//!
//! ```toml
//! [docker]
//! data_root = "/var/lib/docker"      # the data root to provision and examine
//! config_dir = "/etc/docker"         # where daemon.json lives
//! socket = "/var/run/docker.sock"    # the Engine API
//! pidfile = "/var/run/docker.pid"
//! dockerd = "dockerd"                # its version decides provision's default image store
//! containerd_socket = "/run/containerd/containerd.sock"
//!
//! [containerd]                      # the containerd image store's containerd
//! config = "/etc/containerd/config.toml"  # a system containerd's configuration
//! ctr = "ctr"                        # containerd's client, asked while containerd runs
//!
//! [thresholds]
//! used_warn = 80                     # percent of the data capacity
//! used_crit = 90
//! metadata_warn = 80                 # percent of the metadata capacity
//! metadata_crit = 90
//! quota_subvolumes = 1000            # warn when qgroups are on with more subvolumes
//! vg_free_warn = "1g"                # warn when the VG has less room to grow
//! scrub_max_age_days = 35            # warn when the last completed scrub is older
//!
//! [provision]
//! vg = "vg0"
//! size = "10g"
//! lv = "docker"
//! label = "docker"
//! mount_options = "noatime"
//! fstab = false                      # true: an /etc/fstab line instead of a systemd unit
//! # image_store = "containerd"       # or "graphdriver"; default: what the installed dockerd picks
//!
//! [paths]
//! unit_dir = "/etc/systemd/system"
//! fstab = "/etc/fstab"
//! scrub_state_dir = "/var/lib/btrfs-kit"  # btrfs-kit's scrub state (last scrub, resume)
//!
//! [lvm]
//! devices = []                       # confine LVM to these devices (empty: every device)
//!
//! [maintain]
//! state_dir = "/var/lib/dockroot"    # the last run of each task (<fsid>.json)
//! lock_dir = "/run/dockroot"         # one advisory lock per filesystem
//! unallocated_target = "10%"         # balance until this much is unallocated (bytes or % of the devices)
//! balance_usage_max = 50             # only chunks less full than this are relocated
//! balance_chunks_per_step = 4        # chunks per balance call; halved after ENOSPC
//! balance_metadata = false           # also relocate metadata chunks (rarely a good idea)
//! keep_paused = false                # on SIGTERM pause the balance instead of cancelling it
//! scrub_interval_days = 30           # scrub when the last completed scrub is older (0: never)
//! trim_interval_days = 7             # 0: never
//! defrag = "never"                   # or "dry-run": report what a defragmentation would unshare
//! grow_threshold = 80                # grow the LV past this data used percentage
//! grow_step = "10%"                  # by this much (bytes or % of the LV) ...
//! grow_step_min = "1g"               # ... and at least this much
//! # grow_max = "100g"                # auto-grow is off until a maximum LV size is set
//!
//! [metrics]
//! listen = "127.0.0.1:9940"          # metrics --listen
//! # textfile_dir = "/var/lib/prometheus/node-exporter"  # also written after every maintain run
//! node_btrfs = "auto"                # node_exporter's btrfs names: auto (--listen only), always, never
//! ```

use lvm_kit::Bytes;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the configuration file is read from when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/dockroot.toml";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Docker's paths.
    pub docker: DockerConfig,
    /// The containerd of the containerd image store.
    pub containerd: ContainerdSettings,
    /// Thresholds of the checks.
    pub thresholds: Thresholds,
    /// Defaults of `provision`.
    pub provision: ProvisionConfig,
    /// System paths (parameters so that tests can use a tempdir root).
    pub paths: Paths,
    /// LVM settings.
    pub lvm: LvmConfig,
    /// The upkeep run (`maintain`).
    pub maintain: crate::maintain::MaintainConfig,
    /// The Prometheus exporter (`metrics`).
    pub metrics: crate::metrics::MetricsConfig,
}

/// Docker's paths.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerConfig {
    /// The data root.
    pub data_root: PathBuf,
    /// The directory of `daemon.json`.
    pub config_dir: PathBuf,
    /// The Engine API's unix socket.
    pub socket: PathBuf,
    /// dockerd's pidfile.
    pub pidfile: PathBuf,
    /// The dockerd program whose version decides the default image store (`provision`); a
    /// bare name is looked up in PATH, then /usr/sbin and /usr/bin.
    pub dockerd: PathBuf,
    /// A system containerd's API socket (dockerd uses it when it exists).
    pub containerd_socket: PathBuf,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            data_root: "/var/lib/docker".into(),
            config_dir: "/etc/docker".into(),
            socket: "/var/run/docker.sock".into(),
            pidfile: "/var/run/docker.pid".into(),
            dockerd: "dockerd".into(),
            containerd_socket: "/run/containerd/containerd.sock".into(),
        }
    }
}

/// Where a system containerd is configured, and its client.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerdSettings {
    /// A system containerd's configuration file (read when dockerd uses a system containerd).
    pub config: PathBuf,
    /// `ctr`, asked what containerd says while it runs (its databases are then not read).
    pub ctr: PathBuf,
}

impl Default for ContainerdSettings {
    fn default() -> Self {
        ContainerdSettings {
            config: crate::docker::containerd::config::DEFAULT_CONFIG.into(),
            ctr: "ctr".into(),
        }
    }
}

/// Thresholds of the checks.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Used percent of the data capacity that warns.
    pub used_warn: f64,
    /// Used percent of the data capacity that is critical.
    pub used_crit: f64,
    /// Used percent of the metadata capacity that warns.
    pub metadata_warn: f64,
    /// Used percent of the metadata capacity that is critical.
    pub metadata_crit: f64,
    /// With quotas on, more subvolumes than this warn (qgroup accounting slows down every
    /// snapshot deletion and balance).
    pub quota_subvolumes: u64,
    /// Less free space than this in the VG warns (no room to grow the LV).
    pub vg_free_warn: Size,
    /// A last completed scrub older than this many days warns (monthly scrubs, with slack).
    pub scrub_max_age_days: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            used_warn: 80.0,
            used_crit: 90.0,
            metadata_warn: 80.0,
            metadata_crit: 90.0,
            quota_subvolumes: 1000,
            vg_free_warn: Size(Bytes::gib(1)),
            scrub_max_age_days: 35,
        }
    }
}

impl Thresholds {
    /// Checks that each warning threshold lies below its critical one, within 0–100 %.
    pub fn validate(&self) -> Result<(), ThresholdError> {
        for (name, warn, crit) in [
            ("used", self.used_warn, self.used_crit),
            ("metadata", self.metadata_warn, self.metadata_crit),
        ] {
            if !(0.0..=100.0).contains(&warn) || !(0.0..=100.0).contains(&crit) {
                return Err(ThresholdError::OutOfRange { name, warn, crit });
            }
            if warn > crit {
                return Err(ThresholdError::Inverted { name, warn, crit });
            }
        }
        Ok(())
    }
}

/// A size with an lvm2 unit (`10g`, `512m`); a bare number is refused, because lvm2 reads it
/// as MiB and people often mean bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub Bytes);

impl std::str::FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if text.ends_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "size {s:?} has no unit: write it with one, e.g. {text}g or {text}m (lvm2 would read a bare number as MiB)"
            ));
        }
        Bytes::parse_lvm2(text).map(Size).map_err(|e| e.to_string())
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}b", self.0.get()))
    }
}

/// Defaults of `provision`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvisionConfig {
    /// The volume group.
    pub vg: Option<String>,
    /// The LV's size.
    pub size: Option<Size>,
    /// The LV's name.
    pub lv: String,
    /// The filesystem label.
    pub label: String,
    /// Mount options (comma-separated).
    pub mount_options: String,
    /// Make the mount permanent with an fstab line instead of a systemd mount unit.
    pub fstab: bool,
    /// The image store to set up (None: what the installed dockerd picks).
    pub image_store: Option<crate::docker::ImageStore>,
}

impl Default for ProvisionConfig {
    fn default() -> Self {
        ProvisionConfig {
            vg: None,
            size: None,
            lv: "docker".into(),
            label: "docker".into(),
            mount_options: "noatime".into(),
            fstab: false,
            image_store: None,
        }
    }
}

/// System paths.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Paths {
    /// systemd's unit directory for local units.
    pub unit_dir: PathBuf,
    /// The fstab file.
    pub fstab: PathBuf,
    /// Where scrub state files live (btrfs-kit's default).
    pub scrub_state_dir: PathBuf,
    /// The mount table to read (`/proc/self/mountinfo`).
    pub mountinfo: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            unit_dir: "/etc/systemd/system".into(),
            fstab: "/etc/fstab".into(),
            scrub_state_dir: btrfs_kit::scrub::DEFAULT_STATE_DIR.into(),
            mountinfo: "/proc/self/mountinfo".into(),
        }
    }
}

/// LVM settings.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LvmConfig {
    /// Confine LVM to these devices; empty: every device.
    pub devices: Vec<PathBuf>,
}

/// Why a pair of thresholds is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    /// A threshold is not a percentage.
    #[error("{name} thresholds must be percentages within 0..100 (warn {warn}, crit {crit})")]
    OutOfRange {
        /// Which pair: used or metadata.
        name: &'static str,
        /// The warning threshold.
        warn: f64,
        /// The critical threshold.
        crit: f64,
    },
    /// The warning threshold is above the critical one.
    #[error("the {name} warning threshold ({warn} %) is above the critical one ({crit} %)")]
    Inverted {
        /// Which pair: used or metadata.
        name: &'static str,
        /// The warning threshold.
        warn: f64,
        /// The critical threshold.
        crit: f64,
    },
}

/// Why the text of a configuration file is not a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not TOML, an unknown key or a bad value (the text gives the line).
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// The thresholds contradict each other.
    #[error("{0}")]
    Thresholds(#[from] ThresholdError),
    /// A maintain setting is out of range.
    #[error("{0}")]
    Maintain(#[from] crate::maintain::MaintainConfigError),
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("read the configuration {}: {source}; fix the path or give --config", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or bad values.
    #[error("the configuration {} is invalid: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        #[source]
        source: ParseError,
    },
}

impl Config {
    /// Reads the configuration: `path` if given (it must exist), else [`DEFAULT_PATH`] if it
    /// exists, else the defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_PATH), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Config::parse(&text).map_err(|source| ConfigError::Invalid {
                path: path.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Config::default())
            }
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// Parses the text of a configuration file.
    pub fn parse(text: &str) -> Result<Config, ParseError> {
        let config: Config = toml::from_str(text)?;
        config.thresholds.validate()?;
        config.maintain.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_to_the_defaults() {
        let doc = include_str!("config.rs");
        let start = doc.find("//! ```toml\n").expect("example") + 12;
        let end = start + doc[start..].find("//! ```").expect("end");
        let text: String = doc[start..end]
            .lines()
            .map(|l| l.trim_start_matches("//!").trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        let parsed = Config::parse(&text).unwrap();
        let mut expected = Config::default();
        expected.provision.vg = Some("vg0".into());
        expected.provision.size = Some(Size(Bytes::gib(10)));
        assert_eq!(parsed, expected);
    }

    #[test]
    fn partial_files_keep_defaults_and_typos_are_refused() {
        let c = Config::parse("[thresholds]\nused_warn = 70\n").unwrap();
        assert_eq!(c.thresholds.used_warn, 70.0);
        assert_eq!(c.thresholds.used_crit, 90.0);
        assert_eq!(c.docker.data_root, Path::new("/var/lib/docker"));
        let typo = Config::parse("[thresholds]\nused_wran = 70\n")
            .unwrap_err()
            .to_string();
        assert!(typo.contains("used_wran"), "{typo}");
        let section = Config::parse("[thresold]\n").unwrap_err().to_string();
        assert!(section.contains("thresold"), "{section}");
        let inverted = Config::parse("[thresholds]\nused_warn = 95\n")
            .unwrap_err()
            .to_string();
        assert!(inverted.contains("above the critical"), "{inverted}");
    }

    #[test]
    fn sizes_need_a_unit() {
        assert_eq!("10g".parse::<Size>().unwrap(), Size(Bytes::gib(10)));
        assert_eq!("512M".parse::<Size>().unwrap(), Size(Bytes::mib(512)));
        let bare = "100".parse::<Size>().unwrap_err();
        assert!(bare.contains("100g"), "{bare}");
        assert!("ten".parse::<Size>().is_err());
        assert!(Config::parse("[provision]\nsize = \"100\"\n").is_err());
    }

    #[test]
    fn a_missing_default_file_means_defaults_but_a_given_one_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        assert!(matches!(
            Config::load(Some(&missing)),
            Err(ConfigError::Read { .. })
        ));
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[docker]\ndata_root = \"/srv/docker\"\n").unwrap();
        let c = Config::load(Some(&file)).unwrap();
        assert_eq!(c.docker.data_root, Path::new("/srv/docker"));
    }
}
