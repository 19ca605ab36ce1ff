//! The `lv_attr`, `vg_attr` and `pv_attr` strings decoded into enums and flags (see lvs(8),
//! vgs(8), pvs(8)). Unknown letters are kept as `Other(char)`, never an error, so a newer lvm2
//! does not break parsing.

/// Attribute character `n` of `raw`, or `'-'` when the string is shorter.
fn nth(raw: &str, n: usize) -> char {
    raw.chars().nth(n).unwrap_or('-')
}

/// `letter` when `on`, else `'-'`: one position of an attribute string.
fn flag(on: bool, letter: char) -> char {
    if on {
        letter
    } else {
        '-'
    }
}

/// An LV's type: `lv_attr` character 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum LvType {
    /// A plain (linear or striped) volume: `-`.
    Plain,
    /// A mirror: `m` or `M`.
    Mirror,
    /// The origin of a snapshot: `o`, or `O` with a merging snapshot.
    Origin,
    /// A RAID volume: `r` or `R`.
    Raid,
    /// A classic snapshot: `s`, or `S` while merging.
    Snapshot,
    /// A pvmove volume: `p`.
    Pvmove,
    /// A virtual volume: `v`.
    Virtual,
    /// A mirror or RAID image: `i` or `I`.
    Image,
    /// A mirror log: `l`.
    MirrorLog,
    /// Under conversion: `c`.
    Converting,
    /// A thin volume: `V`.
    Thin,
    /// A thin pool: `t`.
    ThinPool,
    /// Thin pool data: `T`.
    ThinPoolData,
    /// RAID or pool metadata, or the pool metadata spare: `e`.
    Metadata,
    /// A VDO pool: `d`.
    VdoPool,
    /// VDO pool data: `D`.
    VdoPoolData,
    /// A cache volume: `C`.
    Cache,
    /// A letter this crate does not know.
    Other(char),
}

/// An LV's or VG's permission: `lv_attr` character 2, `vg_attr` character 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Permission {
    /// Writeable: `w`.
    Writeable,
    /// Read-only: `r`.
    ReadOnly,
    /// Read-only activation of a writeable LV: `R`.
    ReadOnlyActivation,
    /// A letter this crate does not know.
    Other(char),
}

impl Permission {
    fn from_char(c: char) -> Self {
        match c {
            'w' => Permission::Writeable,
            'r' => Permission::ReadOnly,
            'R' => Permission::ReadOnlyActivation,
            c => Permission::Other(c),
        }
    }
}

/// An allocation policy (lower case in the attributes; upper case means locked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum AllocationPolicy {
    /// `a`.
    Anywhere,
    /// `c`.
    Contiguous,
    /// `i` (the LV inherits the VG's).
    Inherit,
    /// `l`.
    Cling,
    /// `n`.
    Normal,
    /// A letter this crate does not know.
    Other(char),
}

impl AllocationPolicy {
    /// The letter lvm2 prints for it (`?` for an unknown one without its letter).
    fn letter(self) -> char {
        match self {
            AllocationPolicy::Anywhere => 'a',
            AllocationPolicy::Contiguous => 'c',
            AllocationPolicy::Inherit => 'i',
            AllocationPolicy::Cling => 'l',
            AllocationPolicy::Normal => 'n',
            AllocationPolicy::Other(c) => c,
        }
    }

    fn from_char(c: char) -> Self {
        match c.to_ascii_lowercase() {
            'a' => AllocationPolicy::Anywhere,
            'c' => AllocationPolicy::Contiguous,
            'i' => AllocationPolicy::Inherit,
            'l' => AllocationPolicy::Cling,
            'n' => AllocationPolicy::Normal,
            _ => AllocationPolicy::Other(c),
        }
    }
}

/// An LV's kernel state: `lv_attr` character 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum LvState {
    /// Not active: `-`.
    Inactive,
    /// Active: `a`.
    Active,
    /// Historical (removed, kept in metadata): `h`.
    Historical,
    /// Suspended: `s`.
    Suspended,
    /// An invalid snapshot: `I` (`S` if also suspended).
    InvalidSnapshot,
    /// A mapped device with no or an inactive table: `d` or `i`.
    NoTable,
    /// Unknown, e.g. device-mapper is unavailable: `X`.
    Unknown,
    /// Another letter (`m`, `M`, `c`, `C` ...).
    Other(char),
}

