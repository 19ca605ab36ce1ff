//! `allocation/`: space per block group kind (the sysfs view of `BTRFS_IOC_SPACE_INFO`) and the
//! automatic reclaim knobs.

use super::FsSysfs;
use crate::error::Result;
use crate::profile::{BlockGroupKind, Profile};
use crate::size::ByteSize;

/// The allocation kinds sysfs has a directory for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum AllocationKind {
    /// `allocation/data`.
    Data,
    /// `allocation/metadata`.
    Metadata,
    /// `allocation/system`.
    System,
    /// `allocation/mixed` (data and metadata in the same block groups).
    Mixed,
}

impl AllocationKind {
    /// Every kind, in sysfs' order.
    pub const ALL: [AllocationKind; 4] = [
        AllocationKind::Data,
        AllocationKind::Metadata,
        AllocationKind::System,
        AllocationKind::Mixed,
    ];

    /// The directory name under `allocation/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            AllocationKind::Data => "data",
            AllocationKind::Metadata => "metadata",
            AllocationKind::System => "system",
            AllocationKind::Mixed => "mixed",
        }
    }

    /// The block group kind this directory describes.
    pub fn block_group_kind(self) -> BlockGroupKind {
        match self {
            AllocationKind::Data => BlockGroupKind::Data,
            AllocationKind::Metadata => BlockGroupKind::Metadata,
            AllocationKind::System => BlockGroupKind::System,
            AllocationKind::Mixed => BlockGroupKind::Mixed,
        }
    }
}

/// One profile's share of an allocation kind (`allocation/<kind>/<profile>/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ProfileAllocation {
    /// The profile.
    pub profile: Profile,
    /// Logical bytes in block groups of this kind and profile.
    pub total: ByteSize,
    /// Logical bytes used inside them.
    pub used: ByteSize,
}

/// `allocation/<kind>/`: the figures the kernel keeps for one kind of block groups.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SysfsAllocation {
    /// The kind.
    pub kind: AllocationKind,
    /// Logical bytes in block groups of this kind (`total_bytes`).
    pub total: ByteSize,
    /// Logical bytes used (`bytes_used`).
    pub used: ByteSize,
    /// Bytes freed in the running transaction, reusable after its commit (`bytes_pinned`).
    pub pinned: ByteSize,
    /// Bytes reserved for allocations in flight (`bytes_reserved`).
    pub reserved: ByteSize,
    /// Bytes promised to operations that have not allocated yet (`bytes_may_use`).
    pub may_use: ByteSize,
    /// Bytes in read-only block groups, e.g. being relocated (`bytes_readonly`).
    pub readonly: ByteSize,
    /// Raw bytes on the devices, copies counted (`disk_total`; absent before Linux 4.15).
    pub disk_total: Option<ByteSize>,
    /// Raw bytes used on the devices (`disk_used`; absent before Linux 4.15).
    pub disk_used: Option<ByteSize>,
    /// Size of the next chunk the kernel allocates (`chunk_size`, Linux 6.0+).
    pub chunk_size: Option<ByteSize>,
    /// Per profile (a conversion leaves two).
    pub profiles: Vec<ProfileAllocation>,
}

/// The global block reserve (`allocation/global_rsv_size`, `global_rsv_reserved`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GlobalReserve {
    /// Its size.
    pub size: ByteSize,
    /// How much of it is reserved now.
    pub reserved: ByteSize,
}

const RECLAIM_SINCE: &str = "Linux 5.19 (bg_reclaim_threshold per allocation kind)";
const DYNAMIC_SINCE: &str = "Linux 6.11 (dynamic_reclaim)";
const PERIODIC_SINCE: &str = "Linux 6.11 (periodic_reclaim)";

impl FsSysfs {
    fn alloc_knob(&self, kind: AllocationKind, name: &str) -> super::knob::Knob {
        self.knob(format!("allocation/{}/{name}", kind.dir_name()))
    }

