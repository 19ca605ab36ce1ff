//! `exclusive_operation` (Linux 5.10+): which of the mutually exclusive operations runs.

use super::exclusive_operation::ExclusiveOperation;
use super::FsSysfs;
use crate::error::Result;

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
