//! `exclusive_operation` (Linux 5.10+): which of the mutually exclusive operations runs.

use super::FsSysfs;
use crate::error::Result;
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

impl FsSysfs {
    /// The exclusive operation running now; `None` when the kernel lacks the knob (before
    /// Linux 5.10).
    pub fn exclusive_operation(&self) -> Result<Option<ExclusiveOperation>> {
        Ok(self
            .knob("exclusive_operation")
            .read()?
            .map(|t| ExclusiveOperation::parse(&t)))
    }
}

#[cfg(test)]
mod tests {
    use super::ExclusiveOperation as Op;

    #[test]
    fn parses_every_kernel_string_and_prints_it_back() {
        for text in [
            "none",
            "balance",
            "balance paused",
            "device add",
            "device remove",
            "device replace",
            "resize",
            "swap activate",
            "UNKNOWN",
        ] {
            assert_eq!(Op::parse(&format!("{text}\n")).to_string(), text);
        }
        assert_eq!(Op::parse("balance paused\n"), Op::BalancePaused);
        assert!(!Op::parse("none").is_running());
        assert!(Op::parse("UNKNOWN").is_running());
    }
}