    /// The figures of one allocation kind; `None` when the filesystem has no block group of
    /// that kind (e.g. `Mixed` on most filesystems).
    pub fn allocation(&self, kind: AllocationKind) -> Result<Option<SysfsAllocation>> {
        let bytes = |name: &str| -> Result<Option<ByteSize>> {
            Ok(self.alloc_knob(kind, name).u64()?.map(ByteSize))
        };
        let (Some(total), Some(used)) = (bytes("total_bytes")?, bytes("bytes_used")?) else {
            return Ok(None);
        };
        let mut profiles = Vec::new();
        for profile in Profile::ALL {
            let dir = profile.name();
            let total = self.alloc_knob(kind, &format!("{dir}/total_bytes")).u64()?;
            let used = self.alloc_knob(kind, &format!("{dir}/used_bytes")).u64()?;
            if let (Some(total), Some(used)) = (total, used) {
                profiles.push(ProfileAllocation {
                    profile,
                    total: ByteSize(total),
                    used: ByteSize(used),
                });
            }
        }
        Ok(Some(SysfsAllocation {
            kind,
            total,
            used,
            pinned: bytes("bytes_pinned")?.unwrap_or_default(),
            reserved: bytes("bytes_reserved")?.unwrap_or_default(),
            may_use: bytes("bytes_may_use")?.unwrap_or_default(),
            readonly: bytes("bytes_readonly")?.unwrap_or_default(),
            disk_total: bytes("disk_total")?,
            disk_used: bytes("disk_used")?,
            chunk_size: bytes("chunk_size")?,
            profiles,
        }))
    }

    /// Every allocation kind the filesystem has, in sysfs' order.
    pub fn allocations(&self) -> Result<Vec<SysfsAllocation>> {
        let mut out = Vec::new();
        for kind in AllocationKind::ALL {
            out.extend(self.allocation(kind)?);
        }
        Ok(out)
    }

    /// The global block reserve; `None` when sysfs lacks it.
    pub fn global_reserve(&self) -> Result<Option<GlobalReserve>> {
        let size = self.knob("allocation/global_rsv_size").u64()?;
        let reserved = self.knob("allocation/global_rsv_reserved").u64()?;
        Ok(size.zip(reserved).map(|(size, reserved)| GlobalReserve {
            size: ByteSize(size),
            reserved: ByteSize(reserved),
        }))
    }

    /// The usage percentage (0–100) below which the kernel reclaims (relocates) block groups
    /// of this kind by itself; 0 means off. With `dynamic_reclaim` on, the kernel shows the
    /// threshold it computes.
    pub fn bg_reclaim_threshold(&self, kind: AllocationKind) -> Result<Option<u8>> {
        self.alloc_knob(kind, "bg_reclaim_threshold")
            .parse(|s| s.parse().ok().filter(|p| *p <= 100))
    }

    /// Sets the reclaim threshold of this kind (0 turns automatic reclaim off).
    pub fn set_bg_reclaim_threshold(&self, kind: AllocationKind, percent: u8) -> Result<()> {
        self.alloc_knob(kind, "bg_reclaim_threshold").write(
            "set bg_reclaim_threshold",
            &percent.to_string(),
            RECLAIM_SINCE,
            "a percentage from 0 to 100",
        )
    }

    /// Whether the kernel adapts the reclaim threshold to how full the filesystem is.
    pub fn dynamic_reclaim(&self, kind: AllocationKind) -> Result<Option<bool>> {
        self.alloc_knob(kind, "dynamic_reclaim").flag()
    }

    /// Turns dynamic reclaim on or off for this kind.
    pub fn set_dynamic_reclaim(&self, kind: AllocationKind, on: bool) -> Result<()> {
        self.alloc_knob(kind, "dynamic_reclaim").write_flag(
            "set dynamic_reclaim",
            on,
            DYNAMIC_SINCE,
        )
    }

    /// Whether the kernel reclaims block groups of this kind periodically (not only when
    /// allocation gets tight).
    pub fn periodic_reclaim(&self, kind: AllocationKind) -> Result<Option<bool>> {
        self.alloc_knob(kind, "periodic_reclaim").flag()
    }

    /// Turns periodic reclaim on or off for this kind.
    pub fn set_periodic_reclaim(&self, kind: AllocationKind, on: bool) -> Result<()> {
        self.alloc_knob(kind, "periodic_reclaim").write_flag(
            "set periodic_reclaim",
            on,
            PERIODIC_SINCE,
        )
    }
}