/// The health of an LV: `lv_attr` character 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum LvHealth {
    /// No problem reported: `-`.
    Ok,
    /// Partial (a PV is missing): `p`.
    Partial,
    /// Needs a refresh: `r`.
    Refresh,
    /// Failed: `F`.
    Failed,
    /// Thin pool out of data space: `D`.
    OutOfDataSpace,
    /// Thin pool metadata read-only: `M`.
    MetadataReadOnly,
    /// Unknown (device-mapper unavailable): `X`.
    Unknown,
    /// Another letter (`m`, `w`, `R`, `E` ...).
    Other(char),
}

/// The decoded `lv_attr`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LvAttr {
    /// The raw 10-character string.
    pub raw: String,
    /// Character 1: the volume type.
    pub volume_type: LvType,
    /// Character 2: permissions.
    pub permission: Permission,
    /// Character 3: the allocation policy.
    pub allocation: AllocationPolicy,
    /// Character 3 in upper case: the allocation policy is locked.
    pub allocation_locked: bool,
    /// Character 4: a fixed minor number.
    pub fixed_minor: bool,
    /// Character 5: the kernel state.
    pub state: LvState,
    /// Character 6: the device is open (`None` when unknown).
    pub open: Option<bool>,
    /// Character 8: newly allocated blocks are zeroed.
    pub zero: bool,
    /// Character 9: health.
    pub health: LvHealth,
    /// Character 10: skipped on activation.
    pub skip_activation: bool,
}

impl LvAttr {
    /// Decodes an `lv_attr` string.
    pub fn parse(raw: &str) -> Self {
        let c = |n| nth(raw, n);
        LvAttr {
            raw: raw.to_owned(),
            volume_type: match c(0) {
                '-' => LvType::Plain,
                'm' | 'M' => LvType::Mirror,
                'o' | 'O' => LvType::Origin,
                'r' | 'R' => LvType::Raid,
                's' | 'S' => LvType::Snapshot,
                'p' => LvType::Pvmove,
                'v' => LvType::Virtual,
                'i' | 'I' => LvType::Image,
                'l' => LvType::MirrorLog,
                'c' => LvType::Converting,
                'V' => LvType::Thin,
                't' => LvType::ThinPool,
                'T' => LvType::ThinPoolData,
                'e' => LvType::Metadata,
                'd' => LvType::VdoPool,
                'D' => LvType::VdoPoolData,
                'C' => LvType::Cache,
                o => LvType::Other(o),
            },
            permission: Permission::from_char(c(1)),
            allocation: AllocationPolicy::from_char(c(2)),
            allocation_locked: c(2).is_ascii_uppercase(),
            fixed_minor: c(3) == 'm',
            state: match c(4) {
                '-' => LvState::Inactive,
                'a' => LvState::Active,
                'h' => LvState::Historical,
                's' => LvState::Suspended,
                'I' | 'S' => LvState::InvalidSnapshot,
                'd' | 'i' => LvState::NoTable,
                'X' => LvState::Unknown,
                o => LvState::Other(o),
            },
            open: match c(5) {
                'o' => Some(true),
                '-' => Some(false),
                _ => None,
            },
            zero: c(7) == 'z',
            health: match c(8) {
                '-' => LvHealth::Ok,
                'p' => LvHealth::Partial,
                'r' => LvHealth::Refresh,
                'F' => LvHealth::Failed,
                'D' => LvHealth::OutOfDataSpace,
                'M' => LvHealth::MetadataReadOnly,
                'X' => LvHealth::Unknown,
                o => LvHealth::Other(o),
            },
            skip_activation: c(9) == 'k',
        }
    }
}

/// The decoded `vg_attr`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VgAttr {
    /// The raw 6-character string.
    pub raw: String,
    /// Character 1: permissions.
    pub permission: Permission,
    /// Character 2: the VG can be resized.
    pub resizeable: bool,
    /// Character 3: exported.
    pub exported: bool,
    /// Character 4: partial (a PV is missing).
    pub partial: bool,
    /// Character 5: the allocation policy.
    pub allocation: AllocationPolicy,
    /// Character 6: clustered (`c`) or shared (`s`).
    pub shared: bool,
}

