//! The dry run: which extents the kernel would rewrite, judged from the extent map with the
//! kernel's own target rules (fs/btrfs/defrag.c, `defrag_collect_targets`).

use super::options::DefragOptions;
use crate::fiemap::{Extent, ExtentFlags};
use crate::size::ByteSize;
use std::path::PathBuf;

/// The largest extent the kernel ever writes (`BTRFS_MAX_EXTENT_SIZE`): extents this large are
/// never rewritten.
const MAX_EXTENT: u64 = 128 << 20;
/// The largest compressed extent (`BTRFS_MAX_COMPRESSED`).
const MAX_COMPRESSED_EXTENT: u64 = 128 << 10;

/// What defragmenting one file would do, from its extent map.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FilePlan {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub size: ByteSize,
    /// Extents (as FIEMAP reports them: contiguous pieces merged).
    pub extents: u64,
    /// Extents shared with another file or snapshot.
    pub shared_extents: u64,
    /// Bytes of the file in shared extents.
    pub shared_bytes: ByteSize,
    /// Extents the kernel would rewrite.
    pub targets: u64,
    /// Bytes the kernel would rewrite.
    pub target_bytes: ByteSize,
    /// Shared extents among the targets.
    pub shared_targets: u64,
    /// Bytes rewritten out of shared extents: used space grows by up to this much (less when
    /// recompressing).
    pub would_unshare: ByteSize,
}

impl FilePlan {
    /// Whether defragmenting would unshare anything.
    pub fn unshares(&self) -> bool {
        self.shared_targets > 0
    }
}

/// Whether the kernel could ever rewrite this extent: not inline, not preallocated, not
/// delayed-allocation data waiting for writeback.
fn rewritable(e: &Extent) -> bool {
    !e.flags.intersects(
        ExtentFlags::DATA_INLINE
            | ExtentFlags::UNWRITTEN
            | ExtentFlags::DELALLOC
            | ExtentFlags::UNKNOWN,
    )
}

/// The kernel skips an extent (and does not merge towards it) when it is already as large as an
/// extent can get.
fn at_max_capacity(e: &Extent) -> bool {
    let max = if e.flags.contains(ExtentFlags::ENCODED) {
        MAX_COMPRESSED_EXTENT
    } else {
        MAX_EXTENT
    };
    e.length.0 >= max
}

/// Plans the defragmentation of a file of `size` bytes whose extents are `extents` (in file
/// order, as [`FiemapReader`](crate::fiemap::FiemapReader) returns them).
///
/// The kernel's rules: holes, inline, preallocated and delalloc extents are never rewritten;
/// with compression every other extent in the range is; otherwise an extent is rewritten when it
/// is smaller than the threshold, not already at the maximum extent size, and it can merge with
/// a neighbour: the next extent (adjacent in the file, rewritable, also below the threshold and
/// the maximum) or the previous target ending where it starts. A lone small extent stays.
pub fn plan_extents(
    path: PathBuf,
    size: ByteSize,
    extents: &[Extent],
    options: &DefragOptions,
) -> FilePlan {
    let mut planner = Planner::new(size, options);
    for e in extents {
        planner.push(*e);
    }
    planner.finish(path)
}

/// [`plan_extents`] fed one extent at a time, straight from the extent map: it holds one extent
/// back (whether an extent is a target depends on the next one), never the whole map.
pub(crate) struct Planner<'a> {
    options: &'a DefragOptions,
    threshold: u64,
    /// The requested range, clipped to the file.
    start: u64,
    end: u64,
    /// The extent waiting for its successor.
    pending: Option<Extent>,
    /// End offset of the last target, to merge a following small extent with it.
    last_target_end: Option<u64>,
    plan: FilePlan,
}

impl<'a> Planner<'a> {
    /// A planner for a file of `size` bytes.
    pub(crate) fn new(size: ByteSize, options: &'a DefragOptions) -> Self {
        Planner {
            options,
            threshold: options.effective_threshold().0,
            start: options.start.0,
            end: options.range_end().min(size.0),
            pending: None,
            last_target_end: None,
            plan: FilePlan {
                path: PathBuf::new(),
                size,
                extents: 0,
                shared_extents: 0,
                shared_bytes: ByteSize::ZERO,
                targets: 0,
                target_bytes: ByteSize::ZERO,
                shared_targets: 0,
                would_unshare: ByteSize::ZERO,
            },
        }
    }

    /// The next extent in file order.
    pub(crate) fn push(&mut self, e: Extent) {
        if let Some(previous) = self.pending.replace(e) {
            self.judge(&previous, Some(&e));
        }
    }

