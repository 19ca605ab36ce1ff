//! Typed errors. Each one names the operation, the object, the cause and what to do.

use std::fmt;
use std::path::PathBuf;

/// The kind of LVM object an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A physical volume (a block device path).
    PhysicalVolume,
    /// A volume group.
    VolumeGroup,
    /// A logical volume.
    LogicalVolume,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::PhysicalVolume => "physical volume",
            ObjectKind::VolumeGroup => "volume group",
            ObjectKind::LogicalVolume => "logical volume",
        })
    }
}

/// Who refused a caller that lacks the privilege ([`Error::PermissionDenied`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeniedBy {
    /// lvm2 itself: it could not open its lock files or the devices.
    Lvm2,
    /// The D-Bus bus, applying lvmdbusd's policy (`com.redhat.lvmdbus1.conf`) before the call
    /// reached the daemon.
    BusPolicy,
}

impl DeniedBy {
    /// What to do about it.
    pub fn hint(self) -> &'static str {
        match self {
            DeniedBy::Lvm2 => "lvm2 must run as root: it opens the PVs' block devices for writing, takes its locks in /run/lock/lvm and activates through device-mapper (CAP_SYS_ADMIN). Run as root, or use DbusBackend, whose lvmdbusd runs as root",
            DeniedBy::BusPolicy => "the bus lets only root call lvmdbusd (its policy is com.redhat.lvmdbus1.conf in /etc/dbus-1/system.d or /usr/share/dbus-1/system.d). Run as root, or grant this user send_destination=\"com.redhat.lvmdbus1\" in a policy file of its own: lvmdbusd then acts as root for it",
        }
    }
}

/// A failed lvm2 command, with everything needed to reproduce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandFailure {
    /// The command line, argv joined by spaces (for display only: it was run without a shell).
    pub command: String,
    /// The exit code (`None` if killed by a signal).
    pub exit_code: Option<i32>,
    /// lvm2's error messages: the command log's errors, then stderr.
    pub stderr: String,
}

impl fmt::Display for CommandFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.exit_code {
            Some(code) => write!(f, "`{}` exited with {code}", self.command)?,
            None => write!(f, "`{}` was killed by a signal", self.command)?,
        }
        let msg = self.stderr.trim();
        if !msg.is_empty() {
            write!(f, ": {msg}")?;
        }
        Ok(())
    }
}

/// Every error the crate returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named object does not exist (or is outside the device confinement).
    #[error("{operation}: {object} {name:?} not found; check the name, and that its devices are in the confinement list if one is set")]
    NotFound {
        /// What was being done.
        operation: String,
        /// What kind of object was missing.
        object: ObjectKind,
        /// Its name (or device path).
        name: String,
    },

    /// An object with that name already exists.
    #[error("{operation}: {object} {name:?} already exists; pick another name or remove the existing one first")]
    AlreadyExists {
        /// What was being done.
        operation: String,
        /// What kind of object exists.
        object: ObjectKind,
        /// Its name (or device path).
        name: String,
    },

    /// The VG lacks the free extents the request needs.
    #[error("{operation}: volume group {vg:?} has insufficient free space ({detail}); extend the VG with another PV or ask for less")]
    InsufficientSpace {
        /// What was being done.
        operation: String,
        /// The volume group.
        vg: String,
        /// lvm2's account of what was needed and what was free.
        detail: String,
    },

    /// A name breaks lvm2's naming rules; nothing was run.
    #[error("{object} name {name:?} is invalid: {reason}")]
    InvalidName {
        /// What kind of object the name was for.
        object: ObjectKind,
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },

    /// A request that cannot be carried out as asked (e.g. extending to a smaller size); nothing was run.
    #[error("{operation}: {reason}")]
    InvalidRequest {
        /// What was being done.
        operation: String,
        /// Why it was refused.
        reason: String,
    },

    /// The VG is locked by another command or host.
    #[error("{operation}: volume group {vg:?} is locked or busy ({detail}); retry when the other LVM command has finished")]
    Busy {
        /// What was being done.
        operation: String,
        /// The volume group.
        vg: String,
        /// lvm2's message.
        detail: String,
    },

    /// The caller lacks the privilege: lvm2 refused it (LVM changes and most reports need root),
    /// or the bus refused to pass its call to lvmdbusd (the bus policy admits only root).
    #[error("{operation}: permission denied ({detail}); {}", by.hint())]
    PermissionDenied {
        /// What was being done.
        operation: String,
        /// Who refused.
        by: DeniedBy,
        /// The refusal as given, e.g. `/run/lock/lvm/V_vg0:aux: open failed: Permission denied`
        /// from lvm2, or the bus's `org.freedesktop.DBus.Error.AccessDenied` message.
        detail: String,
    },

    /// A resize that lvm2 did not report as failed left the LV short of the size asked for.
    #[error("{operation}: LV {lv} is {found} after the change, not the {expected} asked for; lvm2 reported no error: check it with `lvs` before retrying")]
    SizeMismatch {
        /// What was being done.
        operation: String,
        /// `VG/LV`.
        lv: String,
        /// The size asked for (whole extents).
        expected: crate::size::Bytes,
        /// The size the LV has now.
        found: crate::size::Bytes,
    },

    /// A PV of the VG is missing.
    #[error("{operation}: volume group {vg:?} has a missing physical volume ({detail}); reattach the device or run vgreduce --removemissing")]
    MissingPv {
        /// What was being done.
        operation: String,
        /// The volume group.
        vg: String,
        /// lvm2's message.
        detail: String,
    },

    /// The kernel has no device-mapper, so nothing can be activated.
    #[error("{operation}: device-mapper is unavailable ({detail}); load dm_mod, or use metadata-only operations (activate: false)")]
    DeviceMapperUnavailable {
        /// What was being done.
        operation: String,
        /// What showed it.
        detail: String,
    },

    /// An lvm2 command failed for a reason not covered by a more specific variant.
    #[error("{operation}: {failure}")]
    Command {
        /// What was being done.
        operation: String,
        /// The command, its exit code and its messages.
        failure: CommandFailure,
    },

    /// The lvm2 program could not be started.
    #[error(
        "{operation}: cannot run {program}: {source}; install lvm2 or set the lvm binary path"
    )]
    Spawn {
        /// What was being done.
        operation: String,
        /// The program that could not be run.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// lvm2's output could not be understood.
    #[error("{operation}: cannot parse lvm2 output: {detail}; this lvm2 version may be unsupported, please report it")]
    Parse {
        /// What was being done.
        operation: String,
        /// What was wrong.
        detail: String,
    },

    /// A D-Bus call to lvmdbusd failed.
    #[error("{operation}: lvmdbusd call failed: {detail}; check that lvmdbusd runs and is reachable on the bus")]
    Dbus {
        /// What was being done.
        operation: String,
        /// The D-Bus error name and message.
        detail: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
