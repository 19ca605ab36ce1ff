//! A typed byte count.

use std::fmt;

/// A number of bytes. `Display` prints binary units (`1.50 GiB`); `{:#}` prints plain bytes.
///
/// The one byte-size type of the workspace: btrfs-kit re-exports it as `ByteSize`, lvm-kit as
/// `Bytes`. `FromStr` reads binary units as btrfs-progs does; [`ByteSize::parse_lvm2`] reads
/// lvm2's units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Zero bytes.
    pub const ZERO: ByteSize = ByteSize(0);
    /// One kibibyte (1024 bytes).
    pub const KIB: u64 = 1 << 10;
    /// One mebibyte.
    pub const MIB: u64 = 1 << 20;
    /// One gibibyte.
    pub const GIB: u64 = 1 << 30;

    /// A size of `n` bytes.
    pub const fn new(n: u64) -> Self {
        ByteSize(n)
    }

    /// A size of `n` MiB.
    pub const fn mib(n: u64) -> Self {
        ByteSize(n * Self::MIB)
    }

    /// A size of `n` GiB.
    pub const fn gib(n: u64) -> Self {
        ByteSize(n * Self::GIB)
    }

    /// The byte count.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The byte count (the same as [`bytes`](Self::bytes)).
    pub const fn get(self) -> u64 {
        self.0
    }

    /// This size rounded up to a whole number of `unit`s (an extent size). `unit` 0 leaves it.
    pub fn round_up_to(self, unit: ByteSize) -> ByteSize {
        if unit.0 == 0 {
            return self;
        }
        ByteSize(self.0.div_ceil(unit.0).saturating_mul(unit.0))
    }

    /// How many whole `unit`s fit in this size (`None` if `unit` is 0).
    pub fn whole_units(self, unit: ByteSize) -> Option<u64> {
        self.0.checked_div(unit.0)
    }

    /// The sum, or `None` on overflow.
    pub fn checked_add(self, other: ByteSize) -> Option<ByteSize> {
        self.0.checked_add(other.0).map(ByteSize)
    }

    /// `self - other`, or zero if `other` is larger.
    pub const fn saturating_sub(self, other: ByteSize) -> ByteSize {
        ByteSize(self.0.saturating_sub(other.0))
    }

    /// `self / total` as a fraction in `0.0..=1.0` (0 when `total` is zero).
    pub fn ratio_of(self, total: ByteSize) -> f64 {
        if total.0 == 0 {
            0.0
        } else {
            self.0 as f64 / total.0 as f64
        }
    }
}

impl From<u64> for ByteSize {
    fn from(bytes: u64) -> Self {
        ByteSize(bytes)
    }
}

impl From<ByteSize> for u64 {
    fn from(size: ByteSize) -> Self {
        size.0
    }
}

impl std::ops::Add for ByteSize {
    type Output = ByteSize;
    fn add(self, rhs: ByteSize) -> ByteSize {
        ByteSize(self.0 + rhs.0)
    }
}

impl std::ops::AddAssign for ByteSize {
    fn add_assign(&mut self, rhs: ByteSize) {
        self.0 += rhs.0;
    }
}

impl std::iter::Sum for ByteSize {
    fn sum<I: Iterator<Item = ByteSize>>(iter: I) -> ByteSize {
        ByteSize(iter.map(|b| b.0).sum())
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return write!(f, "{}", self.0);
        }
        const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        if unit == 0 {
            write!(f, "{} B", self.0)
        } else {
            write!(f, "{value:.2} {}", UNITS[unit])
        }
    }
}

/// A size that is not a number with an optional binary unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {0:?}: give bytes, or a number with K, M, G, T, P or E (binary: 1K = 1024), e.g. 256K or 1.5G")]
pub struct InvalidSize(pub String);

impl std::str::FromStr for ByteSize {
    type Err = InvalidSize;

    /// Parses `4096`, `256K`, `32MiB`, `1.5G`, `2E` (units are binary, as btrfs-progs reads them;
    /// case-insensitive; an optional `B`/`iB` after the unit).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidSize(s.into());
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let unit = unit.trim().to_ascii_lowercase();
        let unit = unit
            .strip_suffix("ib")
            .or_else(|| unit.strip_suffix('b'))
            .unwrap_or(&unit);
        let shift = match unit {
            "" => 0,
            "k" => 10,
            "m" => 20,
            "g" => 30,
            "t" => 40,
            "p" => 50,
            "e" => 60,
            _ => return Err(bad()),
        };
        if let Ok(whole) = number.parse::<u64>() {
            return whole.checked_mul(1 << shift).map(ByteSize).ok_or_else(bad);
        }
        let value: f64 = number.parse().map_err(|_| bad())?;
        let bytes = value * (1u64 << shift) as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
            return Err(bad());
        }
        Ok(ByteSize(bytes.round() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::ByteSize;

    #[test]
    fn parses_bytes_and_binary_units() {
        for (text, bytes) in [
            ("4096", 4096),
            ("256K", 256 << 10),
            ("256k", 256 << 10),
            ("32MiB", 32 << 20),
            ("1.5G", 3 << 29),
            ("2 TB", 2 << 40),
            ("2e", 2 << 60),
            ("0", 0),
        ] {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
        for bad in ["", "K", "12Q", "-1", "1e3", "99999999999999999999"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
    }

    #[test]
    fn displays_binary_units_and_plain_bytes() {
        assert_eq!(ByteSize(512).to_string(), "512 B");
        assert_eq!(ByteSize(3 * ByteSize::GIB / 2).to_string(), "1.50 GiB");
        assert_eq!(format!("{:#}", ByteSize(1536)), "1536");
        assert_eq!(ByteSize(5).saturating_sub(ByteSize(9)), ByteSize::ZERO);
        assert_eq!(ByteSize(1).ratio_of(ByteSize(4)), 0.25);
    }

    #[test]
    fn rounds_to_extents() {
        let ext = ByteSize::mib(4);
        assert_eq!(ByteSize::mib(10).round_up_to(ext), ByteSize::mib(12));
        assert_eq!(ByteSize::mib(12).round_up_to(ext), ByteSize::mib(12));
        assert_eq!(ByteSize(1).round_up_to(ext), ByteSize::mib(4));
        assert_eq!(ByteSize::gib(1).to_string(), "1.00 GiB");
        assert_eq!(ByteSize(5).to_string(), "5 B");
        assert_eq!(ByteSize::mib(9).whole_units(ext), Some(2));
        assert_eq!(ByteSize(u64::MAX).checked_add(ByteSize(1)), None);
    }
}
