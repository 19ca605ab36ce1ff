//! Per-kind balance filters, their checks, and their encoding into `struct btrfs_balance_args`.
//!
//! Adding a filter: add its field to [`ChunkFilters`]; every function that reads or builds the
//! filters names each field (no `..`), so the compiler then lists each place to handle it:
//! `validate`, `to_sys`, `from_sys` and `Display` here, `FromStr` in `parse.rs` (plus its name
//! in `FILTER_NAMES`, which the all-filters test there checks), and `selects` in
//! `candidates.rs`.

use crate::profile::Profile;
use btrfs_sys as sys;
use std::fmt;

/// Which chunks `usage` selects, by how full they are (percent of the chunk's size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum UsageFilter {
    /// `usage=N`: chunks less than N % full (`usage=0`: only empty chunks).
    Below(u8),
    /// `usage=MIN..MAX`: chunks at least MIN % and less than MAX % full (the kernel reads a MAX
    /// of 0 as "empty chunks only").
    Range {
        /// Lower bound, inclusive.
        min: u8,
        /// Upper bound, exclusive.
        max: u8,
    },
}

/// How many chunks `limit` lets the balance process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum LimitFilter {
    /// `limit=N`: at most N chunks.
    AtMost(u64),
    /// `limit=MIN..MAX`: at least MIN and at most MAX chunks.
    Range {
        /// Lower bound.
        min: u32,
        /// Upper bound.
        max: u32,
    },
}

/// A half-open range of byte addresses for `drange`/`vrange` (`start..end`): the kernel
/// selects chunks (or, for `drange`, stripes on `devid`) overlapping `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AddressRange {
    /// First byte.
    pub start: u64,
    /// First byte past the range; must exceed `start`.
    pub end: u64,
}

/// The filters of one chunk kind (`-d`, `-m` or `-s` in btrfs-progs). An empty set selects every
/// chunk of the kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ChunkFilters {
    /// `profiles=a|b`: only chunks with one of these profiles.
    pub profiles: Vec<Profile>,
    /// `usage=`: only chunks this full.
    pub usage: Option<UsageFilter>,
    /// `devid=N`: only chunks with a stripe on this device.
    pub devid: Option<u64>,
    /// `drange=a..b`: only chunks whose stripes on `devid` overlap this physical range.
    pub drange: Option<AddressRange>,
    /// `vrange=a..b`: only chunks overlapping this logical range.
    pub vrange: Option<AddressRange>,
    /// `limit=`: how many chunks to process.
    pub limit: Option<LimitFilter>,
    /// `stripes=a..b`: only chunks with this many stripes.
    pub stripes: Option<(u32, u32)>,
    /// `convert=P`: rewrite the chunks with profile P.
    pub convert: Option<Profile>,
    /// `soft`: with `convert`, skip chunks that already have the target profile.
    pub soft: bool,
}

impl ChunkFilters {
    /// No filter: every chunk of the kind.
    pub fn all() -> Self {
        Self::default()
    }

    /// `usage=percent`: chunks less than `percent` % full.
    pub fn usage_below(percent: u8) -> Self {
        ChunkFilters {
            usage: Some(UsageFilter::Below(percent)),
            ..Self::default()
        }
    }

    /// `convert=profile`, optionally `soft`.
    pub fn convert(profile: Profile, soft: bool) -> Self {
        ChunkFilters {
            convert: Some(profile),
            soft,
            ..Self::default()
        }
    }

    /// Whether no filter is set (the kind is balanced whole).
    pub fn is_unfiltered(&self) -> bool {
        *self == Self::default()
    }

