//! What to balance: which chunk kinds, with which filters, and whether to force.

use super::filters::ChunkFilters;
use crate::error::{Error, Result};
use crate::profile::BlockGroupKind;
use btrfs_sys as sys;

/// A balance request. Build a filtered one with [`Balance::data`], [`Balance::metadata`] and
/// [`Balance::system`]; a full, unfiltered balance is the separate choice [`Balance::full`].
///
/// As in btrfs-progs, metadata filters also apply to system chunks unless system filters are
/// given, and system filters need [`Balance::force`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Balance {
    /// Filters for data chunks; `None` leaves data chunks alone.
    pub data: Option<ChunkFilters>,
    /// Filters for metadata chunks; `None` leaves metadata chunks alone.
    pub metadata: Option<ChunkFilters>,
    /// Filters for system chunks; `None` follows `metadata`.
    pub system: Option<ChunkFilters>,
    /// Allow reducing metadata redundancy and explicit system balances.
    pub force: bool,
    full: bool,
}

impl Balance {
    /// An empty request; add kinds with [`data`](Self::data) and friends.
    pub fn new() -> Self {
        Self::default()
    }

    /// A full balance: every chunk of every kind is rewritten. This moves all data and can run
    /// for hours on a large filesystem; the daily policy is a usage-filtered balance instead.
    pub fn full() -> Self {
        Balance {
            data: Some(ChunkFilters::all()),
            metadata: Some(ChunkFilters::all()),
            system: Some(ChunkFilters::all()),
            force: false,
            full: true,
        }
    }

    /// Balances data chunks selected by `filters`.
    pub fn data(mut self, filters: ChunkFilters) -> Self {
        self.data = Some(filters);
        self
    }

    /// Balances metadata (and, unless set separately, system) chunks selected by `filters`.
    pub fn metadata(mut self, filters: ChunkFilters) -> Self {
        self.metadata = Some(filters);
        self
    }

    /// Balances system chunks selected by `filters` (needs [`force`](Self::force)).
    pub fn system(mut self, filters: ChunkFilters) -> Self {
        self.system = Some(filters);
        self
    }

    /// Sets force: needed to reduce metadata redundancy (e.g. dup → single) and for system.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Whether this is the explicit full balance.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// The checks btrfs-progs makes before calling the kernel.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Error::invalid_arguments("balance", reason);
        let kinds = [
            ("data", &self.data),
            ("metadata", &self.metadata),
            ("system", &self.system),
        ];
        if kinds.iter().all(|(_, f)| f.is_none()) {
            return Err(invalid(
                "no chunk kind selected; add data/metadata/system filters, or ask for Balance::full() (a full balance rewrites every chunk)".into(),
            ));
        }
        if !self.full && self.system.is_some() && !self.force {
            return Err(invalid(
                "refusing to balance system chunks explicitly without Balance::force(true); metadata filters already apply to system chunks".into(),
            ));
        }
        for (kind, filters) in kinds {
            if let Some(f) = filters {
                f.validate()
                    .map_err(|reason| invalid(format!("{kind} filters: {reason}")))?;
            }
        }
        Ok(())
    }

    /// The filters that apply to chunks of `kind`, if that kind is balanced at all. System
    /// chunks follow the metadata filters unless system filters are given, as in btrfs-progs;
    /// mixed chunks follow the data filters.
    pub fn filters_for(&self, kind: BlockGroupKind) -> Option<&ChunkFilters> {
        match kind {
            BlockGroupKind::Data | BlockGroupKind::Mixed => self.data.as_ref(),
            BlockGroupKind::Metadata => self.metadata.as_ref(),
            BlockGroupKind::System => self.system.as_ref().or(self.metadata.as_ref()),
            BlockGroupKind::GlobalReserve => None,
        }
    }

    /// Encodes the request as the kernel's `btrfs_ioctl_balance_args`.
    pub(crate) fn to_sys(&self) -> sys::btrfs_ioctl_balance_args {
        self.encode([
            self.filters_for(BlockGroupKind::Data),
            self.filters_for(BlockGroupKind::Metadata),
            self.filters_for(BlockGroupKind::System),
        ])
    }

    /// Encodes the request for a filesystem with mixed block groups, where data and metadata
    /// share chunks. The kernel (`btrfs_balance` in fs/btrfs/volumes.c) then refuses with
    /// EINVAL any request that selects data or metadata without selecting both with identical
    /// arguments. So filters given for one of them apply to both (the same chunks); filters
    /// given for both must be equal, or the request is refused here, naming the rule. System
    /// chunks are separate there too, and are balanced only when asked for (by system or
    /// metadata filters), never because data filters were copied.
    pub(crate) fn to_sys_mixed(&self) -> Result<sys::btrfs_ioctl_balance_args> {
        let shared = match (&self.data, &self.metadata) {
            (Some(d), Some(m)) if d != m => {
                return Err(Error::invalid_arguments("balance", format!(
                        "this filesystem has mixed block groups (data and metadata share chunks), so data and metadata filters must be the same; got data {d:?} and metadata {m:?}: give one set (it applies to both) or equal ones"
                    )))
            }
            (Some(f), _) | (None, Some(f)) => Some(f),
            (None, None) => None,
        };
        Ok(self.encode([shared, shared, self.filters_for(BlockGroupKind::System)]))
    }

    /// The kernel's arguments for data, metadata and system filters (`None`: kind left alone).
    fn encode(&self, kinds: [Option<&ChunkFilters>; 3]) -> sys::btrfs_ioctl_balance_args {
        let mut args = sys::btrfs_ioctl_balance_args::default();
        let mut flags = 0u64;
        let [data, meta, system] = kinds;
        for (filters, flag, slot) in [
            (data, sys::BTRFS_BALANCE_DATA, &mut args.data),
            (meta, sys::BTRFS_BALANCE_METADATA, &mut args.meta),
            (system, sys::BTRFS_BALANCE_SYSTEM, &mut args.sys),
        ] {
            if let Some(f) = filters {
                flags |= u64::from(flag);
                *slot = f.to_sys();
            }
        }
        if self.force {
            flags |= sys::BTRFS_BALANCE_FORCE as u64;
        }
        args.flags = flags;
        args
    }

    /// Decodes the request the kernel reports for a running balance.
    pub(crate) fn from_sys(args: &sys::btrfs_ioctl_balance_args) -> Self {
        let flags = args.flags;
        let has = |bit: u32| flags & bit as u64 != 0;
        let data = has(sys::BTRFS_BALANCE_DATA).then(|| ChunkFilters::from_sys(&args.data));
        let metadata = has(sys::BTRFS_BALANCE_METADATA).then(|| ChunkFilters::from_sys(&args.meta));
        let system = has(sys::BTRFS_BALANCE_SYSTEM).then(|| ChunkFilters::from_sys(&args.sys));
        let full = [&data, &metadata, &system]
            .iter()
            .all(|f| f.as_ref().is_some_and(ChunkFilters::is_unfiltered));
        // System filters equal to the metadata ones are the implicit "-m applies to system".
        let system = if !full && metadata.is_some() && system == metadata {
            None
        } else {
            system
        };
        Balance {
            data,
            metadata,
            system,
            force: has(sys::BTRFS_BALANCE_FORCE),
            full,
        }
    }
}

