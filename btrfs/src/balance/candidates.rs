//! Predicting which chunks a balance would touch, from the block group items, without asking
//! the kernel to start one (every BALANCE_V2 call costs two transaction commits, even when it
//! finds nothing to do).

use super::filters::{AddressRange, ChunkFilters, LimitFilter, UsageFilter};
use super::request::Balance;
use crate::chunk::BlockGroup;
use crate::error::Result;
use crate::fs::Filesystem;
use crate::profile::BlockGroupKind;
use std::collections::BTreeSet;

impl ChunkFilters {
    /// Whether these filters select `group`, or `None` when that depends on filters this
    /// prediction does not evaluate (devid, drange, vrange, stripes, limit).
    pub fn selects(&self, group: &BlockGroup) -> Option<bool> {
        // Every filter is named, so a new one cannot be ignored by oversight.
        let ChunkFilters {
            profiles,
            usage,
            devid,
            drange,
            vrange,
            limit,
            stripes,
            convert,
            soft,
        } = self;
        if devid.is_some()
            || drange.is_some()
            || vrange.is_some()
            || stripes.is_some()
            || limit.is_some()
        {
            return None;
        }
        if !profiles.is_empty() && !profiles.contains(&group.profile) {
            return Some(false);
        }
        let (used, length) = (
            u128::from(group.used.bytes()),
            u128::from(group.length.bytes()),
        );
        let percent_of = |p: u8| length * u128::from(p) / 100;
        let by_usage = match *usage {
            // The kernel's rules: usage=0 selects chunks with nothing used; above 100 all.
            Some(UsageFilter::Below(0)) => used < 1,
            Some(UsageFilter::Below(p)) if p > 100 => used < length,
            Some(UsageFilter::Below(p)) => used < percent_of(p),
            // The kernel's range rules: a minimum of 0 is 0 bytes, a maximum of 0 is 1 byte
            // (only empty chunks), above 100 the whole chunk.
            Some(UsageFilter::Range { min, max }) => {
                let low = percent_of(min);
                let high = match max {
                    0 => 1,
                    m if m > 100 => length,
                    m => percent_of(m),
                };
                low <= used && used < high
            }
            None => true,
        };
        let converted_already = *soft && *convert == Some(group.profile);
        Some(by_usage && !converted_already)
    }
}

impl BlockGroup {
    /// How full the block group is, in permille (for ordering chunks by usage).
    pub fn permille(&self) -> u64 {
        let len = self.length.bytes().max(1);
        (u128::from(self.used.bytes()) * 1000 / u128::from(len)) as u64
    }
}

impl Balance {
    /// The request relocating `batch` (least used first, all of one kind, not empty), as a
    /// targeted maintenance balance does it: one chunk by its address (`vrange`, `limit=1`),
    /// several with the smallest `usage` ceiling that selects them all and `limit`.
    ///
    /// # Panics
    ///
    /// If `batch` is empty.
    pub fn relocating(batch: &[BlockGroup]) -> Balance {
        let first = &batch[0];
        let filters = if batch.len() == 1 {
            ChunkFilters {
                vrange: Some(AddressRange {
                    start: first.logical,
                    end: first.logical + first.length.bytes(),
                }),
                limit: Some(LimitFilter::AtMost(1)),
                ..ChunkFilters::default()
            }
        } else {
            // The smallest whole percentage the kernel's `used < length * usage / 100` test
            // passes for the fullest chunk of the batch.
            let last = batch.last().expect("non-empty");
            let pct = u128::from(last.used.bytes()) * 100 / u128::from(last.length.bytes().max(1));
            ChunkFilters {
                usage: Some(UsageFilter::Below((pct + 1).min(100) as u8)),
                limit: Some(LimitFilter::AtMost(batch.len() as u64)),
                ..ChunkFilters::default()
            }
        };
        match first.kind {
            BlockGroupKind::Metadata => Balance::new().metadata(filters),
            _ => Balance::new().data(filters),
        }
    }
}

impl Filesystem {
    /// The chunks a targeted balance would relocate, least used first: data (and metadata
    /// when `metadata`) chunks below `usage_max` % used, not in `excluded` (logical
    /// addresses); data before metadata. Mixed block groups are never candidates. Read from
    /// the block group items (see [`balance_candidates`](Filesystem::balance_candidates)).
    /// Needs CAP_SYS_ADMIN.
    pub fn least_used_chunks(
        &self,
        usage_max: u8,
        metadata: bool,
        excluded: &BTreeSet<u64>,
    ) -> Result<Vec<BlockGroup>> {
        let ceiling = ChunkFilters::usage_below(usage_max);
        let mut groups: Vec<BlockGroup> = self
            .block_groups()?
            .into_iter()
            .filter(|g| match g.kind {
                BlockGroupKind::Data => true,
                BlockGroupKind::Metadata => metadata,
                _ => false,
            })
            .filter(|g| ceiling.selects(g) == Some(true) && !excluded.contains(&g.logical))
            .collect();
        groups.sort_by_key(|g| (g.kind != BlockGroupKind::Data, g.permille(), g.logical));
        Ok(groups)
    }

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
        let empty_only: ChunkFilters = "usage=0..0".parse().unwrap();
        assert_eq!(empty_only.selects(&group(0)), Some(true));
        assert_eq!(empty_only.selects(&group(1)), Some(false));
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
