//! The daily maintenance policy of btrfsmaintenance: small usage-filtered balances that return
//! nearly-empty chunks to the unallocated pool without rewriting the whole filesystem.

use super::filters::ChunkFilters;
use super::request::Balance;
use super::sequence::{Sequence, Step};
use crate::profile::BlockGroupKind;

/// A sequence of usage-filtered balances, data first, then metadata. The default is
/// btrfsmaintenance's: data usage 0, 5, 10; metadata usage 0, 5.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DailyPolicy {
    /// Usage thresholds (percent) for data chunks, run in order.
    pub data_usage: Vec<u8>,
    /// Usage thresholds (percent) for metadata chunks, run in order.
    pub metadata_usage: Vec<u8>,
}

impl Default for DailyPolicy {
    fn default() -> Self {
        DailyPolicy {
            data_usage: vec![0, 5, 10],
            metadata_usage: vec![0, 5],
        }
    }
}

/// One step of a [`DailyPolicy`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PolicyStep {
    /// Which chunks the step balances.
    pub kind: BlockGroupKind,
    /// The usage threshold (percent): chunks less full than this are relocated.
    pub usage: u8,
    /// The balance request of this step.
    pub request: Balance,
}

impl DailyPolicy {
    /// The steps, in the order to run them.
    pub fn steps(&self) -> Vec<PolicyStep> {
        let data = self.data_usage.iter().map(|&usage| PolicyStep {
            kind: BlockGroupKind::Data,
            usage,
            request: Balance::new().data(ChunkFilters::usage_below(usage)),
        });
        let meta = self.metadata_usage.iter().map(|&usage| PolicyStep {
            kind: BlockGroupKind::Metadata,
            usage,
            request: Balance::new().metadata(ChunkFilters::usage_below(usage)),
        });
        data.chain(meta).collect()
    }

    /// The steps as a [`Sequence`] that skips a step no chunk qualifies for (run it with
    /// [`Sequence::run`]).
    pub fn sequence(&self) -> Sequence {
        Sequence {
            steps: self
                .steps()
                .into_iter()
                .map(|s| Step::Start(s.request))
                .collect(),
            skip_unneeded: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_btrfsmaintenance_daily() {
        let steps: Vec<String> = DailyPolicy::default()
            .steps()
            .iter()
            .map(|s| s.request.to_string())
            .collect();
        assert_eq!(
            steps,
            [
                "-dusage=0",
                "-dusage=5",
                "-dusage=10",
                "-musage=0",
                "-musage=5"
            ]
        );
    }
}
