//! Parsing balance filters in btrfs-progs' syntax: `usage=0..50,limit=4`, `convert=single,soft`.
//!
//! The rules are in the [balance module documentation](super#filter-strings).

use super::filters::{AddressRange, ChunkFilters, LimitFilter, UsageFilter};
use crate::profile::Profile;
use std::str::FromStr;

/// The error of parsing a filter string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad balance filter {filter:?}: {reason}")]
pub struct FilterParseError {
    /// The offending filter (or the whole list, when the list itself is wrong).
    pub filter: String,
    /// What is wrong with it.
    pub reason: String,
}

fn bad(filter: &str, reason: impl Into<String>) -> FilterParseError {
    FilterParseError {
        filter: filter.into(),
        reason: reason.into(),
    }
}

/// The filter names [`ChunkFilters`]' parser knows, as btrfs-progs spells them.
const FILTER_NAMES: [&str; 9] = [
    "profiles", "usage", "devid", "drange", "vrange", "limit", "stripes", "convert", "soft",
];

/// A plain decimal number of type `T`: ASCII digits only.
fn number<T: FromStr>(filter: &str, text: &str) -> Result<T, FilterParseError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            filter,
            format!("{text:?} is not a plain decimal number"),
        ));
    }
    text.parse::<T>()
        .map_err(|_| bad(filter, format!("{text} is too large")))
}

/// A range `A..B`, `A..` or `..B`, open ends filled with `lo` / `hi`; `None` when `text` is
/// not a range (has no `..`). A bare `..` is refused.
fn range<T: FromStr + Copy>(
    filter: &str,
    text: &str,
    lo: T,
    hi: T,
) -> Result<Option<(T, T)>, FilterParseError> {
    let Some((a, b)) = text.split_once("..") else {
        return Ok(None);
    };
    if a.is_empty() && b.is_empty() {
        return Err(bad(
            filter,
            "a bare `..` bounds nothing; give at least one end, e.g. `..50` or `10..`",
        ));
    }
    let min = if a.is_empty() { lo } else { number(filter, a)? };
    let max = if b.is_empty() { hi } else { number(filter, b)? };
    Ok(Some((min, max)))
}

/// A range that must be one (`stripes`, `drange`, `vrange`).
fn only_range<T: FromStr + Copy>(
    filter: &str,
    name: &str,
    text: &str,
    lo: T,
    hi: T,
) -> Result<(T, T), FilterParseError> {
    range(filter, text, lo, hi)?.ok_or_else(|| {
        bad(
            filter,
            format!("{name} takes a range, not a single value: write {name}={text}..{text} for exactly {text}, or {name}={text}.. / {name}=..{text}"),
        )
    })
}

/// A byte range for `drange` / `vrange`: half-open, so it must not be empty.
fn address_range(filter: &str, name: &str, text: &str) -> Result<AddressRange, FilterParseError> {
    let (start, end) = only_range::<u64>(filter, name, text, 0, u64::MAX)?;
    if start >= end {
        return Err(bad(
            filter,
            format!("{name}={start}..{end} is empty: the range is half-open, its end must exceed its start"),
        ));
    }
    Ok(AddressRange { start, end })
}

