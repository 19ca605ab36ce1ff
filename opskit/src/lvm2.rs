//! lvm2's size units as an adapter on [`ByteSize`]: how `lvcreate -L` and `lvextend -L` read a
//! size (a number, at most one unit letter `b s k m g t p e`, no letter meaning MiB, whole
//! 512-byte sectors), with an optional sign for relative sizes.

use crate::ByteSize;

/// One 512-byte sector: lvm2 counts sizes in sectors and refuses byte sizes that are not a
/// whole number of them.
pub const SECTOR: u64 = 512;

/// lvm2 refuses sizes of this many sectors or more ("Size is too big (>=16EiB)").
const SECTOR_LIMIT: u128 = (u64::MAX >> 9) as u128;

/// Why a size string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {input:?}: {reason}; lvm2 sizes are a number with an optional unit b, s, k, m, g, t, p or e (bytes, 512-byte sectors, then powers of 1024; no unit means MiB), e.g. 10g, 512m, 1.5t or 2048s")]
pub struct SizeParseError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The sign in front of a size: `+10g` grows by, `-1g` shrinks by, `10g` is absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// No sign: an absolute size.
    Absolute,
    /// `+`.
    Plus,
    /// `-`.
    Minus,
}

/// The size of one unit in sectors, for the unit letters that scale (`s`, `k` … `e`); `None`
/// (no letter) is lvm2's default unit for `-L`, MiB. Upper and lower case are alike: lvm2
/// lower-cases the letter, and every unit is a power of 1024 (there are no decimal units).
fn unit_sectors(unit: Option<char>) -> Option<u128> {
    let shift = match unit.map(|c| c.to_ascii_lowercase()) {
        None | Some('m') => 10,
        Some('s') => return Some(1),
        Some('k') => 0,
        Some('g') => 20,
        Some('t') => 30,
        Some('p') => 40,
        Some('e') => 50,
        Some(_) => return None,
    };
    Some(2u128 << shift)
}

/// Parses an lvm2 size with its optional sign, the way `lvcreate -L` / `lvextend -L` read it
/// (lvm2's `_size_arg`): a decimal number (`10`, `1.5`, `.5`) and at most one unit letter;
/// the result is truncated to whole sectors as lvm2 truncates it. A `b` size must be a whole
/// multiple of 512 bytes. After a unit letter from `k` to `e`, `B` or `iB` is accepted
/// (`10GiB`). lvm2 (through `strtod`) also takes `0x10`, `1e3` and ignores anything after the
/// unit (`10gfoo`); those are refused here as likely typos.
pub fn parse_signed(input: &str) -> Result<(Sign, ByteSize), SizeParseError> {
    let err = |reason: String| SizeParseError {
        input: input.to_owned(),
        reason,
    };
    let (sign, text) = match input.as_bytes().first() {
        Some(b'+') => (Sign::Plus, &input[1..]),
        Some(b'-') => (Sign::Minus, &input[1..]),
        _ => (Sign::Absolute, input),
    };
    if text.starts_with(['+', '-']) {
        return Err(err("it has more than one sign".into()));
    }
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(number_len);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.contains('.') {
        return Err(err("the number has more than one decimal point".into()));
    }
    if whole.is_empty() && fraction.is_empty() {
        return Err(err(if text.is_empty() {
            "it is empty".into()
        } else {
            "it does not start with a number".into()
        }));
    }
    let mut letters = rest.chars();
    let unit = letters.next();
    let after = letters.as_str();
    if let Some(c) = unit.filter(|c| !"bBsSkKmMgGtTpPeE".contains(*c)) {
        return Err(err(format!("unknown unit {c:?}")));
    }
    let byte_suffix_ok = matches!(unit, Some(c) if "kmgtpeKMGTPE".contains(c))
        && matches!(after, "B" | "b" | "iB" | "ib");
    if !(after.is_empty() || byte_suffix_ok) {
        return Err(err(format!(
            "unexpected {after:?} after the unit {:?}",
            unit.unwrap_or(' ')
        )));
    }
    let too_big = || err("it is too big: lvm2 takes sizes below 16 EiB".into());
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_big())?
    };
    let sectors = if matches!(unit, Some('b' | 'B')) {
        // lvm2 drops a fraction of a byte, then wants whole sectors.
        let rest = whole % u128::from(SECTOR);
        if rest != 0 {
            let lower = whole - rest;
            let upper = lower + u128::from(SECTOR);
            return Err(err(if lower == 0 {
                format!("{whole} bytes is not a multiple of 512 (lvm2 counts 512-byte sectors); try {upper}b")
            } else {
                format!("{whole} bytes is not a multiple of 512 (lvm2 counts 512-byte sectors); try {lower}b or {upper}b")
            }));
        }
        whole / u128::from(SECTOR)
    } else {
        let per_unit = unit_sectors(unit).ok_or_else(|| err("unknown unit".into()))?;
        // Twenty decimals are more than lvm2's double holds; the rest cannot matter.
        let digits = &fraction[..fraction.len().min(20)];
        let fraction_sectors = if digits.is_empty() {
            0
        } else {
            let numerator: u128 = digits.parse().map_err(|_| too_big())?;
            numerator * per_unit / 10u128.pow(digits.len() as u32)
        };
        whole
            .checked_mul(per_unit)
            .and_then(|s| s.checked_add(fraction_sectors))
            .ok_or_else(too_big)?
    };
    if sectors >= SECTOR_LIMIT {
        return Err(too_big());
    }
    let bytes = u64::try_from(sectors * u128::from(SECTOR)).map_err(|_| too_big())?;
    Ok((sign, ByteSize(bytes)))
}

