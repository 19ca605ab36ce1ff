//! Byte sizes: the typed unit for every size in this crate, and the parser for lvm2-style sizes.

use std::fmt;
use std::str::FromStr;

/// A size in bytes.
///
/// Every size the crate reports or accepts is a `Bytes`, never a raw integer, so a count of
/// extents or sectors cannot be mistaken for a byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
#[serde(transparent)]
pub struct Bytes(pub u64);

/// One KiB.
pub const KIB: u64 = 1024;
/// One MiB.
pub const MIB: u64 = KIB * 1024;
/// One GiB.
pub const GIB: u64 = MIB * 1024;

impl Bytes {
    /// A size of `n` bytes.
    pub const fn new(n: u64) -> Self {
        Bytes(n)
    }

    /// A size of `n` MiB.
    pub const fn mib(n: u64) -> Self {
        Bytes(n * MIB)
    }

    /// A size of `n` GiB.
    pub const fn gib(n: u64) -> Self {
        Bytes(n * GIB)
    }

    /// The number of bytes.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// This size rounded up to a whole number of `unit`s (an extent size). `unit` 0 leaves it.
    pub fn round_up_to(self, unit: Bytes) -> Bytes {
        if unit.0 == 0 {
            return self;
        }
        Bytes(self.0.div_ceil(unit.0).saturating_mul(unit.0))
    }

    /// How many whole `unit`s fit in this size (`None` if `unit` is 0).
    pub fn whole_units(self, unit: Bytes) -> Option<u64> {
        self.0.checked_div(unit.0)
    }

    /// The sum, or `None` on overflow.
    pub fn checked_add(self, other: Bytes) -> Option<Bytes> {
        self.0.checked_add(other.0).map(Bytes)
    }
}

impl From<u64> for Bytes {
    fn from(n: u64) -> Self {
        Bytes(n)
    }
}

impl fmt::Display for Bytes {
    /// Bytes as a human size with a binary unit (`10.00 GiB`), or plain bytes below 1 KiB.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        if self.0 < KIB {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / KIB as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.2} {}", UNITS[unit])
    }
}

/// One 512-byte sector: lvm2 counts sizes in sectors and refuses byte sizes that are not a
/// whole number of them.
pub const SECTOR: u64 = 512;

/// Why a size string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {input:?}: {reason}; use a number with an optional lvm2 unit, e.g. 10g, 512m, 4096 or 1.5t")]
pub struct SizeParseError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The multiplier of an lvm2 size unit letter. lvm2 treats upper and lower case alike for
/// input sizes (`-L 1G` = `-L 1g` = 1 GiB); `s` is a 512-byte sector, `b` a byte.
fn unit_multiplier(unit: char) -> Option<u64> {
    let shift = match unit.to_ascii_lowercase() {
        'b' => return Some(1),
        's' => return Some(512),
        'k' => 10,
        'm' => 20,
        'g' => 30,
        't' => 40,
        'p' => 50,
        'e' => 60,
        _ => return None,
    };
    Some(1u64 << shift)
}

/// `10GiB` → `10G`, `10GB` → `10G`: a trailing `iB`/`B` after a unit letter says nothing more.
fn strip_byte_suffix(text: &str) -> &str {
    let is_unit = |t: &str| t.ends_with(|c: char| "kmgtpeKMGTPE".contains(c));
    for suffix in ["iB", "ib", "B", "b"] {
        if let Some(rest) = text.strip_suffix(suffix) {
            if is_unit(rest) {
                return rest;
            }
        }
    }
    text
}

impl FromStr for Bytes {
    type Err = SizeParseError;

    /// Parses `10g`, `512M`, `1.5t`, `2048s` or plain bytes (`4096`), with lvm2's unit letters
    /// (binary multiples; an optional trailing `iB`/`B` as in `10GiB` is accepted too).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| SizeParseError {
            input: s.to_owned(),
            reason,
        };
        let text = s.trim();
        let text = strip_byte_suffix(text);
        let (number, multiplier) = match text.chars().last() {
            None => return Err(err("it is empty")),
            Some(c) if c.is_ascii_digit() => (text, 1),
            Some(c) => (
                &text[..text.len() - c.len_utf8()],
                unit_multiplier(c).ok_or_else(|| err("unknown unit letter"))?,
            ),
        };
        if number.is_empty() {
            return Err(err("there is no number before the unit"));
        }
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty()
            || !whole.chars().all(|c| c.is_ascii_digit())
            || !frac.chars().all(|c| c.is_ascii_digit())
        {
            return Err(err("the number is not a plain decimal"));
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| err("the number is too large"))?
        };
        let mut bytes = whole
            .checked_mul(multiplier)
            .ok_or_else(|| err("the size is too large"))?;
        if !frac.is_empty() {
            // Fraction in exact integer arithmetic: frac_digits * multiplier / 10^len, rounded up.
            let digits = &frac[..frac.len().min(18)];
            let num: u128 = digits.parse().map_err(|_| err("bad fraction"))?;
            let den = 10u128.pow(digits.len() as u32);
            let extra = (num * multiplier as u128).div_ceil(den);
            bytes = bytes
                .checked_add(u64::try_from(extra).map_err(|_| err("the size is too large"))?)
                .ok_or_else(|| err("the size is too large"))?;
        }
        Ok(Bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lvm_units() {
        assert_eq!("10g".parse::<Bytes>().unwrap(), Bytes::gib(10));
        assert_eq!("10G".parse::<Bytes>().unwrap(), Bytes::gib(10));
        assert_eq!("512m".parse::<Bytes>().unwrap(), Bytes::mib(512));
        assert_eq!("4096".parse::<Bytes>().unwrap(), Bytes(4096));
        assert_eq!("4096b".parse::<Bytes>().unwrap(), Bytes(4096));
        assert_eq!("8s".parse::<Bytes>().unwrap(), Bytes(4096));
        assert_eq!("1.5k".parse::<Bytes>().unwrap(), Bytes(1536));
        assert_eq!("2GiB".parse::<Bytes>().unwrap(), Bytes::gib(2));
        assert_eq!("1t".parse::<Bytes>().unwrap(), Bytes(1 << 40));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "g", "10x", "-5m", "1.2.3g", "abc", "99999999999e"] {
            assert!(bad.parse::<Bytes>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn rounds_to_extents() {
        let ext = Bytes::mib(4);
        assert_eq!(Bytes::mib(10).round_up_to(ext), Bytes::mib(12));
        assert_eq!(Bytes::mib(12).round_up_to(ext), Bytes::mib(12));
        assert_eq!(Bytes(1).round_up_to(ext), Bytes::mib(4));
        assert_eq!(Bytes::gib(1).to_string(), "1.00 GiB");
        assert_eq!(Bytes(5).to_string(), "5 B");
    }
}
