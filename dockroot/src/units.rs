//! `install-units`: the systemd units that run the upkeep without a human, or the crontab line
//! for hosts without systemd.
//!
//! * `dockroot-maintain@.service` + `dockroot-maintain@.timer`: a template instanced by the
//!   mount path escaped as `systemd-escape --path` does ([`escape_path`]), so
//!   `dockroot-maintain@var-lib-docker.timer` keeps `/var/lib/docker`. The timer fires daily at
//!   a random time within an hour after midnight (`RandomizedDelaySec`), catches up a missed
//!   run at boot (`Persistent=true`); the service runs `dockroot maintain --wait %f` with idle
//!   I/O and CPU scheduling, so a balance or scrub yields to Docker.
//! * `dockroot-metrics.service`: `dockroot metrics --listen ADDR PATH`.
//!
//! The timer and the metrics service are enabled the way `systemctl enable` does it: a link in
//! `timers.target.wants/` and `multi-user.target.wants/`.

use std::path::{Path, PathBuf};

/// Why the units could not be named or written.
#[derive(Debug, thiserror::Error)]
pub enum UnitsError {
    /// The mount path has a `..` component (systemd refuses to escape it).
    #[error("{path:?} has a \"..\" component: give the mount path itself")]
    DotDot {
        /// The path as given.
        path: String,
    },
    /// The mount path is not UTF-8.
    #[error("{} is not UTF-8", path.display())]
    NotUtf8 {
        /// The path.
        path: PathBuf,
    },
    /// A unit, a directory or a link could not be written.
    #[error("write {}: {source}", path.display())]
    Write {
        /// The file, directory or link.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The template service's name.
pub const MAINTAIN_SERVICE: &str = "dockroot-maintain@.service";
/// The template timer's name.
pub const MAINTAIN_TIMER: &str = "dockroot-maintain@.timer";
/// The metrics service's name.
pub const METRICS_SERVICE: &str = "dockroot-metrics.service";

/// A path escaped as `systemd-escape --path` escapes it: duplicate and trailing slashes
/// dropped, `.` components removed, the leading slash dropped, `/` written `-`; bytes other
/// than ASCII letters, digits, `:`, `_` and `.` (and a leading `.`) written `\xNN`; the root
/// is `-`. A path with `..` components is refused, as systemd refuses it.
pub fn escape_path(path: &str) -> Result<String, UnitsError> {
    let components: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if components.contains(&"..") {
        return Err(UnitsError::DotDot { path: path.into() });
    }
    if components.is_empty() {
        return Ok("-".into());
    }
    Ok(escape(&components.join("/")))
}

/// A string escaped as `systemd-escape` (without `--path`) escapes it: `/` written `-`, bytes
/// other than ASCII letters, digits, `:`, `_` and `.` (and a leading `.`) written `\xNN`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b':' | b'_' | b'.' => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// Quotes a word for a systemd command line (`ExecStart=`) when it needs it, and doubles `%`
/// (a specifier there).
fn exec_word(word: &str) -> String {
    let word = word.replace('%', "%%");
    if word.is_empty() || word.contains(|c: char| c.is_whitespace() || "\"'\\;".contains(c)) {
        format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        word
    }
}

/// What the units run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSettings {
    /// The dockroot binary.
    pub exec: PathBuf,
    /// `--config PATH` to pass, if not the default.
    pub config: Option<PathBuf>,
    /// Where the metrics service listens.
    pub listen: String,
}

impl UnitSettings {
    fn command(&self) -> String {
        let mut words = vec![exec_word(&self.exec.to_string_lossy())];
        if let Some(c) = &self.config {
            words.push("--config".into());
            words.push(exec_word(&c.to_string_lossy()));
        }
        words.join(" ")
    }

    /// `dockroot-maintain@.service`.
    pub fn maintain_service(&self) -> String {
        format!(
            "# Written by `dockroot install-units`: the upkeep of the btrfs filesystem mounted at %f.
# Instanced by the escaped mount path: `systemd-escape --path /var/lib/docker` is var-lib-docker.
[Unit]
Description=dockroot upkeep of the btrfs filesystem at %f
RequiresMountsFor=%f
ConditionPathIsMountPoint=%f

[Service]
Type=oneshot
ExecStart={} maintain --wait %f
# 5: stopped by SIGTERM part-way (nothing left paused; the next run continues).
SuccessExitStatus=5
IOSchedulingClass=idle
CPUSchedulingPolicy=idle
Nice=19
# A balance stops within a chunk, a scrub at once: room enough for both.
TimeoutStopSec=5min
PrivateTmp=yes
NoNewPrivileges=yes
",
            self.command()
        )
    }

    /// `dockroot-maintain@.timer`.
    pub fn maintain_timer(&self) -> String {
        "# Written by `dockroot install-units`: runs dockroot-maintain@%i.service daily.
[Unit]
Description=Daily dockroot upkeep of the btrfs filesystem at %f

[Timer]
OnCalendar=daily
RandomizedDelaySec=1h
Persistent=true

[Install]
WantedBy=timers.target
"
        .to_string()
    }