impl ByteSize {
    /// Parses a size as `lvcreate -L` reads it: `100` is 100 MiB (lvm2's default unit), `4096b`
    /// is 4096 bytes, `8s` 8 sectors, `1.5g` 1.5 GiB; `k m g t p e` are powers of 1024 in either
    /// case. Refused like lvm2 refuses them: a negative or zero size, bytes that are not a
    /// multiple of 512 (`1b`), sizes of 16 EiB or more. A fraction is truncated to whole sectors
    /// (`0.3k` is 0, hence refused). A leading `+` is allowed, as lvcreate allows it.
    pub fn parse_lvm2(text: &str) -> Result<ByteSize, SizeParseError> {
        let (sign, size) = parse_signed(text)?;
        let refuse = |reason: &str| SizeParseError {
            input: text.to_owned(),
            reason: reason.to_owned(),
        };
        if sign == Sign::Minus {
            return Err(refuse("a size may not be negative"));
        }
        if size.0 == 0 {
            return Err(refuse("a size may not be zero"));
        }
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ByteSize, SizeParseError> {
        ByteSize::parse_lvm2(text)
    }

    #[test]
    fn parses_lvm_units() {
        // The real-lvm2 comparison is tests/lvm_cli/main.rs (cli::sizes_follow_lvm2_units).
        assert_eq!(parse("10g").unwrap(), ByteSize::gib(10));
        assert_eq!(parse("10G").unwrap(), ByteSize::gib(10));
        assert_eq!(parse("512m").unwrap(), ByteSize::mib(512));
        assert_eq!(parse("100").unwrap(), ByteSize::mib(100), "no unit is MiB");
        assert_eq!(
            parse("4194304").unwrap(),
            ByteSize(1 << 42),
            "4194304 MiB = 4 TiB"
        );
        assert_eq!(parse("4096b").unwrap(), ByteSize(4096));
        assert_eq!(
            parse("4096b").unwrap().bytes(),
            parse("4096b").unwrap().get()
        );
        assert_eq!(parse("4096B").unwrap(), ByteSize(4096));
        assert_eq!(parse("8s").unwrap(), ByteSize(4096));
        assert_eq!(parse("1.5k").unwrap(), ByteSize(1536));
        assert_eq!(
            parse("1.0001k").unwrap(),
            ByteSize(1024),
            "truncated to sectors"
        );
        assert_eq!(parse(".5").unwrap(), ByteSize(1 << 19));
        assert_eq!(parse("2GiB").unwrap(), ByteSize::gib(2));
        assert_eq!(parse("2gb").unwrap(), ByteSize::gib(2));
        assert_eq!(parse("1t").unwrap(), ByteSize(1 << 40));
        assert_eq!(parse("15e").unwrap(), ByteSize(15 << 60));
        assert_eq!(parse("+4m").unwrap(), ByteSize::mib(4));
        assert_eq!(parse("512.7b").unwrap(), ByteSize(512));
    }

    #[test]
    fn rejects_what_lvm2_rejects_and_typos() {
        for bad in [
            "",
            "g",
            "10x",
            "-5m",
            "1.2.3g",
            "abc",
            "16e",
            "99999999999e",
            "1b",
            "511b",
            "0",
            "0m",
            "0.3k",
            ".",
            "++4m",
            "4 m",
            " 4m",
            "1,5",
            "inf",
            "nan",
            "10%FREE",
            // lvm2 accepts these through strtod or by ignoring what follows the unit:
            "0x10",
            "1e3",
            "10gfoo",
            "4m ",
            "4sB",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed as {:?}", parse(bad));
        }
        let e = parse("1b").unwrap_err();
        assert!(e.reason.contains("try 512b"), "{e}");
        let e = parse("1000b").unwrap_err();
        assert!(e.reason.contains("try 512b or 1024b"), "{e}");
        assert!(parse("16e").unwrap_err().reason.contains("too big"));
    }

    #[test]
    fn signs() {
        assert_eq!(
            parse_signed("+1e").unwrap(),
            (Sign::Plus, ByteSize(1 << 60))
        );
        assert_eq!(
            parse_signed("-4m").unwrap(),
            (Sign::Minus, ByteSize::mib(4))
        );
        assert_eq!(
            parse_signed("16p").unwrap(),
            (Sign::Absolute, ByteSize(1 << 54))
        );
    }
}
