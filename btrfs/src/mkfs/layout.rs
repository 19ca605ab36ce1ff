//! Where the chunks go: one system, one metadata and one data chunk, placed on the device
//! after the first reserved MiB and clear of every superblock copy.

use super::options::{MetadataProfile, MkfsOptions};
use crate::format::consts::{bg, super_mirror_offset, RESERVED_START, SUPER_MIRRORS, SUPER_SIZE};

const MIB: u64 = 1024 * 1024;

/// A chunk to create: its logical range, type and the physical start of each copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChunk {
    /// Logical start.
    pub logical: u64,
    /// Length (of each copy).
    pub length: u64,
    /// Block group type and profile flags.
    pub flags: u64,
    /// Physical start of each copy.
    pub stripes: Vec<u64>,
}

/// The planned chunks, in logical order: system, metadata, data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Filesystem size (a multiple of the sector size).
    pub total_bytes: u64,
    /// The system chunk (holds the chunk tree).
    pub system: PlannedChunk,
    /// The metadata chunk (holds every other tree).
    pub metadata: PlannedChunk,
    /// The data chunk.
    pub data: PlannedChunk,
}

impl Layout {
    /// The three chunks in logical order.
    pub fn chunks(&self) -> [&PlannedChunk; 3] {
        [&self.system, &self.metadata, &self.data]
    }

    /// Bytes of device extents: the sum of every copy of every chunk.
    pub fn dev_bytes_used(&self) -> u64 {
        self.chunks()
            .iter()
            .map(|c| c.length * c.stripes.len() as u64)
            .sum()
    }
}

/// The device cannot hold the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSmall {
    /// The smallest size that works for these options.
    pub minimum: u64,
}

/// First-fit allocation of physical ranges from the holes between superblock copies.
struct Allocator {
    /// Free ranges `[start, end)`, in order.
    free: Vec<(u64, u64)>,
    /// The end of the highest range handed out.
    high: u64,
}

impl Allocator {
    fn new() -> Self {
        let mut free = Vec::new();
        let mut start = RESERVED_START;
        for m in (1..SUPER_MIRRORS).map(super_mirror_offset) {
            free.push((start, m));
            start = (m + SUPER_SIZE as u64).next_multiple_of(MIB);
        }
        free.push((start, u64::MAX));
        Allocator {
            free,
            high: RESERVED_START,
        }
    }

    /// The physical start of the first free range of `len` bytes.
    fn take(&mut self, len: u64) -> u64 {
        let hole = self
            .free
            .iter_mut()
            .find(|(s, e)| e - s >= len)
            .expect("the last hole is unbounded");
        let start = hole.0;
        hole.0 += len;
        self.high = self.high.max(hole.0);
        start
    }
}

fn place(sizes: [u64; 3], copies: usize, total_bytes: u64) -> (Layout, u64) {
    let mut alloc = Allocator::new();
    let mut logical = RESERVED_START;
    let profile = if copies == 2 { bg::DUP } else { 0 };
    let kinds = [
        (bg::SYSTEM | profile, copies),
        (bg::METADATA | profile, copies),
        (bg::DATA, 1),
    ];
    let mut chunks = kinds.iter().zip(sizes).map(|(&(flags, n), length)| {
        let stripes = (0..n).map(|_| alloc.take(length)).collect();
        let c = PlannedChunk {
            logical,
            length,
            flags,
            stripes,
        };
        logical += length;
        c
    });
    let (system, metadata, data) = (
        chunks.next().expect("3 chunks"),
        chunks.next().expect("3 chunks"),
        chunks.next().expect("3 chunks"),
    );
    drop(chunks);
    (
        Layout {
            total_bytes,
            system,
            metadata,
            data,
        },
        alloc.high,
    )
}

/// The tree blocks a fresh filesystem's metadata chunk must hold so that, mounted, it can
/// create its first file and write to it, with no space left to allocate another chunk.
///
/// Measured on Linux 6.18 for every node size from 4 to 64 KiB and both metadata profiles
/// (mkfs at the size, mount, `touch`, write 64 KiB, fsync): with 600 blocks it works, with
/// one 64 KiB step less the `touch` fails with ENOSPC, at every node size alike. The kernel's
/// reservations are counted in tree blocks (the global reserve and a create's items), which
/// is why the rule is a number of blocks and not of bytes. `tests/kernel/mkfs.rs` checks
/// both sides of it on the running kernel.
pub const MIN_METADATA_NODES: u64 = 600;

