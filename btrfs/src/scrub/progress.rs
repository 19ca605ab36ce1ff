//! The counters of a scrub (`struct btrfs_scrub_progress`).

use crate::size::ByteSize;
use btrfs_sys as sys;

/// What a scrub has done and found so far, on one device or summed over several.
///
/// Error counters count sectors (4 KiB on most filesystems; a bad tree block counts all of
/// its sectors). `uncorrectable_errors` are sectors no good copy was found for;
/// `corrected_errors` were rewritten from a good copy (not in a read-only scrub).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ScrubProgress {
    /// Data extents read.
    pub data_extents: u64,
    /// Tree blocks read.
    pub tree_extents: u64,
    /// Data bytes read.
    pub data_bytes: ByteSize,
    /// Metadata bytes read.
    pub tree_bytes: ByteSize,
    /// Sectors that could not be read (I/O errors).
    pub read_errors: u64,
    /// Data sectors whose checksum did not match.
    pub csum_errors: u64,
    /// Tree blocks whose header did not verify (bytenr, fsid, generation, checksum).
    pub verify_errors: u64,
    /// Data sectors without a checksum (nodatasum), which scrub cannot verify.
    pub no_csum: u64,
    /// Checksums without data (kernel-internal; 0 on current kernels).
    pub csum_discards: u64,
    /// Superblock copies that did not verify.
    pub super_errors: u64,
    /// Allocation failures inside the kernel.
    pub malloc_errors: u64,
    /// Sectors with no good copy: data is lost there.
    pub uncorrectable_errors: u64,
    /// Sectors rewritten from a good copy.
    pub corrected_errors: u64,
    /// Sectors whose first read failed but a re-read succeeded (kernel-internal; 0 on
    /// current kernels).
    pub unverified_errors: u64,
    /// The physical byte offset on the device up to which the scrub has gone; where a resume
    /// starts. Summed progress keeps the largest.
    pub last_physical: u64,
}

impl ScrubProgress {
    pub(crate) fn from_sys(p: &sys::btrfs_scrub_progress) -> Self {
        ScrubProgress {
            data_extents: p.data_extents_scrubbed,
            tree_extents: p.tree_extents_scrubbed,
            data_bytes: ByteSize(p.data_bytes_scrubbed),
            tree_bytes: ByteSize(p.tree_bytes_scrubbed),
            read_errors: p.read_errors,
            csum_errors: p.csum_errors,
            verify_errors: p.verify_errors,
            no_csum: p.no_csum,
            csum_discards: p.csum_discards,
            super_errors: p.super_errors,
            malloc_errors: p.malloc_errors,
            uncorrectable_errors: p.uncorrectable_errors,
            corrected_errors: p.corrected_errors,
            unverified_errors: p.unverified_errors,
            last_physical: p.last_physical,
        }
    }

    /// Data and metadata bytes read.
    pub fn bytes_scrubbed(&self) -> ByteSize {
        self.data_bytes + self.tree_bytes
    }

    /// Errors found (read, checksum, verify and superblock), as btrfs-progs' "Error summary"
    /// adds them up; each was either corrected or is uncorrectable.
    pub fn errors(&self) -> u64 {
        self.read_errors + self.csum_errors + self.verify_errors + self.super_errors
    }

    /// Adds `other`'s counters to these (e.g. a resumed run to the runs before it);
    /// `last_physical` becomes the larger of the two.
    pub fn add(&mut self, other: &ScrubProgress) {
        self.data_extents += other.data_extents;
        self.tree_extents += other.tree_extents;
        self.data_bytes += other.data_bytes;
        self.tree_bytes += other.tree_bytes;
        self.read_errors += other.read_errors;
        self.csum_errors += other.csum_errors;
        self.verify_errors += other.verify_errors;
        self.no_csum += other.no_csum;
        self.csum_discards += other.csum_discards;
        self.super_errors += other.super_errors;
        self.malloc_errors += other.malloc_errors;
        self.uncorrectable_errors += other.uncorrectable_errors;
        self.corrected_errors += other.corrected_errors;
        self.unverified_errors += other.unverified_errors;
        self.last_physical = self.last_physical.max(other.last_physical);
    }

    /// The sum of several devices' counters.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a ScrubProgress>) -> ScrubProgress {
        let mut total = ScrubProgress::default();
        for p in all {
            total.add(p);
        }
        total
    }

    /// The counters by the names the kernel and `btrfs scrub status -R` use, in their order.
    pub fn named(&self) -> [(&'static str, u64); 15] {
        [
            ("data_extents_scrubbed", self.data_extents),
            ("tree_extents_scrubbed", self.tree_extents),
            ("data_bytes_scrubbed", self.data_bytes.bytes()),
            ("tree_bytes_scrubbed", self.tree_bytes.bytes()),
            ("read_errors", self.read_errors),
            ("csum_errors", self.csum_errors),
            ("verify_errors", self.verify_errors),
            ("no_csum", self.no_csum),
            ("csum_discards", self.csum_discards),
            ("super_errors", self.super_errors),
            ("malloc_errors", self.malloc_errors),
            ("uncorrectable_errors", self.uncorrectable_errors),
            ("unverified_errors", self.unverified_errors),
            ("corrected_errors", self.corrected_errors),
            ("last_physical", self.last_physical),
        ]
    }

    /// Sets the counter called `name` (one of [`named`](Self::named)'s); false for an
    /// unknown name.
    pub(crate) fn set_named(&mut self, name: &str, value: u64) -> bool {
        let field = match name {
            "data_extents_scrubbed" => &mut self.data_extents,
            "tree_extents_scrubbed" => &mut self.tree_extents,
            "data_bytes_scrubbed" => &mut self.data_bytes.0,
            "tree_bytes_scrubbed" => &mut self.tree_bytes.0,
            "read_errors" => &mut self.read_errors,
            "csum_errors" => &mut self.csum_errors,
            "verify_errors" => &mut self.verify_errors,
            "no_csum" => &mut self.no_csum,
            "csum_discards" => &mut self.csum_discards,
            "super_errors" => &mut self.super_errors,
            "malloc_errors" => &mut self.malloc_errors,
            "uncorrectable_errors" => &mut self.uncorrectable_errors,
            "unverified_errors" => &mut self.unverified_errors,
            "corrected_errors" => &mut self.corrected_errors,
            "last_physical" => &mut self.last_physical,
            _ => return false,
        };
        *field = value;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_field_in_the_kernels_order() {
        let p = sys::btrfs_scrub_progress {
            data_extents_scrubbed: 1,
            tree_extents_scrubbed: 2,
            data_bytes_scrubbed: 3,
            tree_bytes_scrubbed: 4,
            read_errors: 5,
            csum_errors: 6,
            verify_errors: 7,
            no_csum: 8,
            csum_discards: 9,
            super_errors: 10,
            malloc_errors: 11,
            uncorrectable_errors: 12,
            corrected_errors: 13,
            last_physical: 14,
            unverified_errors: 15,
        };
        let s = ScrubProgress::from_sys(&p);
        let mut back = ScrubProgress::default();
        for (name, value) in s.named() {
            assert!(back.set_named(name, value), "{name}");
        }
        assert_eq!(back, s);
        assert_eq!(
            (s.corrected_errors, s.last_physical, s.unverified_errors),
            (13, 14, 15)
        );
        assert_eq!(s.errors(), 5 + 6 + 7 + 10);
        assert_eq!(s.bytes_scrubbed(), ByteSize(7));
        let mut twice = s;
        twice.add(&s);
        assert_eq!((twice.csum_errors, twice.last_physical), (12, 14));
    }
}