    /// The checks btrfs-progs makes before calling the kernel. `Err` holds the reason.
    pub fn validate(&self) -> Result<(), String> {
        // Every filter is named, so a new one cannot be left unchecked by oversight.
        let ChunkFilters {
            profiles: _,
            usage,
            devid,
            drange,
            vrange,
            limit,
            stripes,
            convert,
            soft,
        } = self;
        if *soft && convert.is_none() {
            return Err("'soft' can be used only together with 'convert'".into());
        }
        if drange.is_some() && devid.is_none() {
            return Err("'drange' needs 'devid' (the device the physical range is on)".into());
        }
        if *devid == Some(0) {
            return Err("devid=0: device ids start at 1".into());
        }
        match *usage {
            Some(UsageFilter::Below(n)) if n > 100 => {
                return Err(format!("usage={n} is above 100 %"));
            }
            Some(UsageFilter::Range { min, max }) if min > max || max > 100 => {
                return Err(format!("usage={min}..{max} is not a range within 0..100"));
            }
            _ => {}
        }
        if let Some(LimitFilter::Range { min, max }) = *limit {
            if min > max {
                return Err(format!(
                    "limit={min}..{max}: the minimum exceeds the maximum"
                ));
            }
        }
        if let Some((min, max)) = *stripes {
            if min > max {
                return Err(format!(
                    "stripes={min}..{max}: the minimum exceeds the maximum"
                ));
            }
        }
        for (name, range) in [("drange", drange), ("vrange", vrange)] {
            if let Some(r) = range {
                if r.start >= r.end {
                    return Err(format!(
                        "{name}={}..{} is empty: the range is half-open, its end must exceed its start",
                        r.start, r.end
                    ));
                }
            }
        }
        Ok(())
    }

    /// Encodes the filters; exactly one of USAGE / USAGE_RANGE and of LIMIT / LIMIT_RANGE is set.
    pub(crate) fn to_sys(&self) -> sys::btrfs_balance_args {
        let ChunkFilters {
            profiles,
            usage,
            devid,
            drange,
            vrange,
            limit,
            stripes,
            convert,
            soft,
        } = self;
        let mut a = sys::btrfs_balance_args::default();
        let mut flags = 0u64;
        if !profiles.is_empty() {
            flags |= sys::BTRFS_BALANCE_ARGS_PROFILES as u64;
            a.profiles = profiles.iter().fold(0, |m, p| m | p.balance_bit());
        }
        match *usage {
            Some(UsageFilter::Below(n)) => {
                flags |= sys::BTRFS_BALANCE_ARGS_USAGE as u64;
                a.__bindgen_anon_1.usage = n.into();
            }
            Some(UsageFilter::Range { min, max }) => {
                flags |= sys::BTRFS_BALANCE_ARGS_USAGE_RANGE as u64;
                a.__bindgen_anon_1.__bindgen_anon_1 =
                    sys::btrfs_balance_args__bindgen_ty_1__bindgen_ty_1 {
                        usage_min: min.into(),
                        usage_max: max.into(),
                    };
            }
            None => {}
        }
        if let Some(devid) = *devid {
            flags |= sys::BTRFS_BALANCE_ARGS_DEVID as u64;
            a.devid = devid;
        }
        if let Some(r) = drange {
            flags |= sys::BTRFS_BALANCE_ARGS_DRANGE as u64;
            a.pstart = r.start;
            a.pend = r.end;
        }
        if let Some(r) = vrange {
            flags |= sys::BTRFS_BALANCE_ARGS_VRANGE as u64;
            a.vstart = r.start;
            a.vend = r.end;
        }
        match *limit {
            Some(LimitFilter::AtMost(n)) => {
                flags |= sys::BTRFS_BALANCE_ARGS_LIMIT as u64;
                a.__bindgen_anon_2.limit = n;
            }
            Some(LimitFilter::Range { min, max }) => {
                flags |= sys::BTRFS_BALANCE_ARGS_LIMIT_RANGE as u64;
                a.__bindgen_anon_2.__bindgen_anon_1 =
                    sys::btrfs_balance_args__bindgen_ty_2__bindgen_ty_1 {
                        limit_min: min,
                        limit_max: max,
                    };
            }
            None => {}
        }
        if let Some((min, max)) = *stripes {
            flags |= sys::BTRFS_BALANCE_ARGS_STRIPES_RANGE as u64;
            a.stripes_min = min;
            a.stripes_max = max;
        }
        if let Some(target) = convert {
            flags |= sys::BTRFS_BALANCE_ARGS_CONVERT as u64;
            a.target = target.balance_bit();
        }
        if *soft {
            flags |= sys::BTRFS_BALANCE_ARGS_SOFT as u64;
        }
        a.flags = flags;
        a
    }

