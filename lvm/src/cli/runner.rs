//! Running one lvm2 command: absolute path, no shell, `LC_ALL=C`, stdin from /dev/null, `-y`,
//! one merged `--config`, JSON output with the command log.

use super::version::LvmVersion;
use crate::classify::{classify, Target};
use crate::error::{CommandFailure, Error, Result};
use crate::report::Document;
use crate::request::filter_list;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Everything that shapes how commands run, fixed when the backend is built.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The `lvm` binary.
    pub lvm: PathBuf,
    /// Devices LVM is confined to, if any.
    pub devices: Option<Vec<PathBuf>>,
    /// Whether udev runs (udev sync and udev device lists are used only then).
    pub udev: bool,
    /// Whether the kernel has device-mapper; without it `global/activation=0` is set.
    pub device_mapper: bool,
    /// Whether lvm2 writes /etc/lvm/backup and /etc/lvm/archive.
    pub metadata_backup: bool,
    /// Whether lvm2 waits for a VG lock held by another command (lvm2's default) or fails.
    pub wait_for_locks: bool,
}

/// The result of a successful command.
pub(crate) struct Output {
    /// The parsed JSON (report and command log).
    pub doc: Document,
}

/// Where the lvm binary usually is.
pub(crate) fn find_lvm() -> PathBuf {
    ["/usr/sbin/lvm", "/sbin/lvm", "/usr/bin/lvm", "/bin/lvm"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/lvm"))
}

/// A `Command` for the lvm binary with the fixed environment.
fn base_command(lvm: &Path) -> Command {
    let mut cmd = Command::new(lvm);
    cmd.env("LC_ALL", "C")
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `lvm version` and parses it.
pub(crate) fn detect_version(lvm: &Path) -> Result<LvmVersion> {
    let operation = "detect the lvm2 version";
    let out = base_command(lvm)
        .arg("version")
        .output()
        .map_err(|source| Error::Spawn {
            operation: operation.into(),
            program: lvm.to_owned(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    LvmVersion::from_version_output(&text).ok_or_else(|| Error::Parse {
        operation: operation.into(),
        detail: format!("no \"LVM version:\" line in `lvm version` output: {text:?}"),
    })
}

/// Whether lvm2 accepts `--reportformat` for this command. lvm2 (2.03.16 at least) refuses it
/// for `lvcreate` of snapshots and thin pools ("Option --reportformat is unsupported with
/// snapshots" / "with thin pools", exit 3); thin LVs share the thin code path. Those commands run
/// without the JSON command log; their errors are read from stderr.
fn accepts_reportformat(subcommand: &str, args: &[OsString]) -> bool {
    if subcommand != "lvcreate" {
        return true;
    }
    let snapshot = args.iter().any(|a| a == "-s" || a == "--snapshot");
    let thin = args
        .windows(2)
        .any(|w| w[0] == "--type" && (w[1] == "thin-pool" || w[1] == "thin"));
    !(snapshot || thin)
}

/// The one merged `--config` string: every setting grouped under its section, each section
/// once (`--config` may be given only once).
fn config_string(settings: &Settings, version: LvmVersion, json: bool) -> String {
    let mut sections: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut set = |section, setting: &str| {
        sections
            .entry(section)
            .or_default()
            .push(setting.to_owned())
    };
    if json {
        set("log", "report_command_log=1");
        if version.needs_full_command_log() {
            set("log", "command_log_selection=\"all\"");
        }
    }
    if !settings.device_mapper {
        set("global", "activation=0");
    }
    if !settings.wait_for_locks {
        set("global", "wait_for_locks=0");
    }
    if !settings.udev {
        set("activation", "udev_sync=0");
        set("activation", "udev_rules=0");
        set("devices", "obtain_device_list_from_udev=0");
    }
    if !settings.metadata_backup {
        set("backup", "backup=0");
        set("backup", "archive=0");
    }
    if let (Some(devices), false) = (&settings.devices, version.has_devices_option()) {
        set("devices", &format!("filter={}", filter_list(devices)));
    }
    sections
        .iter()
        .map(|(section, values)| format!("{section}{{{}}}", values.join(" ")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Builds the argv after the program name: `subcommand args... common-options`.
pub(crate) fn argv(
    settings: &Settings,
    version: LvmVersion,
    subcommand: &str,
    args: &[OsString],
) -> Vec<OsString> {
    let json = accepts_reportformat(subcommand, args);
    let mut v: Vec<OsString> = vec![subcommand.into()];
    v.extend(args.iter().cloned());
    v.push("--config".into());
    v.push(config_string(settings, version, json).into());
    if json {
        v.push("--reportformat".into());
        v.push(
            if version.has_json_std() {
                "json_std"
            } else {
                "json"
            }
            .into(),
        );
    }
    if subcommand == "fullreport" {
        v.extend(["--units", "b", "--nosuffix"].map(OsString::from));
    } else {
        v.push("-y".into());
    }
    if let (Some(devices), true) = (&settings.devices, version.has_devices_option()) {
        let list: Vec<String> = devices.iter().map(|d| d.display().to_string()).collect();
        v.push("--devices".into());
        v.push(list.join(",").into());
    }
    v
}

/// Runs one lvm2 command and classifies its failure.
pub(crate) fn run(
    settings: &Settings,
    version: LvmVersion,
    operation: &str,
    target: &Target,
    subcommand: &str,
    args: &[OsString],
) -> Result<Output> {
    run_raw(settings, version, operation, subcommand, args).map_err(|failed| match failed {
        Failed::Error(e) => e,
        Failed::Command { messages, failure } => classify(operation, target, &messages, failure),
    })
}

/// A failure before classification.
pub(crate) enum Failed {
    /// Could not run or parse.
    Error(Error),
    /// lvm2 exited non-zero.
    Command {
        /// The command log's errors, then stderr's lines.
        messages: Vec<String>,
        /// The command, exit code and messages.
        failure: CommandFailure,
    },
}

/// Runs one lvm2 command, leaving the classification to the caller.
pub(crate) fn run_raw(
    settings: &Settings,
    version: LvmVersion,
    operation: &str,
    subcommand: &str,
    args: &[OsString],
) -> std::result::Result<Output, Failed> {
    let argv = argv(settings, version, subcommand, args);
    let out = base_command(&settings.lvm)
        .args(&argv)
        .output()
        .map_err(|source| {
            Failed::Error(Error::Spawn {
                operation: operation.into(),
                program: settings.lvm.clone(),
                source,
            })
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Without --reportformat, stdout is lvm2's plain messages: there is no JSON to read.
    let doc = if accepts_reportformat(subcommand, args) {
        Document::parse(&stdout)
    } else {
        Ok(Document::default())
    };
    if out.status.success() {
        let doc = doc.map_err(|detail| {
            Failed::Error(Error::Parse {
                operation: operation.into(),
                detail: format!("{detail}; stdout was {stdout:?}"),
            })
        })?;
        return Ok(Output { doc });
    }
    let mut messages = doc.map(|d| d.errors()).unwrap_or_default();
    messages.extend(
        stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("WARNING: Activation disabled"))
            .map(str::to_owned),
    );
    let command = std::iter::once(settings.lvm.display().to_string())
        .chain(argv.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    Err(Failed::Command {
        failure: CommandFailure {
            command,
            exit_code: out.status.code(),
            stderr: messages.join("\n"),
        },
        messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_one_config_and_confines() {
        let settings = Settings {
            lvm: "/usr/sbin/lvm".into(),
            devices: Some(vec!["/dev/loop3".into(), "/dev/loop4".into()]),
            udev: false,
            device_mapper: false,
            metadata_backup: false,
            wait_for_locks: false,
        };
        let v = LvmVersion::new(2, 3, 16);
        let args = argv(&settings, v, "lvcreate", &["-n".into(), "x".into()]);
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(args.iter().filter(|a| *a == "--config").count(), 1);
        assert!(args.contains(&"-y".into()));
        assert!(args.ends_with(&["--devices".into(), "/dev/loop3,/dev/loop4".into()]));
        let config = &args[args.iter().position(|a| a == "--config").unwrap() + 1];
        assert!(config.contains("command_log_selection=\"all\""));
        assert!(config.contains("global{activation=0 wait_for_locks=0}"));
        assert!(config.contains("udev_sync=0"));
        assert!(args.contains(&"json".into()));
        // An old lvm2 without --devices gets a filter instead.
        let old = argv(&settings, LvmVersion::new(2, 3, 11), "fullreport", &[]);
        let old: Vec<String> = old.iter().map(|a| a.to_string_lossy().into()).collect();
        assert!(!old.contains(&"--devices".into()) && !old.contains(&"-y".into()));
        assert!(old
            .iter()
            .any(|a| a.contains(r#"filter=[ "a|^/dev/loop3$|", "a|^/dev/loop4$|", "r|.*|" ]"#)));
        let new = argv(&settings, LvmVersion::new(2, 3, 22), "fullreport", &[]);
        assert!(new.contains(&"json_std".into()));
        // Snapshots and thin pools refuse --reportformat.
        let snap = argv(&settings, v, "lvcreate", &["-s".into(), "vg/lv".into()]);
        assert!(!snap.contains(&"--reportformat".into()));
        assert!(!snap
            .iter()
            .any(|a| a.to_string_lossy().contains("report_command_log")));
        let pool = argv(
            &settings,
            v,
            "lvcreate",
            &["--type".into(), "thin-pool".into()],
        );
        assert!(!pool.contains(&"--reportformat".into()));
    }
}
