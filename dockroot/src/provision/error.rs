//! Why provisioning did not happen or stopped, in words that say what was done and how to
//! undo it.

use serde::{Serialize, Serializer};
use std::path::PathBuf;

/// Why provisioning did not happen or stopped.
#[derive(Debug, Serialize, thiserror::Error)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum ProvisionError {
    /// Refused before any change.
    #[error("refused: {reason}\nway out: {way_out}")]
    Refused {
        /// Why.
        reason: String,
        /// What to do.
        way_out: String,
    },
    /// A step failed after earlier ones changed the system.
    #[error("{}", failure_text(*step, *total, what, error, done))]
    Failed {
        /// The failed step (1-based).
        step: usize,
        /// How many steps there are.
        total: usize,
        /// The failed step, in words.
        what: String,
        /// The error.
        #[source]
        #[serde(serialize_with = "as_text")]
        error: Box<StepError>,
        /// The errno behind the error, where there is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        errno: Option<i32>,
        /// Steps done by this run, each with how to undo it.
        done: Vec<(String, String)>,
    },
    /// Stopped between two steps on SIGINT or SIGTERM.
    #[error("{}", stop_text(done))]
    Interrupted {
        /// Steps done by this run, each with how to undo it.
        done: Vec<(String, String)>,
    },
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// An LVM operation failed.
    #[error("{0}")]
    Lvm(#[from] lvm_kit::Error),
    /// A btrfs operation failed (mkfs, probe, open, subvolume).
    #[error("{0}")]
    Btrfs(#[from] btrfs_kit::Error),
    /// daemon.json could not be read or written.
    #[error("{0}")]
    DaemonJson(#[from] crate::docker::daemon_json::DaemonJsonError),
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done: create, write, link, ...
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// mount(2) failed.
    #[error("mount {} on {}: {source} ({})", device.display(), target.display(), source.desc())]
    Mount {
        /// The device.
        device: PathBuf,
        /// The mount point.
        target: PathBuf,
        /// The cause.
        #[source]
        source: nix::errno::Errno,
    },
    /// The LVM backend could not be set up (the devices given).
    #[error("{0}")]
    Backend(#[source] Box<ProvisionError>),
    /// What the step found is not what the plan expected (the text says what and what to do).
    #[error("{0}")]
    Unexpected(String),
}

impl StepError {
    /// A file operation's error.
    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        StepError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The errno behind the error, where there is one.
    pub fn errno(&self) -> Option<i32> {
        crate::errno::of(self)
    }
}

fn as_text<S: Serializer>(error: &StepError, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(error)
}

fn done_text(done: &[(String, String)]) -> String {
    if done.is_empty() {
        return "nothing was changed by this run".into();
    }
    let mut text = String::from("done by this run, and how to undo each (last first):");
    for (what, undo) in done.iter().rev() {
        text.push_str(&format!("\n  {what}: undo with {undo}"));
    }
    text
}

fn failure_text(
    step: usize,
    total: usize,
    what: &str,
    error: &StepError,
    done: &[(String, String)],
) -> String {
    format!(
        "step {step}/{total} ({what}) failed: {error}\n{}\nfix the cause and run provision again: it continues where it stopped",
        done_text(done)
    )
}

fn stop_text(done: &[(String, String)]) -> String {
    format!(
        "stopped on a signal between two steps\n{}\nrun provision again to continue",
        done_text(done)
    )
}

pub(crate) fn refuse(reason: impl Into<String>, way_out: impl Into<String>) -> ProvisionError {
    ProvisionError::Refused {
        reason: reason.into(),
        way_out: way_out.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_step_carries_its_errno_in_json() {
        let error = StepError::io(
            "write",
            std::path::Path::new("/etc/fstab"),
            std::io::Error::from_raw_os_error(nix::libc::ENOSPC),
        );
        let text = error.to_string();
        assert!(text.starts_with("write /etc/fstab: "), "{text}");
        let failed = ProvisionError::Failed {
            step: 2,
            total: 3,
            what: "add the fstab line".into(),
            errno: error.errno(),
            error: Box::new(error),
            done: vec![],
        };
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(json["result"], "failed");
        assert_eq!(json["errno"], nix::libc::ENOSPC);
        assert_eq!(json["error"], text.as_str());
        assert!(failed.to_string().contains(&text), "{failed}");
        assert!(std::error::Error::source(&failed).is_some());
    }

    #[test]
    fn a_mount_error_keeps_its_text_and_errno() {
        let e = StepError::Mount {
            device: "/dev/vg0/docker".into(),
            target: "/var/lib/docker".into(),
            source: nix::errno::Errno::EBUSY,
        };
        assert_eq!(e.errno(), Some(nix::libc::EBUSY));
        assert_eq!(
            e.to_string(),
            format!(
                "mount /dev/vg0/docker on /var/lib/docker: {} ({})",
                nix::errno::Errno::EBUSY,
                nix::errno::Errno::EBUSY.desc()
            )
        );
        let unexpected = StepError::Unexpected("the filesystem's uuid is unknown".into());
        assert_eq!(unexpected.errno(), None);
        let json = serde_json::to_value(ProvisionError::Failed {
            step: 1,
            total: 1,
            what: "x".into(),
            errno: unexpected.errno(),
            error: Box::new(unexpected),
            done: vec![],
        })
        .unwrap();
        assert!(json.get("errno").is_none(), "{json}");
    }
}