    /// The plan of the file at `path`, once every extent was pushed.
    pub(crate) fn finish(mut self, path: PathBuf) -> FilePlan {
        if let Some(last) = self.pending.take() {
            self.judge(&last, None);
        }
        self.plan.path = path;
        self.plan
    }

    fn small(&self, e: &Extent) -> bool {
        rewritable(e) && e.length.0 < self.threshold && !at_max_capacity(e)
    }

    /// Counts extent `e`, followed by `next`, and decides whether it is a target.
    fn judge(&mut self, e: &Extent, next: Option<&Extent>) {
        self.plan.extents += 1;
        if e.is_shared() {
            self.plan.shared_extents += 1;
            self.plan.shared_bytes += e.length;
        }
        // The part of the extent inside the requested range.
        let (from, to) = (e.logical.0.max(self.start), e.logical_end().min(self.end));
        if from >= to || !rewritable(e) {
            return;
        }
        let target = if self.options.compression.is_some() {
            true
        } else if !self.small(e) {
            false
        } else {
            let next_mergeable = next.is_some_and(|n| {
                n.logical.0 == e.logical_end() && n.logical.0 < self.end && self.small(n)
            });
            next_mergeable || self.last_target_end == Some(from)
        };
        if target {
            let bytes = ByteSize(to - from);
            self.plan.targets += 1;
            self.plan.target_bytes += bytes;
            if e.is_shared() {
                self.plan.shared_targets += 1;
                self.plan.would_unshare += bytes;
            }
            self.last_target_end = Some(to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defrag::Compression;

    const K: u64 = 1024;

    fn ext(logical: u64, length: u64, flags: ExtentFlags) -> Extent {
        Extent {
            logical: ByteSize(logical * K),
            physical: ByteSize(1 << 30),
            length: ByteSize(length * K),
            flags,
        }
    }

    fn plan(extents: &[Extent], options: &DefragOptions) -> FilePlan {
        let size = extents.last().map_or(0, |e| e.logical_end());
        plan_extents("f".into(), ByteSize(size), extents, options)
    }

    #[test]
    fn small_adjacent_extents_are_targets_and_a_lone_one_is_not() {
        let s = ExtentFlags::SHARED;
        let n = ExtentFlags::empty();
        let extents = [
            ext(0, 4, s),
            ext(4, 4, n),
            ext(8, 1024, n), // large: stays
            ext(1032, 4, s), // lone small extent between a large one and a hole: stays
            ext(2048, 8, n), // after a hole
            ext(2056, 8, s),
        ];
        let p = plan(&extents, &DefragOptions::default());
        assert_eq!(p.extents, 6);
        assert_eq!((p.shared_extents, p.shared_bytes), (3, ByteSize(16 * K)));
        assert_eq!((p.targets, p.target_bytes), (4, ByteSize(24 * K)));
        assert_eq!((p.shared_targets, p.would_unshare), (2, ByteSize(12 * K)));
        assert!(p.unshares());
    }

    #[test]
    fn threshold_range_and_compression_change_the_targets() {
        let n = ExtentFlags::empty();
        let extents = [
            ext(0, 512, n),
            ext(512, 512, n),
            ext(1024, 4, n),
            ext(1028, 4, n),
        ];
        let default = plan(&extents, &DefragOptions::default());
        assert_eq!(default.targets, 2);
        let big = plan(
            &extents,
            &DefragOptions::default().extent_threshold(ByteSize(1 << 20)),
        );
        assert_eq!(big.targets, 4);
        let ranged = plan(
            &extents,
            &DefragOptions::default().range(ByteSize(1026 * K), ByteSize(100 * K)),
        );
        assert_eq!((ranged.targets, ranged.target_bytes), (2, ByteSize(6 * K)));
        let compressed = plan(
            &[ext(0, 4096, n)],
            &DefragOptions::default().compression(Compression::Zstd),
        );
        assert_eq!(compressed.targets, 1);
    }

    #[test]
    fn inline_preallocated_and_delalloc_extents_are_never_targets() {
        let extents = [
            ext(0, 4, ExtentFlags::DATA_INLINE | ExtentFlags::NOT_ALIGNED),
            ext(4, 4, ExtentFlags::UNWRITTEN),
            ext(8, 4, ExtentFlags::DELALLOC | ExtentFlags::UNKNOWN),
            ext(12, 4, ExtentFlags::LAST),
        ];
        let p = plan(&extents, &DefragOptions::default());
        assert_eq!(p.targets, 0);
        let p = plan(
            &extents,
            &DefragOptions::default().compression(Compression::Lzo),
        );
        assert_eq!(p.targets, 1);
    }
}
