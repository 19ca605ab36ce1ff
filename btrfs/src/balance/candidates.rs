//! Predicting which chunks a balance would touch, from the block group items, without asking
//! the kernel to start one (every BALANCE_V2 call costs two transaction commits, even when it
//! finds nothing to do).

use super::filters::{ChunkFilters, UsageFilter};
use super::request::Balance;
use crate::chunk::BlockGroup;
use crate::error::Result;
use crate::fs::Filesystem;
use crate::profile::BlockGroupKind;

impl ChunkFilters {
    /// Whether these filters select `group`, or `None` when that depends on filters this
    /// prediction does not evaluate (devid, drange, vrange, stripes, limit).
    pub fn selects(&self, group: &BlockGroup) -> Option<bool> {
        if self.devid.is_some()
            || self.drange.is_some()
            || self.vrange.is_some()
            || self.stripes.is_some()
            || self.limit.is_some()
        {
            return None;
        }
        if !self.profiles.is_empty() && !self.profiles.contains(&group.profile) {
            return Some(false);
        }
        let (used, length) = (
            u128::from(group.used.bytes()),
            u128::from(group.length.bytes()),
        );
        let percent_of = |p: u8| length * u128::from(p) / 100;
        let by_usage = match self.usage {
            // The kernel's rules: usage=0 selects chunks with nothing used; above 100 all.
            Some(UsageFilter::Below(0)) => used < 1,
            Some(UsageFilter::Below(p)) if p > 100 => used < length,
            Some(UsageFilter::Below(p)) => used < percent_of(p),
            Some(UsageFilter::Range { min, max }) => {
                percent_of(min) <= used && used < percent_of(max)
            }
            None => true,
        };
        let converted_already = self.soft && self.convert == Some(group.profile);
        Some(by_usage && !converted_already)
    }
}

impl Balance {
    /// The filters that apply to a block group of `kind` (system follows metadata unless set).
    fn filters_for(&self, kind: BlockGroupKind) -> Option<&ChunkFilters> {
        match kind {
            BlockGroupKind::Data | BlockGroupKind::Mixed => self.data.as_ref(),
            BlockGroupKind::Metadata => self.metadata.as_ref(),
            BlockGroupKind::System => self.system.as_ref().or(self.metadata.as_ref()),
            BlockGroupKind::GlobalReserve => None,
        }
    }
}

impl Filesystem {
    /// How many chunks `request` would relocate, predicted from the block group items; `None`
    /// when its filters cannot be predicted (devid, drange, vrange, stripes, limit). Needs
    /// CAP_SYS_ADMIN.
    ///
    /// The items are as of the last transaction commit (at most the commit interval, 30 s by
    /// default): a chunk emptied since then is counted with its old usage. Call
    /// [`sync`](Filesystem::sync) first when that matters; for a daily policy it does not.
    pub fn balance_candidates(&self, request: &Balance) -> Result<Option<u64>> {
        let mut count = 0;
        for group in self.block_groups()? {
            if let Some(filters) = request.filters_for(group.kind) {
                match filters.selects(&group) {
                    Some(true) => count += 1,
                    Some(false) => {}
                    None => return Ok(None),
                }
            }
        }
        Ok(Some(count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;
    use crate::size::ByteSize;

    fn group(used: u64) -> BlockGroup {
        BlockGroup {
            logical: 0,
            length: ByteSize(1000),
            used: ByteSize(used),
            kind: BlockGroupKind::Data,
            profile: Profile::Single,
        }
    }

    #[test]
    fn follows_the_kernels_usage_rules() {
        let below = |p| ChunkFilters::usage_below(p);
        assert_eq!(below(0).selects(&group(0)), Some(true));
        assert_eq!(below(0).selects(&group(1)), Some(false));
        assert_eq!(below(5).selects(&group(49)), Some(true));
        assert_eq!(below(5).selects(&group(50)), Some(false));
        let range: ChunkFilters = "usage=10..50".parse().unwrap();
        assert_eq!(range.selects(&group(99)), Some(false));
        assert_eq!(range.selects(&group(100)), Some(true));
        assert_eq!(range.selects(&group(499)), Some(true));
        assert_eq!(range.selects(&group(500)), Some(false));
        let soft = ChunkFilters::convert(Profile::Single, true);
        assert_eq!(soft.selects(&group(10)), Some(false));
        assert_eq!(
            "limit=1"
                .parse::<ChunkFilters>()
                .unwrap()
                .selects(&group(0)),
            None
        );
    }
}
