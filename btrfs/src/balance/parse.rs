//! Parsing balance filters in btrfs-progs' syntax: `usage=0..50,limit=4`, `convert=single,soft`.

use super::filters::{AddressRange, ChunkFilters, LimitFilter, UsageFilter};
use crate::profile::Profile;
use std::str::FromStr;

/// The error of parsing a filter string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad balance filter {filter:?}: {reason}")]
pub struct FilterParseError {
    /// The offending filter.
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

/// Parses `N`, `A..B`, `A..` or `..B` into (min, max), filling open ends with `lo`/`hi`.
/// A single number gives `(N, N)`.
fn range<T: FromStr + Copy>(
    filter: &str,
    text: &str,
    lo: T,
    hi: T,
) -> Result<(T, T, bool), FilterParseError> {
    let num = |s: &str| {
        s.trim()
            .parse::<T>()
            .map_err(|_| bad(filter, format!("{s:?} is not a valid number")))
    };
    match text.split_once("..") {
        None => {
            let n = num(text)?;
            Ok((n, n, false))
        }
        Some((a, b)) => {
            let min = if a.is_empty() { lo } else { num(a)? };
            let max = if b.is_empty() { hi } else { num(b)? };
            Ok((min, max, true))
        }
    }
}

/// The filter names [`ChunkFilters`]' parser knows, as btrfs-progs spells them.
const FILTER_NAMES: [&str; 9] = [
    "profiles", "usage", "devid", "drange", "vrange", "limit", "stripes", "convert", "soft",
];

impl FromStr for ChunkFilters {
    type Err = FilterParseError;

    /// Parses a comma-separated filter list as `btrfs balance start -d...` takes it. The empty
    /// string means no filter. Semantic checks (soft without convert...) are
    /// [`ChunkFilters::validate`]'s job, run when the balance starts.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut profiles = Vec::new();
        let (mut usage, mut devid, mut drange, mut vrange) = (None, None, None, None);
        let (mut limit, mut stripes, mut convert, mut soft) = (None, None, None, false);
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (part, None),
            };
            let need = || {
                value
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| bad(part, "needs a value"))
            };
            match name {
                "profiles" => {
                    profiles = need()?
                        .split('|')
                        .map(|p| p.parse::<Profile>().map_err(|e| bad(part, e.to_string())))
                        .collect::<Result<_, _>>()?;
                }
                "usage" => {
                    let (min, max, is_range) = range::<u8>(part, need()?, 0, 100)?;
                    usage = Some(if is_range {
                        UsageFilter::Range { min, max }
                    } else {
                        UsageFilter::Below(min)
                    });
                }
                "devid" => {
                    let v = need()?;
                    devid = Some(
                        v.parse()
                            .map_err(|_| bad(part, "devid must be a device id number"))?,
                    );
                }
                "drange" | "vrange" => {
                    let (start, end, _) = range::<u64>(part, need()?, 0, u64::MAX)?;
                    let r = Some(AddressRange { start, end });
                    if name == "drange" {
                        drange = r;
                    } else {
                        vrange = r;
                    }
                }
                "limit" => {
                    let v = need()?;
                    limit = Some(if v.contains("..") {
                        let (min, max, _) = range::<u32>(part, v, 0, u32::MAX)?;
                        LimitFilter::Range { min, max }
                    } else {
                        LimitFilter::AtMost(
                            v.parse().map_err(|_| bad(part, "limit must be a number"))?,
                        )
                    });
                }
                "stripes" => {
                    let (min, max, _) = range::<u32>(part, need()?, 0, u32::MAX)?;
                    stripes = Some((min, max));
                }
                "convert" => {
                    convert = Some(
                        need()?
                            .parse::<Profile>()
                            .map_err(|e| bad(part, e.to_string()))?,
                    );
                }
                "soft" => {
                    if value.is_some() {
                        return Err(bad(part, "soft takes no value"));
                    }
                    soft = true;
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
            profiles,
            usage,
            devid,
            drange,
            vrange,
            limit,
            stripes,
            convert,
            soft,
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
        assert_eq!(f.profiles, vec![Profile::Raid1, Profile::Dup]);
        assert_eq!(
            f.drange,
            Some(AddressRange {
                start: 0,
                end: 1024
            })
        );
        assert_eq!("".parse::<ChunkFilters>().unwrap(), ChunkFilters::default());
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
    fn rejects_bad_filters() {
        for text in [
            "usage=abc",
            "bogus=1",
            "convert=raid7",
            "soft=1",
            "usage=",
            "limit=x",
        ] {
            assert!(text.parse::<ChunkFilters>().is_err(), "{text}");
        }
        assert!("soft".parse::<ChunkFilters>().unwrap().validate().is_err());
        assert!("drange=0..10"
            .parse::<ChunkFilters>()
            .unwrap()
            .validate()
            .is_err());
        assert!("usage=101"
            .parse::<ChunkFilters>()
            .unwrap()
            .validate()
            .is_err());
        assert!("usage=60..50"
            .parse::<ChunkFilters>()
            .unwrap()
            .validate()
            .is_err());
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
