//! What a defragmentation does: threshold, compression, range, flush, and the shared-extent
//! opt-in.

use crate::size::ByteSize;
use std::fmt;
use std::str::FromStr;

/// The extent size below which the kernel rewrites extents when no threshold is given (the
/// kernel's default for a threshold of 0).
pub const DEFAULT_EXTENT_THRESHOLD: ByteSize = ByteSize(256 * 1024);

/// A compression algorithm to recompress with while defragmenting, numbered as the kernel's
/// `BTRFS_COMPRESS_*` (fs/btrfs/compression.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
#[repr(u32)]
pub enum Compression {
    /// zlib (`BTRFS_COMPRESS_ZLIB` = 1; also what the kernel picks for type 0).
    Zlib = 1,
    /// LZO (`BTRFS_COMPRESS_LZO` = 2).
    Lzo = 2,
    /// Zstandard (`BTRFS_COMPRESS_ZSTD` = 3).
    Zstd = 3,
}

impl Compression {
    /// The kernel's number for it.
    pub fn kernel_type(self) -> u32 {
        self as u32
    }

    /// Its name as btrfs-progs and mount options spell it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Zlib => "zlib",
            Compression::Lzo => "lzo",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A compression name that is not `zlib`, `lzo` or `zstd`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression {0:?}: use zlib, lzo or zstd")]
pub struct UnknownCompression(pub String);

impl FromStr for Compression {
    type Err = UnknownCompression;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "zlib" => Ok(Compression::Zlib),
            "lzo" => Ok(Compression::Lzo),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(UnknownCompression(s.into())),
        }
    }
}

/// How to defragment. The default: the kernel's 256 KiB threshold, no compression, the whole
/// file, no flush, refuse shared extents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DefragOptions {
    /// Rewrite only extents smaller than this (`None`: [`DEFAULT_EXTENT_THRESHOLD`]). Larger
    /// values rewrite more. At most 4 GiB − 1 (the kernel's field is 32 bits).
    pub extent_threshold: Option<ByteSize>,
    /// Recompress every extent of the range with this algorithm (the threshold is then ignored:
    /// the kernel rewrites all extents).
    pub compression: Option<Compression>,
    /// First file offset to defragment.
    pub start: ByteSize,
    /// How many bytes from `start` (`None`: to the end of the file).
    pub length: Option<ByteSize>,
    /// Start writing the rewritten data out at once (`BTRFS_DEFRAG_RANGE_START_IO`) instead of
    /// leaving it to the next commit; compression implies it.
    pub flush: bool,
    /// Defragment files even when that unshares extents shared with snapshots or reflinks (used
    /// space grows by the unshared bytes).
    pub allow_shared: bool,
}

impl DefragOptions {
    /// Sets the extent-size threshold.
    pub fn extent_threshold(mut self, threshold: ByteSize) -> Self {
        self.extent_threshold = Some(threshold);
        self
    }

    /// Recompresses with `compression`.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// Limits the work to the file offsets `start..start + length`.
    pub fn range(mut self, start: ByteSize, length: ByteSize) -> Self {
        self.start = start;
        self.length = Some(length);
        self
    }

    /// Starts writeback of the rewritten data at once.
    pub fn flush(mut self, flush: bool) -> Self {
        self.flush = flush;
        self
    }

    /// Opts in to unsharing shared extents.
    pub fn allow_shared(mut self, allow: bool) -> Self {
        self.allow_shared = allow;
        self
    }

    /// The threshold in effect.
    pub fn effective_threshold(&self) -> ByteSize {
        match self.extent_threshold {
            Some(ByteSize(0)) | None => DEFAULT_EXTENT_THRESHOLD,
            Some(t) => t,
        }
    }

    /// The end of the range (exclusive), `u64::MAX` for "to the end of the file".
    pub(crate) fn range_end(&self) -> u64 {
        self.length
            .map_or(u64::MAX, |l| self.start.0.saturating_add(l.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_numbers_and_names_match_the_kernel() {
        assert_eq!(Compression::Zlib.kernel_type(), 1);
        assert_eq!(Compression::Lzo.kernel_type(), 2);
        assert_eq!(Compression::Zstd.kernel_type(), 3);
        for c in [Compression::Zlib, Compression::Lzo, Compression::Zstd] {
            assert_eq!(c.to_string().parse::<Compression>(), Ok(c));
        }
        assert_eq!("ZSTD".parse::<Compression>(), Ok(Compression::Zstd));
        assert!("lz4".parse::<Compression>().is_err());
    }

    #[test]
    fn zero_threshold_means_the_kernel_default() {
        let o = DefragOptions::default().extent_threshold(ByteSize(0));
        assert_eq!(o.effective_threshold(), DEFAULT_EXTENT_THRESHOLD);
        assert_eq!(DefragOptions::default().range_end(), u64::MAX);
        assert_eq!(
            DefragOptions::default()
                .range(ByteSize(10), ByteSize(5))
                .range_end(),
            15
        );
    }
}