/// The granularity of chunk sizes.
const CHUNK_ALIGN: u64 = 64 * 1024;

/// Smallest chunk sizes for `nodesize`: system 4 MiB; metadata [`MIN_METADATA_NODES`] tree
/// blocks; data 8 MiB.
fn min_sizes(nodesize: u64) -> [u64; 3] {
    let metadata = (MIN_METADATA_NODES * nodesize).next_multiple_of(CHUNK_ALIGN);
    [4 * MIB, metadata, 8 * MIB]
}

/// Plans the chunks of a `size`-byte filesystem (rounded down to the sector size) for `opts`
/// (its metadata profile, sector and node size). Metadata and data chunks get a tenth of the
/// size each (metadata at most 256 MiB, data at most 1 GiB); at least
/// [`MIN_METADATA_NODES`] tree blocks of metadata and 8 MiB of data. The system chunk gets
/// 4 MiB. With `dup`, system and metadata have two copies.
pub fn plan(size: u64, opts: &MkfsOptions) -> Result<Layout, TooSmall> {
    let sectorsize = u64::from(opts.sectorsize);
    let total_bytes = size - size % sectorsize;
    let tenth = (total_bytes / 10) / MIB * MIB;
    let min = min_sizes(opts.nodesize.into());
    let sizes = [
        min[0],
        tenth.clamp(min[1], (256 * MIB).max(min[1])),
        tenth.clamp(min[2], 1024 * MIB),
    ];
    let copies = copies(opts);
    let (layout, end) = place(sizes, copies, total_bytes);
    if end <= total_bytes {
        return Ok(layout);
    }
    Err(TooSmall {
        minimum: minimum_size(opts),
    })
}

fn copies(opts: &MkfsOptions) -> usize {
    match opts.metadata {
        MetadataProfile::Dup => 2,
        MetadataProfile::Single => 1,
    }
}

/// The smallest filesystem size [`plan`] accepts for `opts`: the smallest on which the
/// mounted filesystem can create a file and write to it (see [`MIN_METADATA_NODES`]).
pub fn minimum_size(opts: &MkfsOptions) -> u64 {
    place(min_sizes(opts.nodesize.into()), copies(opts), u64::MAX).1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dup: bool, nodesize: u32) -> MkfsOptions {
        MkfsOptions {
            metadata: if dup {
                MetadataProfile::Dup
            } else {
                MetadataProfile::Single
            },
            nodesize,
            ..MkfsOptions::default()
        }
    }

    #[test]
    fn one_gib_dup() {
        let l = plan(1 << 30, &opts(true, 16384)).unwrap();
        assert_eq!(l.system.stripes, vec![MIB, 5 * MIB]);
        assert_eq!(l.metadata.length, 102 * MIB);
        assert_eq!(l.metadata.logical, 5 * MIB);
        // Metadata copies would cover the 64 MiB superblock copy below it, so they go past it.
        assert_eq!(l.metadata.stripes, vec![65 * MIB, 167 * MIB]);
        // The data chunk does not fit in the hole below 64 MiB either.
        assert_eq!(l.data.stripes, vec![269 * MIB]);
        assert_eq!(l.dev_bytes_used(), 8 * MIB + 204 * MIB + 102 * MIB);
    }

    #[test]
    fn the_minimum_holds_the_metadata_rule_and_nothing_smaller_plans() {
        for dup in [true, false] {
            for nodesize in [4096, 8192, 16384, 32768, 65536] {
                let o = opts(dup, nodesize);
                let min = minimum_size(&o);
                let l = plan(min, &o).unwrap();
                assert!(l.metadata.length >= MIN_METADATA_NODES * u64::from(nodesize));
                assert_eq!(plan(min - 4096, &o), Err(TooSmall { minimum: min }));
                // Every size above plans too, with the rule kept.
                for size in (min..2 << 30).step_by(MIB as usize) {
                    let l = plan(size, &o).unwrap_or_else(|e| panic!("{o:?} {size}: {e:?}"));
                    assert!(l.metadata.length >= MIN_METADATA_NODES * u64::from(nodesize));
                }
            }
        }
        // 16 KiB nodes: 600 blocks are 9.375 MiB per copy.
        assert_eq!(minimum_size(&opts(true, 16384)), 37_486_592);
        assert_eq!(minimum_size(&opts(false, 16384)), 23_461_888);
    }
}
