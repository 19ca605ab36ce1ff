//! Where the chunks go: one system, one metadata and one data chunk, placed on the device
//! after the first reserved MiB and clear of every superblock copy.

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

/// Smallest chunk sizes: system 4 MiB, metadata 8 MiB, data 8 MiB.
const MIN_SIZES: [u64; 3] = [4 * MIB, 8 * MIB, 8 * MIB];

/// Plans the chunks of a `size`-byte filesystem (rounded down to `sectorsize`). Metadata and
/// data chunks get a tenth of the size each (metadata at most 256 MiB, data at most 1 GiB, both
/// at least 8 MiB); the system chunk gets 4 MiB. With `dup`, system and metadata have two
/// copies.
pub fn plan(size: u64, sectorsize: u64, dup: bool) -> Result<Layout, TooSmall> {
    let total_bytes = size - size % sectorsize;
    let tenth = (total_bytes / 10) / MIB * MIB;
    let sizes = [
        MIN_SIZES[0],
        tenth.clamp(MIN_SIZES[1], 256 * MIB),
        tenth.clamp(MIN_SIZES[2], 1024 * MIB),
    ];
    let copies = if dup { 2 } else { 1 };
    let (layout, end) = place(sizes, copies, total_bytes);
    if end <= total_bytes {
        return Ok(layout);
    }
    let (_, minimum) = place(MIN_SIZES, copies, u64::MAX);
    Err(TooSmall { minimum })
}

/// The smallest filesystem size [`plan`] accepts.
pub fn minimum_size(dup: bool) -> u64 {
    place(MIN_SIZES, if dup { 2 } else { 1 }, u64::MAX).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_gib_dup() {
        let l = plan(1 << 30, 4096, true).unwrap();
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
    fn rejects_too_small_with_the_minimum() {
        let min = minimum_size(true);
        assert_eq!(min, 33 * MIB);
        assert!(plan(min, 4096, true).is_ok());
        assert_eq!(plan(min - 4096, 4096, true), Err(TooSmall { minimum: min }));
        assert_eq!(minimum_size(false), 21 * MIB);
    }
}