/// `profiles=a|b`: empty alternatives skipped, at least one profile named. A set: returned in
/// the order of [`Profile::ALL`], each once (the kernel's mask has no order).
fn profile_list(filter: &str, text: &str) -> Result<Vec<Profile>, FilterParseError> {
    let mut profiles = text
        .split('|')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<Profile>().map_err(|e| bad(filter, e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    if profiles.is_empty() {
        return Err(bad(filter, "names no profile"));
    }
    profiles.sort_unstable();
    profiles.dedup();
    Ok(profiles)
}

/// The list without the whitespace allowed around it; refuses whitespace inside it, and a list
/// that has no filter in it.
fn list_body(s: &str) -> Result<&str, FilterParseError> {
    let body = s.trim_matches(|c: char| c.is_ascii_whitespace());
    if let Some(c) = body.chars().find(|c| c.is_whitespace()) {
        return Err(bad(
            s,
            format!("whitespace ({c:?}) inside a filter list: write it without spaces, e.g. usage=5,limit=2"),
        ));
    }
    if body.split(',').all(str::is_empty) {
        return Err(bad(
            s,
            "names no filter; for every chunk of the kind give an empty filter list (`-d` alone)",
        ));
    }
    Ok(body)
}

impl FromStr for ChunkFilters {
    type Err = FilterParseError;

    /// Parses a comma-separated filter list as `btrfs balance start -d...` takes it, with the
    /// rules in the [balance module documentation](crate::balance#filter-strings). The empty
    /// string means no filter.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Ok(ChunkFilters::default());
        }
        let mut profiles = None;
        let (mut usage, mut devid, mut drange, mut vrange) = (None, None, None, None);
        let (mut limit, mut stripes, mut convert, mut soft) = (None, None, None, None);
        for part in list_body(s)?.split(',').filter(|p| !p.is_empty()) {
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (part, None),
            };
            let need = || {
                value
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| bad(part, format!("{name} needs a value, e.g. {name}=5")))
            };
            // Each filter once: a second one is refused where btrfs-progs keeps the last.
            fn once<T>(slot: &mut Option<T>, part: &str, value: T) -> Result<(), FilterParseError> {
                if slot.replace(value).is_some() {
                    let name = part.split('=').next().unwrap_or(part);
                    return Err(bad(part, format!("{name} is given twice")));
                }
                Ok(())
            }
            match name {
                "profiles" => once(&mut profiles, part, profile_list(part, need()?)?)?,
                "usage" => {
                    let v = need()?;
                    let filter = match range::<u8>(part, v, 0, 100)? {
                        Some((min, max)) => UsageFilter::Range { min, max },
                        None => UsageFilter::Below(number(part, v)?),
                    };
                    once(&mut usage, part, filter)?;
                }
                "devid" => {
                    let id: u64 = number(part, need()?)?;
                    if id == 0 {
                        return Err(bad(part, "device ids start at 1"));
                    }
                    once(&mut devid, part, id)?;
                }
                "drange" => once(&mut drange, part, address_range(part, name, need()?)?)?,
                "vrange" => once(&mut vrange, part, address_range(part, name, need()?)?)?,
                "limit" => {
                    let v = need()?;
                    let filter = match range::<u32>(part, v, 0, u32::MAX)? {
                        Some((min, max)) => LimitFilter::Range { min, max },
                        None => LimitFilter::AtMost(number(part, v)?),
                    };
                    once(&mut limit, part, filter)?;
                }
                "stripes" => {
                    let r = only_range::<u32>(part, name, need()?, 0, u32::MAX)?;
                    once(&mut stripes, part, r)?;
                }
                "convert" => {
                    let p = need()?
                        .parse::<Profile>()
                        .map_err(|e| bad(part, e.to_string()))?;
                    once(&mut convert, part, p)?;
                }
                "soft" => {
                    if value.is_some() {
                        return Err(bad(part, "soft takes no value"));
                    }
                    once(&mut soft, part, ())?;
                }
                other => {
                    return Err(bad(
                        part,
                        format!(
                            "unknown filter {other:?}; known: {}",
                            FILTER_NAMES.join(", ")
                        ),
                    ))
                }
            }
        }
        // Every field named (no `..`): a new filter cannot be forgotten here.
        Ok(ChunkFilters {
            profiles: profiles.unwrap_or_default(),
            usage,
            devid,
            drange,
            vrange,
            limit,
            stripes,
            convert,
            soft: soft.is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_btrfs_progs_filter_strings() {
        let f: ChunkFilters = "usage=0..50,limit=4".parse().unwrap();
        assert_eq!(f.usage, Some(UsageFilter::Range { min: 0, max: 50 }));
        assert_eq!(f.limit, Some(LimitFilter::AtMost(4)));
        let f: ChunkFilters = "convert=single,soft".parse().unwrap();
        assert_eq!((f.convert, f.soft), (Some(Profile::Single), true));
        let f: ChunkFilters =
            "usage=..30,limit=2..,stripes=1..4,profiles=raid1|dup,devid=2,drange=0..1024"
                .parse()
                .unwrap();
        assert_eq!(f.usage, Some(UsageFilter::Range { min: 0, max: 30 }));
        assert_eq!(
            f.limit,
            Some(LimitFilter::Range {
                min: 2,
                max: u32::MAX
            })
        );
        assert_eq!(f.stripes, Some((1, 4)));
        assert_eq!(f.profiles, vec![Profile::Dup, Profile::Raid1]);
        assert_eq!(
            f.drange,
            Some(AddressRange {
                start: 0,
                end: 1024
            })
        );
        assert_eq!("".parse::<ChunkFilters>().unwrap(), ChunkFilters::default());
    }

    /// What a filter string must give.
    #[derive(Debug)]
    enum Verdict {
        /// Accepted as this (in `Display` form).
        Same(&'static str),
        /// Refused at parse time; the reason contains this.
        Refused(&'static str),
        /// Parsed, then refused by `validate` (when the balance starts); its reason contains
        /// this.
        Invalid(&'static str),
    }
    use Verdict::{Invalid, Refused, Same};

    /// Every case of issue 15 item 10, plus the ones found reading btrfs-progs' parser
    /// (cmds/balance.c `parse_filters`, common/parse-utils.c `parse_range*`), each with its
    /// verdict and why. "progs" is btrfs-progs 6.2.
    const TABLE: &[(&str, Verdict, &str)] = &[
        // The whole list.
        ("", Same(""), "explicit `-d`: every chunk of the kind (as progs)"),
        (" ", Refused("names no filter"), "a blank list would be a full balance (progs: unrecognized option)"),
        ("  ,  ", Refused("names no filter"), "blank items would be a full balance (progs: unrecognized option)"),
        (",", Refused("names no filter"), "progs reads no filter and balances everything: a typo must not widen"),
        (",,", Refused("names no filter"), "as `,`"),
        (" usage=5 ", Same("usage=5"), "whitespace around the whole list is dropped (progs refuses the trailing space): harmless"),
        ("\tusage=5\n", Same("usage=5"), "ASCII whitespace around the list, e.g. from a config line"),
        ("usage=5,", Same("usage=5"), "trailing comma, as progs"),
        (",usage=5", Same("usage=5"), "leading comma, as progs"),
        ("usage=5,,limit=2", Same("usage=5,limit=2"), "empty item between filters, as progs"),
        ("usage=5, limit=2", Refused("whitespace"), "space after a comma (progs: unrecognized option \" limit\")"),
        ("usage=5 ,limit=2", Refused("whitespace"), "space before a comma (progs: invalid usage)"),
        // Whitespace inside values: one rule, whatever progs' strtoull does.
        ("usage=5 ,", Refused("whitespace"), "space inside the list"),
        ("usage= 5", Refused("whitespace"), "progs accepts (strtoull skips it); refused by the one whitespace rule"),
        ("usage=\u{a0}5", Refused("whitespace"), "no-break space (U+00A0) is whitespace too"),
        ("usage=5\u{a0}", Refused("whitespace"), "a no-break space is not ASCII whitespace: not trimmed"),
        ("limit= 1", Refused("whitespace"), "as usage= 5"),
        ("devid= 1", Refused("whitespace"), "as usage= 5"),
        ("usage =5", Refused("whitespace"), "space before `=`"),
        // Numbers.
        ("usage=+5", Refused("plain decimal"), "progs' strtoull takes a sign; numbers are digits only"),
        ("usage=-5", Refused("plain decimal"), "negative (progs: huge, then refused)"),
        ("usage=0x10", Refused("plain decimal"), "hex (progs: invalid)"),
        ("usage=5.5", Refused("plain decimal"), "fraction (progs: invalid)"),
        ("usage=05", Same("usage=5"), "leading zero, as progs"),
        ("usage=abc", Refused("plain decimal"), "not a number"),
        ("usage=256", Refused("too large"), "does not fit a percentage"),
        ("limit=x", Refused("plain decimal"), "not a number"),
        // usage.
        ("usage=0", Same("usage=0"), "only empty chunks"),
        ("usage=100", Same("usage=100"), "every chunk not full"),
        ("usage=101", Invalid("above 100"), "progs refuses too"),
        ("usage=0..50", Same("usage=0..50"), "a range (one kernel flag, where progs sets both)"),
        ("usage=..50", Same("usage=0..50"), "open start is 0"),
        ("usage=50..", Same("usage=50..100"), "open end is 100"),
        ("usage=5..5", Same("usage=5..5"), "empty range, selects nothing: harmless, progs accepts"),
        ("usage=60..50", Invalid("not a range"), "reversed (progs: doesn't make sense)"),
        ("usage=0..101", Invalid("not a range"), "progs prints an error, still runs, then EINVAL"),
        ("usage=..", Refused("bare"), "would mean every chunk (progs refuses)"),
        ("usage=5...10", Refused("plain decimal"), "three dots (progs: invalid)"),
        ("usage=5..10..20", Refused("plain decimal"), "two ranges (progs: invalid)"),
        ("usage=", Refused("needs a value"), "as progs"),
        ("usage", Refused("needs a value"), "as progs"),
        ("usage=5=6", Refused("plain decimal"), "as progs"),
        ("usage=5,usage=10", Refused("twice"), "progs keeps the last silently"),
        // limit.
        ("limit=4", Same("limit=4"), "at most 4 chunks"),
        ("limit=0", Same("limit=0"), "no chunk: harmless, progs accepts"),
        ("limit=5000000000", Same("limit=5000000000"), "the single limit is 64 bits"),
        ("limit=1..3", Same("limit=1..3"), "a range"),
        ("limit=..3", Same("limit=0..3"), "open start"),
        ("limit=2..", Same("limit=2..4294967295"), "open end is the largest u32"),
        ("limit=3..1", Invalid("exceeds"), "reversed (progs refuses)"),
        ("limit=..", Refused("bare"), "would mean no limit (progs refuses)"),
        ("limit=1..5000000000", Refused("too large"), "range ends are 32 bits (progs refuses)"),
        // devid.
        ("devid=1", Same("devid=1"), "device 1"),
        ("devid=0", Refused("start at 1"), "no device 0 (progs refuses)"),
        ("devid=1..2", Refused("plain decimal"), "one device only (progs: invalid)"),
        // drange / vrange: half-open byte ranges.
        ("devid=1,drange=0..1024", Same("devid=1,drange=0..1024"), "a range on device 1"),
        ("devid=1,drange=5..", Same("devid=1,drange=5..18446744073709551615"), "open end"),
        ("devid=1,drange=..5", Same("devid=1,drange=0..5"), "open start"),
        ("devid=1,drange=5..5", Refused("empty"), "empty half-open range (progs refuses)"),
        ("devid=1,drange=9..5", Refused("empty"), "reversed (progs refuses)"),
        ("devid=1,drange=..", Refused("bare"), "would mean the whole device (progs refuses)"),
        ("devid=1,drange=5", Refused("takes a range"), "single value (progs refuses)"),
        ("drange=0..10", Invalid("needs 'devid'"), "the range is on one device (progs refuses)"),
        ("vrange=0..4096", Same("vrange=0..4096"), "a logical range"),
        ("vrange=5", Refused("takes a range"), "single value (progs refuses)"),
        ("vrange=5..5", Refused("empty"), "empty (progs refuses)"),
        ("vrange=..", Refused("bare"), "would mean everything (progs refuses)"),
        // stripes.
        ("stripes=1..4", Same("stripes=1..4"), "a range"),
        ("stripes=2..", Same("stripes=2..4294967295"), "open end"),
        ("stripes=..2", Same("stripes=0..2"), "open start"),
        ("stripes=0..0", Same("stripes=0..0"), "selects nothing: harmless, progs accepts"),
        ("stripes=1", Refused("stripes=1..1"), "progs refuses a single value; the error says how to write it"),
        ("stripes=..", Refused("bare"), "progs refuses"),
        ("stripes=4..1", Invalid("exceeds"), "reversed (progs refuses)"),
        // profiles.
        ("profiles=raid1", Same("profiles=raid1"), "one profile"),
        ("profiles=raid1|dup", Same("profiles=dup|raid1"), "two: a set, shown in progs' profile order"),
        ("profiles=raid1|", Same("profiles=raid1"), "progs accepts (strtok skips the empty name): harmless"),
        ("profiles=|raid1", Same("profiles=raid1"), "as above"),
        ("profiles=raid1||dup", Same("profiles=dup|raid1"), "as above"),
        ("profiles=raid1|raid1", Same("profiles=raid1"), "a set: once"),
        ("profiles=RAID1", Same("profiles=raid1"), "case-insensitive, as progs"),
        ("profiles=single", Same("profiles=single"), "single has its own filter bit"),
        ("profiles=|", Refused("names no profile"), "progs sends an empty mask (selects nothing); refused as meaningless"),
        ("profiles=", Refused("needs a value"), "as progs"),
        ("profiles=raid7", Refused("unknown profile"), "as progs"),
        ("profiles=raid1,profiles=dup", Refused("twice"), "progs merges them silently"),
        // convert / soft.
        ("convert=raid1", Same("convert=raid1"), "convert"),
        ("convert=DUP,soft", Same("convert=dup,soft"), "case-insensitive, soft"),
        ("convert=raid1|dup", Refused("unknown profile"), "one target (progs: invalid)"),
        ("convert=", Refused("needs a value"), "as progs"),
        ("soft", Invalid("only together with 'convert'"), "as progs"),
        ("soft=1", Refused("no value"), "progs ignores the value (`soft=0` would still be soft)"),
        ("convert=single,soft,soft", Refused("twice"), "given twice"),
        // Names.
        ("bogus=1", Refused("unknown filter"), "as progs"),
        ("USAGE=5", Refused("unknown filter"), "names are case-sensitive, as progs"),
    ];

    #[test]
    fn every_filter_string_gets_its_decided_verdict() {
        for (text, verdict, why) in TABLE {
            let parsed = text.parse::<ChunkFilters>();
            match (verdict, &parsed) {
                (Same(shown), Ok(f)) => {
                    assert_eq!(&f.to_string(), shown, "{text:?} ({why})");
                    assert_eq!(f.validate(), Ok(()), "{text:?} ({why})");
                    // What is accepted is what the kernel is handed, and parses back to itself.
                    assert_eq!(ChunkFilters::from_sys(&f.to_sys()), *f, "{text:?}");
                    assert_eq!(shown.parse::<ChunkFilters>().as_ref(), Ok(f), "{text:?}");
                }
                (Refused(needle), Err(e)) => {
                    assert!(e.reason.contains(needle), "{text:?} ({why}): {e}");
                }
                (Invalid(needle), Ok(f)) => match f.validate() {
                    Err(reason) => assert!(reason.contains(needle), "{text:?} ({why}): {reason}"),
                    Ok(()) => panic!("{text:?} ({why}): validates, expected {needle:?}"),
                },
                _ => panic!("{text:?} ({why}): expected {verdict:?}, got {parsed:?}"),
            }
        }
    }

    #[test]
    fn no_refused_typo_is_a_full_balance() {
        // The widening cases: each blank or bare list must never parse as "no filter".
        for text in [" ", "  ,  ", ",", "\t", "usage=..", "limit=.."] {
            assert!(
                text.parse::<ChunkFilters>().is_err(),
                "{text:?} must be refused"
            );
        }
    }

    #[test]
    fn round_trips_through_display() {
        for text in [
            "usage=5",
            "usage=10..60,limit=1..3",
            "profiles=single|raid1,convert=dup,soft",
            "devid=1,drange=5..9,vrange=1..2,stripes=1..2",
        ] {
            let f: ChunkFilters = text.parse().unwrap();
            assert_eq!(f.to_string(), text);
            assert_eq!(ChunkFilters::from_sys(&f.to_sys()), f, "{text}");
        }
    }

    #[test]
    fn every_filter_round_trips_and_is_known_by_name() {
        // Every field set (no `..`): a new filter must be added here, and then to the parser,
        // Display and the kernel encoding, or this test fails.
        let all = ChunkFilters {
            // In the kernel's bit order, which from_sys gives back.
            profiles: vec![Profile::Dup, Profile::Raid1],
            usage: Some(UsageFilter::Range { min: 5, max: 50 }),
            devid: Some(2),
            drange: Some(AddressRange { start: 1, end: 9 }),
            vrange: Some(AddressRange { start: 3, end: 7 }),
            limit: Some(LimitFilter::Range { min: 1, max: 4 }),
            stripes: Some((1, 3)),
            convert: Some(Profile::Raid10),
            soft: true,
        };
        assert_eq!(all.validate(), Ok(()));
        let text = all.to_string();
        assert_eq!(text.parse::<ChunkFilters>(), Ok(all.clone()), "{text}");
        assert_eq!(ChunkFilters::from_sys(&all.to_sys()), all);
        let names: Vec<&str> = text
            .split(',')
            .map(|part| part.split('=').next().unwrap_or(part))
            .collect();
        assert_eq!(names, FILTER_NAMES, "{text}");
    }

    #[test]
    fn sets_exactly_one_usage_and_limit_flag() {
        use btrfs_sys as sys;
        let range = "usage=10..50,limit=1..2"
            .parse::<ChunkFilters>()
            .unwrap()
            .to_sys();
        let flags = range.flags;
        assert_ne!(flags & sys::BTRFS_BALANCE_ARGS_USAGE_RANGE as u64, 0);
        assert_eq!(flags & sys::BTRFS_BALANCE_ARGS_USAGE as u64, 0);
        assert_ne!(flags & sys::BTRFS_BALANCE_ARGS_LIMIT_RANGE as u64, 0);
        assert_eq!(flags & sys::BTRFS_BALANCE_ARGS_LIMIT as u64, 0);
        let single = "usage=10,limit=3".parse::<ChunkFilters>().unwrap().to_sys();
        let flags = single.flags;
        assert_eq!(flags & sys::BTRFS_BALANCE_ARGS_USAGE_RANGE as u64, 0);
        assert_ne!(flags & sys::BTRFS_BALANCE_ARGS_USAGE as u64, 0);
    }
}
