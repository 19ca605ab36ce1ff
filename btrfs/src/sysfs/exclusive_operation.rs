//! Which of the mutually exclusive operations runs, as `exclusive_operation` names it: a plain
//! value with no dependency on the rest of the crate, so the error type can carry it.

use std::fmt;

/// What `/sys/fs/btrfs/<fsid>/exclusive_operation` says. Only one of these runs at a time;
/// starting another fails (the kernel's `BTRFS_ERROR_DEV_EXCL_RUN_IN_PROGRESS`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "kebab-case")
)]
pub enum ExclusiveOperation {
    /// Nothing runs.
    None,
    /// A balance runs.
    Balance,
    /// A balance is paused (Linux 5.17+): a device can be added, nothing else started.
    BalancePaused,
    /// A device is being added.
    DeviceAdd,
    /// A device is being removed.
    DeviceRemove,
    /// A device is being replaced.
    DeviceReplace,
    /// A device is being resized.
    Resize,
    /// A swapfile is being activated.
    SwapActivate,
    /// A value this crate does not know (the kernel prints `UNKNOWN` for its own unknowns).
    Other(String),
}

impl ExclusiveOperation {
    /// Decodes the file's text (trimmed).
    pub fn parse(text: &str) -> ExclusiveOperation {
        match text.trim() {
            "none" => ExclusiveOperation::None,
            "balance" => ExclusiveOperation::Balance,
            "balance paused" => ExclusiveOperation::BalancePaused,
            "device add" => ExclusiveOperation::DeviceAdd,
            "device remove" => ExclusiveOperation::DeviceRemove,
            "device replace" => ExclusiveOperation::DeviceReplace,
            "resize" => ExclusiveOperation::Resize,
            "swap activate" => ExclusiveOperation::SwapActivate,
            other => ExclusiveOperation::Other(other.to_string()),
        }
    }

    /// Whether something runs (anything but [`ExclusiveOperation::None`]).
    pub fn is_running(&self) -> bool {
        *self != ExclusiveOperation::None
    }
}

impl fmt::Display for ExclusiveOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExclusiveOperation::None => "none",
            ExclusiveOperation::Balance => "balance",
            ExclusiveOperation::BalancePaused => "balance paused",
            ExclusiveOperation::DeviceAdd => "device add",
            ExclusiveOperation::DeviceRemove => "device remove",
            ExclusiveOperation::DeviceReplace => "device replace",
            ExclusiveOperation::Resize => "resize",
            ExclusiveOperation::SwapActivate => "swap activate",
            ExclusiveOperation::Other(s) => s,
        })
    }
}