impl VgAttr {
    /// From decoded flags (lvmdbusd reports flags, not the string); `raw` is the `vg_attr`
    /// string lvm2 prints for them.
    pub fn from_flags(
        writeable: bool,
        resizeable: bool,
        exported: bool,
        partial: bool,
        allocation: AllocationPolicy,
        shared: bool,
    ) -> Self {
        let raw = [
            if writeable { 'w' } else { 'r' },
            flag(resizeable, 'z'),
            flag(exported, 'x'),
            flag(partial, 'p'),
            allocation.letter(),
            flag(shared, 'c'),
        ]
        .iter()
        .collect();
        VgAttr {
            raw,
            permission: if writeable {
                Permission::Writeable
            } else {
                Permission::ReadOnly
            },
            resizeable,
            exported,
            partial,
            allocation,
            shared,
        }
    }

    /// Decodes a `vg_attr` string.
    pub fn parse(raw: &str) -> Self {
        let c = |n| nth(raw, n);
        VgAttr {
            raw: raw.to_owned(),
            permission: Permission::from_char(c(0)),
            resizeable: c(1) == 'z',
            exported: c(2) == 'x',
            partial: c(3) == 'p',
            allocation: AllocationPolicy::from_char(c(4)),
            shared: matches!(c(5), 'c' | 's'),
        }
    }
}

/// The decoded `pv_attr`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PvAttr {
    /// The raw 3-character string.
    pub raw: String,
    /// Character 1 `a`: new extents may be allocated on it.
    pub allocatable: bool,
    /// Character 1 `d`: a duplicate of another PV.
    pub duplicate: bool,
    /// Character 2: exported.
    pub exported: bool,
    /// Character 3: missing.
    pub missing: bool,
}

impl PvAttr {
    /// From decoded flags (lvmdbusd reports flags, not the string); `raw` is the `pv_attr`
    /// string lvm2 prints for them.
    pub fn from_flags(allocatable: bool, exported: bool, missing: bool) -> Self {
        PvAttr {
            raw: [
                flag(allocatable, 'a'),
                flag(exported, 'x'),
                flag(missing, 'm'),
            ]
            .iter()
            .collect(),
            allocatable,
            duplicate: false,
            exported,
            missing,
        }
    }

    /// Decodes a `pv_attr` string.
    pub fn parse(raw: &str) -> Self {
        let c = |n| nth(raw, n);
        PvAttr {
            raw: raw.to_owned(),
            allocatable: c(0) == 'a',
            duplicate: c(0) == 'd',
            exported: c(1) == 'x',
            missing: c(2) == 'm',
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_lv_attr() {
        let a = LvAttr::parse("-wi-a-----");
        assert_eq!(a.volume_type, LvType::Plain);
        assert_eq!(a.permission, Permission::Writeable);
        assert_eq!(a.allocation, AllocationPolicy::Inherit);
        assert_eq!(a.state, LvState::Active);
        assert_eq!(a.open, Some(false));
        let t = LvAttr::parse("twi-aotz--");
        assert_eq!(t.volume_type, LvType::ThinPool);
        assert!(t.zero);
        assert_eq!(t.open, Some(true));
        let x = LvAttr::parse("-wi-XX----");
        assert_eq!(x.state, LvState::Unknown);
        assert_eq!(x.open, None);
        assert_eq!(LvAttr::parse("owi-a-s---").volume_type, LvType::Origin);
        assert_eq!(LvAttr::parse("swi-a-s---").volume_type, LvType::Snapshot);
        assert_eq!(LvAttr::parse("Vwi-a-tz--").volume_type, LvType::Thin);
    }

    #[test]
    fn decodes_vg_and_pv_attr() {
        let v = VgAttr::parse("wz--n-");
        assert!(v.resizeable && !v.partial && !v.exported);
        assert_eq!(v.allocation, AllocationPolicy::Normal);
        assert!(VgAttr::parse("wz-pn-").partial);
        let p = PvAttr::parse("a--");
        assert!(p.allocatable && !p.missing);
        assert!(PvAttr::parse("a-m").missing);
        assert!(!PvAttr::parse("---").allocatable);
    }

    #[test]
    fn flags_build_what_the_strings_decode_to() {
        assert_eq!(PvAttr::from_flags(true, false, false), PvAttr::parse("a--"));
        assert_eq!(PvAttr::from_flags(false, true, true), PvAttr::parse("-xm"));
        assert_eq!(
            VgAttr::from_flags(true, true, false, false, AllocationPolicy::Normal, false),
            VgAttr::parse("wz--n-")
        );
        assert_eq!(
            VgAttr::from_flags(false, false, true, true, AllocationPolicy::Cling, true),
            VgAttr::parse("r-xplc")
        );
    }
}
