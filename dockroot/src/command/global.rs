//! The global flags ([`GlobalArgs`], the low-level form: what was typed) and the one step that
//! turns them into the [`Config`] every command uses ([`GlobalArgs::resolve`]: the
//! configuration file, then each flag over it).

use crate::config::{Config, ConfigError};
use std::path::PathBuf;

/// The flags every command takes: the configuration file and the system's files and programs,
/// each overriding its configuration key.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GlobalArgs {
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
}

impl GlobalArgs {
    /// Loads the configuration (`--config`, else the default file if it exists, else the
    /// defaults) and applies every global flag over it: the configuration the commands use.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let mut c = Config::load(self.config.as_deref())?;
        self.apply(&mut c);
        Ok(c)
    }

    /// Applies the flags that were given over `c`.
    pub fn apply(&self, c: &mut Config) {
        let set = |slot: &mut PathBuf, flag: &Option<PathBuf>| {
            if let Some(v) = flag {
                *slot = v.clone();
            }
        };
        set(&mut c.docker.config_dir, &self.docker_config_dir);
        set(&mut c.docker.socket, &self.docker_socket);
        set(&mut c.docker.pidfile, &self.docker_pidfile);
        set(&mut c.docker.dockerd, &self.dockerd);
        set(&mut c.docker.containerd_socket, &self.containerd_socket);
        set(&mut c.containerd.config, &self.containerd_config);
        set(&mut c.containerd.ctr, &self.ctr);
        set(&mut c.paths.unit_dir, &self.unit_dir);
        set(&mut c.paths.fstab, &self.fstab_file);
        if !self.devices.is_empty() {
            c.lvm.devices = self.devices.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Line {
        #[command(flatten)]
        global: GlobalArgs,
    }

    #[test]
    fn every_flag_overrides_its_key() {
        let line = Line::parse_from([
            "dockroot",
            "--docker-config-dir=/a",
            "--docker-socket=/b",
            "--docker-pidfile=/c",
            "--dockerd=/d",
            "--containerd-socket=/e",
            "--containerd-config=/f",
            "--ctr=/g",
            "--unit-dir=/h",
            "--fstab-file=/i",
            "--devices=/dev/x,/dev/y",
        ]);
        let mut c = Config::default();
        line.global.apply(&mut c);
        let p = PathBuf::from;
        assert_eq!(c.docker.config_dir, p("/a"));
        assert_eq!(c.docker.socket, p("/b"));
        assert_eq!(c.docker.pidfile, p("/c"));
        assert_eq!(c.docker.dockerd, p("/d"));
        assert_eq!(c.docker.containerd_socket, p("/e"));
        assert_eq!(c.containerd.config, p("/f"));
        assert_eq!(c.containerd.ctr, p("/g"));
        assert_eq!(c.paths.unit_dir, p("/h"));
        assert_eq!(c.paths.fstab, p("/i"));
        assert_eq!(c.lvm.devices, vec![p("/dev/x"), p("/dev/y")]);
    }

    #[test]
    fn no_flag_keeps_the_configuration() {
        let line = Line::parse_from(["dockroot"]);
        let mut c = Config::default();
        line.global.apply(&mut c);
        assert_eq!(c, Config::default());
    }
}