impl std::fmt::Display for Balance {
    /// Formats the request like btrfs-progs' command line: `-dusage=5 -musage=0`, or `--full`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.full {
            return f.write_str("--full");
        }
        let mut parts = Vec::new();
        for (flag, filters) in [
            ("-d", &self.data),
            ("-m", &self.metadata),
            ("-s", &self.system),
        ] {
            if let Some(filters) = filters {
                parts.push(format!("{flag}{filters}"));
            }
        }
        if self.force {
            parts.push("-f".into());
        }
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;

    #[test]
    fn requires_an_explicit_choice_and_force_for_system() {
        assert!(Balance::new().validate().is_err());
        assert!(Balance::full().validate().is_ok());
        assert!(Balance::new()
            .system(ChunkFilters::all())
            .validate()
            .is_err());
        assert!(Balance::new()
            .system(ChunkFilters::all())
            .force(true)
            .validate()
            .is_ok());
        assert!(Balance::new()
            .data(ChunkFilters {
                soft: true,
                ..Default::default()
            })
            .validate()
            .is_err());
    }

    #[test]
    fn metadata_filters_apply_to_system_chunks() {
        let b = Balance::new()
            .metadata(ChunkFilters::convert(Profile::Single, false))
            .force(true);
        let args = b.to_sys();
        let flags = args.flags;
        assert_ne!(flags & sys::BTRFS_BALANCE_SYSTEM as u64, 0);
        assert_ne!(flags & sys::BTRFS_BALANCE_FORCE as u64, 0);
        let (meta, system) = (
            ChunkFilters::from_sys(&args.meta),
            ChunkFilters::from_sys(&args.sys),
        );
        assert_eq!(meta, system);
        assert_eq!(b.to_string(), "-mconvert=single -f");
        assert_eq!(
            Balance::from_sys(&Balance::full().to_sys()),
            Balance::full()
        );
    }

    #[test]
    fn mixed_filesystems_get_identical_data_and_metadata_filters() {
        let flags = |a: &sys::btrfs_ioctl_balance_args| {
            let f = a.flags;
            [
                sys::BTRFS_BALANCE_DATA,
                sys::BTRFS_BALANCE_METADATA,
                sys::BTRFS_BALANCE_SYSTEM,
            ]
            .map(|bit| f & u64::from(bit) != 0)
        };
        let usage5 = ChunkFilters::usage_below(5);
        // Data only: metadata gets the same filters, system is left alone.
        let a = Balance::new().data(usage5.clone()).to_sys_mixed().unwrap();
        assert_eq!(flags(&a), [true, true, false]);
        assert_eq!(ChunkFilters::from_sys(&a.meta), usage5);
        assert_eq!(ChunkFilters::from_sys(&a.data), usage5);
        // Metadata only: data gets them, system follows metadata as always.
        let a = Balance::new()
            .metadata(usage5.clone())
            .to_sys_mixed()
            .unwrap();
        assert_eq!(flags(&a), [true, true, true]);
        assert_eq!(ChunkFilters::from_sys(&a.data), usage5);
        // Equal filters pass; different ones are refused before the kernel sees them.
        let both = Balance::new().data(usage5.clone()).metadata(usage5.clone());
        assert_eq!(flags(&both.to_sys_mixed().unwrap()), [true, true, true]);
        let differ = Balance::new()
            .data(usage5)
            .metadata(ChunkFilters::usage_below(10));
        let Err(err) = differ.to_sys_mixed() else {
            panic!("different data and metadata filters were encoded for a mixed filesystem");
        };
        let err = err.to_string();
        assert!(err.contains("mixed block groups"), "{err}");
        // A full balance is already identical for both.
        assert_eq!(flags(&Balance::full().to_sys_mixed().unwrap()), [true; 3]);
        // Without mixed block groups nothing is copied.
        let a = Balance::new().data(ChunkFilters::usage_below(5)).to_sys();
        assert_eq!(flags(&a), [true, false, false]);
    }
}