    /// Decodes filters the kernel reports (e.g. in BALANCE_PROGRESS). Fields are copied out of
    /// the packed struct, never borrowed.
    pub(crate) fn from_sys(a: &sys::btrfs_balance_args) -> Self {
        let flags = a.flags;
        let has = |bit: u32| flags & bit as u64 != 0;
        let (usage_word, limit_word) = crate::ioctl::balance_args_unions(a);
        ChunkFilters {
            profiles: if has(sys::BTRFS_BALANCE_ARGS_PROFILES) {
                Profile::from_balance_mask(a.profiles)
            } else {
                Vec::new()
            },
            usage: if has(sys::BTRFS_BALANCE_ARGS_USAGE_RANGE) {
                let (min, max) = split_word(usage_word);
                Some(UsageFilter::Range {
                    min: min.min(255) as u8,
                    max: max.min(255) as u8,
                })
            } else if has(sys::BTRFS_BALANCE_ARGS_USAGE) {
                Some(UsageFilter::Below(usage_word.min(255) as u8))
            } else {
                None
            },
            devid: has(sys::BTRFS_BALANCE_ARGS_DEVID).then_some(a.devid),
            drange: has(sys::BTRFS_BALANCE_ARGS_DRANGE).then_some(AddressRange {
                start: a.pstart,
                end: a.pend,
            }),
            vrange: has(sys::BTRFS_BALANCE_ARGS_VRANGE).then_some(AddressRange {
                start: a.vstart,
                end: a.vend,
            }),
            limit: if has(sys::BTRFS_BALANCE_ARGS_LIMIT_RANGE) {
                let (min, max) = split_word(limit_word);
                Some(LimitFilter::Range { min, max })
            } else if has(sys::BTRFS_BALANCE_ARGS_LIMIT) {
                Some(LimitFilter::AtMost(limit_word))
            } else {
                None
            },
            stripes: has(sys::BTRFS_BALANCE_ARGS_STRIPES_RANGE)
                .then_some((a.stripes_min, a.stripes_max)),
            convert: has(sys::BTRFS_BALANCE_ARGS_CONVERT).then(|| {
                Profile::from_balance_mask(a.target)
                    .first()
                    .copied()
                    .unwrap_or(Profile::Single)
            }),
            soft: has(sys::BTRFS_BALANCE_ARGS_SOFT),
        }
    }
}

/// A u64 union word seen as its (first, second) u32 halves in memory order.
fn split_word(word: u64) -> (u32, u32) {
    let b = word.to_ne_bytes();
    (
        u32::from_ne_bytes(b[..4].try_into().unwrap()),
        u32::from_ne_bytes(b[4..].try_into().unwrap()),
    )
}

impl fmt::Display for ChunkFilters {
    /// Formats the filters in btrfs-progs' syntax, e.g. `usage=0..50,limit=4`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ChunkFilters {
            profiles,
            usage,
            devid,
            drange,
            vrange,
            limit,
            stripes,
            convert,
            soft,
        } = self;
        let mut parts: Vec<String> = Vec::new();
        if !profiles.is_empty() {
            let names: Vec<&str> = profiles.iter().map(|p| p.name()).collect();
            parts.push(format!("profiles={}", names.join("|")));
        }
        match usage {
            Some(UsageFilter::Below(n)) => parts.push(format!("usage={n}")),
            Some(UsageFilter::Range { min, max }) => parts.push(format!("usage={min}..{max}")),
            None => {}
        }
        if let Some(d) = devid {
            parts.push(format!("devid={d}"));
        }
        if let Some(r) = drange {
            parts.push(format!("drange={}..{}", r.start, r.end));
        }
        if let Some(r) = vrange {
            parts.push(format!("vrange={}..{}", r.start, r.end));
        }
        match limit {
            Some(LimitFilter::AtMost(n)) => parts.push(format!("limit={n}")),
            Some(LimitFilter::Range { min, max }) => parts.push(format!("limit={min}..{max}")),
            None => {}
        }
        if let Some((a, b)) = stripes {
            parts.push(format!("stripes={a}..{b}"));
        }
        if let Some(p) = convert {
            parts.push(format!("convert={p}"));
        }
        if *soft {
            parts.push("soft".into());
        }
        f.write_str(&parts.join(","))
    }
}