    /// `dockroot-metrics.service` for the data root `path`.
    pub fn metrics_service(&self, path: &Path) -> String {
        format!(
            "# Written by `dockroot install-units`: Prometheus metrics of {path}.
[Unit]
Description=dockroot metrics of the btrfs filesystem at {path}
RequiresMountsFor={path}
After=local-fs.target

[Service]
ExecStart={} metrics --listen {} {}
Restart=on-failure
RestartSec=10s
Nice=10
PrivateTmp=yes
NoNewPrivileges=yes

[Install]
WantedBy=multi-user.target
",
            self.command(),
            exec_word(&self.listen),
            exec_word(&path.to_string_lossy()),
            path = path.display().to_string().replace('%', "%%"),
        )
    }

    /// The crontab line (root's crontab, `crontab -e`) that does the same on a host without
    /// systemd: once a night at a time derived from the path, at idle priority, logged to
    /// syslog. It replaces a nightly unfiltered `btrfs balance start`.
    pub fn cron_line(&self, path: &Path) -> String {
        // FNV-1a of the path: the same host and path always get the same minute and hour.
        let hash = path
            .to_string_lossy()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        let (minute, hour) = (hash % 60, 1 + (hash / 60) % 5);
        let shell_word = |s: &str| {
            if s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-:=".contains(&b))
            {
                s.to_string()
            } else {
                format!("'{}'", s.replace('\'', "'\\''"))
            }
        };
        let mut cmd = vec![shell_word(&self.exec.to_string_lossy())];
        if let Some(c) = &self.config {
            cmd.push("--config".into());
            cmd.push(shell_word(&c.to_string_lossy()));
        }
        format!(
            "{minute} {hour} * * * nice -n 19 ionice -c 3 {} maintain --wait {} 2>&1 | logger -t dockroot-maintain",
            cmd.join(" "),
            shell_word(&path.to_string_lossy())
        )
    }
}

/// A file `install` wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    /// Its path.
    pub path: PathBuf,
    /// A symbolic link's target, for the enabling links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_to: Option<PathBuf>,
}

/// The instance name of the maintain units for mount path `path`
/// (`dockroot-maintain@var-lib-docker`).
pub fn instance(path: &Path) -> Result<String, UnitsError> {
    let text = path.to_str().ok_or_else(|| UnitsError::NotUtf8 {
        path: path.to_path_buf(),
    })?;
    Ok(format!("dockroot-maintain@{}", escape_path(text)?))
}

/// Writes the three units into `unit_dir` (atomically) and enables the timer of `path` and
/// the metrics service with links, as `systemctl enable` would.
pub fn install(
    unit_dir: &Path,
    settings: &UnitSettings,
    path: &Path,
) -> Result<Vec<Written>, UnitsError> {
    let instance = instance(path)?;
    let err = |what: &Path, source: std::io::Error| UnitsError::Write {
        path: what.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(unit_dir).map_err(|e| err(unit_dir, e))?;
    let mut written = Vec::new();
    for (name, text) in [
        (MAINTAIN_SERVICE, settings.maintain_service()),
        (MAINTAIN_TIMER, settings.maintain_timer()),
        (METRICS_SERVICE, settings.metrics_service(path)),
    ] {
        let file = unit_dir.join(name);
        opskit::write_atomically(&file, text.as_bytes(), 0o644).map_err(|e| err(&file, e))?;
        written.push(Written {
            path: file,
            link_to: None,
        });
    }
    for (wants, link, target) in [
        (
            "timers.target.wants",
            format!("{instance}.timer"),
            MAINTAIN_TIMER,
        ),
        (
            "multi-user.target.wants",
            METRICS_SERVICE.to_string(),
            METRICS_SERVICE,
        ),
    ] {
        let dir = unit_dir.join(wants);
        std::fs::create_dir_all(&dir).map_err(|e| err(&dir, e))?;
        let link = dir.join(link);
        let target = Path::new("..").join(target);
        match std::fs::read_link(&link) {
            Ok(existing) if existing == target => {}
            Ok(_) | Err(_) if link.symlink_metadata().is_ok() => {
                std::fs::remove_file(&link).map_err(|e| err(&link, e))?;
                std::os::unix::fs::symlink(&target, &link).map_err(|e| err(&link, e))?;
            }
            _ => std::os::unix::fs::symlink(&target, &link).map_err(|e| err(&link, e))?,
        }
        written.push(Written {
            path: link,
            link_to: Some(target),
        });
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_systemd() {
        assert_eq!(escape_path("/var/lib/docker").unwrap(), "var-lib-docker");
        assert_eq!(escape_path("/").unwrap(), "-");
        assert_eq!(escape_path("//srv//docker/").unwrap(), "srv-docker");
        assert_eq!(escape_path("/srv/my-docker").unwrap(), "srv-my\\x2ddocker");
        assert_eq!(escape_path("/.hidden/x").unwrap(), "\\x2ehidden-x");
        assert_eq!(escape_path("/a b").unwrap(), "a\\x20b");
        assert!(escape_path("/a/../b").is_err());
    }

    #[test]
    fn the_cron_line_is_stable_and_at_night() {
        let s = UnitSettings {
            exec: "/usr/local/bin/dockroot".into(),
            config: None,
            listen: "127.0.0.1:9940".into(),
        };
        let line = s.cron_line(Path::new("/var/lib/docker"));
        assert_eq!(line, s.cron_line(Path::new("/var/lib/docker")));
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (m, h): (u64, u64) = (fields[0].parse().unwrap(), fields[1].parse().unwrap());
        assert!(m < 60 && (1..=5).contains(&h), "{line}");
        assert!(line.contains("maintain --wait /var/lib/docker"), "{line}");
    }
}
