//! Device usage: what `btrfs filesystem usage` shows, computed from space info, device info and
//! the chunk tree.

use crate::chunk::Chunk;
use crate::error::Result;
use crate::fs::Filesystem;
use crate::info::DeviceInfo;
use crate::profile::{BlockGroupKind, Profile};
use crate::size::ByteSize;
use crate::space::SpaceInfo;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Unallocated space below this is not counted as free (btrfs-progs' threshold).
const MIN_UNALLOCATED: u64 = 16 << 20;

/// Bytes one device has allocated to one kind and profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Allocation {
    /// What the chunks hold.
    pub kind: BlockGroupKind,
    /// Their profile.
    pub profile: Profile,
    /// Raw bytes on this device.
    pub bytes: ByteSize,
}

/// One device's allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DeviceUsage {
    /// The device id.
    pub devid: u64,
    /// The device path.
    pub path: PathBuf,
    /// The size btrfs may use on the device.
    pub size: ByteSize,
    /// Raw bytes allocated per kind and profile.
    pub allocated: Vec<Allocation>,
    /// Raw bytes not allocated to any chunk.
    pub unallocated: ByteSize,
}

/// The figures of `btrfs filesystem usage`, computed the same way.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Usage {
    /// Sum of device sizes.
    pub device_size: ByteSize,
    /// Raw bytes allocated to chunks.
    pub device_allocated: ByteSize,
    /// Raw bytes not allocated.
    pub device_unallocated: ByteSize,
    /// Size of missing devices.
    pub device_missing: ByteSize,
    /// Raw bytes used (data + metadata + system, times their copies).
    pub used: ByteSize,
    /// Estimated free space for data: free in data chunks plus unallocated ÷ data ratio.
    pub free_estimated: ByteSize,
    /// The same with unallocated ÷ the highest ratio in use (what `df` reports).
    pub free_min: ByteSize,
    /// Raw ÷ logical for data (2.0 for RAID1 or DUP data).
    pub data_ratio: f64,
    /// Raw ÷ logical for metadata.
    pub metadata_ratio: f64,
    /// The global reserve's size.
    pub global_reserve: ByteSize,
    /// How much of the global reserve is in use.
    pub global_reserve_used: ByteSize,
    /// Whether data and metadata share block groups.
    pub mixed: bool,
    /// The space info entries (logical totals per kind and profile).
    pub space: Vec<SpaceInfo>,
    /// Per-device allocation.
    pub devices: Vec<DeviceUsage>,
}

impl Usage {
    /// Logical data bytes used, and the data capacity: used + estimated free (free space in
    /// data chunks plus what unallocated space would give data).
    pub fn data_fill(&self) -> (ByteSize, ByteSize) {
        let used = self.logical_used(BlockGroupKind::holds_data);
        (ByteSize(used), ByteSize(used + self.free_estimated.0))
    }

    fn logical_used(&self, pick: fn(BlockGroupKind) -> bool) -> u64 {
        self.space
            .iter()
            .filter(|s| pick(s.kind))
            .map(|s| s.used.0)
            .sum()
    }

    /// Fraction of the data capacity in use: data used ÷ (data used + free estimated). This is
    /// the figure to alarm on: at 1.0 writes fail with ENOSPC.
    pub fn data_used_ratio(&self) -> f64 {
        let (used, capacity) = self.data_fill();
        used.ratio_of(capacity)
    }

    /// Logical metadata bytes in use (the global reserve, which lives in metadata, counts as
    /// used), and the metadata capacity: metadata chunks plus unallocated ÷ metadata ratio.
    pub fn metadata_fill(&self) -> (ByteSize, ByteSize) {
        let kind_is_meta =
            |k: BlockGroupKind| matches!(k, BlockGroupKind::Metadata | BlockGroupKind::Mixed);
        let used = self.logical_used(kind_is_meta) + self.global_reserve.0;
        let total: u64 = self
            .space
            .iter()
            .filter(|s| kind_is_meta(s.kind))
            .map(|s| s.total.0)
            .sum();
        let ratio = if self.metadata_ratio > 0.0 {
            self.metadata_ratio
        } else {
            1.0
        };
        let capacity = total + (self.device_unallocated.0 as f64 / ratio) as u64;
        (ByteSize(used.min(capacity)), ByteSize(capacity))
    }

    /// Fraction of the metadata capacity in use ([`metadata_fill`](Self::metadata_fill)).
    pub fn metadata_used_ratio(&self) -> f64 {
        let (used, capacity) = self.metadata_fill();
        used.ratio_of(capacity)
    }

    /// Total unallocated bytes, the figure balance is run to recover.
    pub fn unallocated(&self) -> ByteSize {
        self.device_unallocated
    }

    /// The raw (on-device) bytes the kernel's allocator takes for the next regular chunk of
    /// `kind` (data, metadata or system; mixed counts as data): its stripe limit (data 1 GiB;
    /// metadata 256 MiB, 1 GiB above 50 GiB of devices; system 32 MiB), cut to 10 % of the
    /// devices rounded up to 16 MiB as the allocator does, times the copies the kind's profile
    /// keeps (an estimate: near full the kernel also makes smaller chunks). Below this
    /// much unallocated space the kernel can still make smaller chunks, but it is the point
    /// where "no space left" starts while free space shows in data chunks.
    pub fn next_chunk_raw(&self, kind: BlockGroupKind) -> ByteSize {
        const MIB: u64 = 1 << 20;
        const GIB: u64 = 1 << 30;
        let total = self.device_size.0;
        let (stripe_max, ratio) = match kind {
            BlockGroupKind::Metadata if total > 50 * GIB => (GIB, self.metadata_ratio),
            BlockGroupKind::Metadata | BlockGroupKind::GlobalReserve => {
                (256 * MIB, self.metadata_ratio)
            }
            BlockGroupKind::System => (32 * MIB, self.metadata_ratio),
            BlockGroupKind::Data | BlockGroupKind::Mixed => (GIB, self.data_ratio),
        };
        let logical = stripe_max.min((total / 10).div_ceil(16 * MIB) * (16 * MIB));
        ByteSize((logical as f64 * ratio.max(1.0)) as u64)
    }
}

/// How full data and metadata are, the figures to alarm on: from [`Filesystem::usage`] when the
/// caller may read the chunk tree (root), else from space info alone (allocated chunks only).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Fill {
    /// [`Usage::data_used_ratio`], or data used ÷ data chunks without root.
    pub data_used_ratio: f64,
    /// [`Usage::metadata_used_ratio`], or metadata used ÷ metadata chunks without root.
    pub metadata_used_ratio: f64,
    /// The space info entries.
    pub space: Vec<SpaceInfo>,
    /// The full usage figures, when the caller could read them (root).
    pub usage: Option<Usage>,
}

impl Fill {
    /// Whether the ratios count unallocated space as capacity ([`Filesystem::usage`] was
    /// readable); without root they are relative to allocated chunks and overstate fullness.
    pub fn is_exact(&self) -> bool {
        self.usage.is_some()
    }
}

/// Used ÷ total of the allocated chunks of the kinds `pick` selects.
fn allocated_used_ratio(space: &[SpaceInfo], pick: fn(BlockGroupKind) -> bool) -> f64 {
    let (used, total) = space
        .iter()
        .filter(|s| pick(s.kind))
        .fold((0u64, 0u64), |(u, t), s| (u + s.used.0, t + s.total.0));
    ByteSize(used).ratio_of(ByteSize(total))
}

/// Computes the usage figures from their three sources, as btrfs-progs does.
pub fn compute_usage(space: Vec<SpaceInfo>, devices: &[DeviceInfo], chunks: &[Chunk]) -> Usage {
    let device_size: u64 = devices.iter().map(|d| d.total_bytes.0).sum();
    let device_missing: u64 = devices
        .iter()
        .filter(|d| d.path.as_os_str().is_empty())
        .map(|d| d.total_bytes.0)
        .sum();

    // Raw ÷ logical per (kind, profile), from the chunks (exact for RAID5/6 too).
    let mut raw_by_group: BTreeMap<(BlockGroupKind, Profile), (u64, u64)> = BTreeMap::new();
    for c in chunks {
        let e = raw_by_group.entry((c.kind, c.profile)).or_default();
        e.0 += c.raw_size().0;
        e.1 += c.length.0;
    }
    let ratio_of = |kind, profile: Profile| match raw_by_group.get(&(kind, profile)) {
        Some(&(raw, logical)) if logical > 0 && profile.parity() > 0 => raw as f64 / logical as f64,
        _ => profile.copies() as f64,
    };

    let mut mixed = false;
    let mut max_ratio = 1.0f64;
    let (mut r_data_used, mut r_data_chunks, mut l_data_chunks) = (0f64, 0f64, 0u64);
    let (mut r_meta_used, mut r_meta_chunks, mut l_meta_chunks) = (0f64, 0f64, 0u64);
    let (mut r_sys_used, mut r_sys_chunks) = (0f64, 0f64);
    let (mut global_reserve, mut global_reserve_used) = (0, 0);
    for s in &space {
        let ratio = ratio_of(s.kind, s.profile);
        max_ratio = max_ratio.max(ratio);
        let (used, total) = (s.used.0 as f64 * ratio, s.total.0 as f64 * ratio);
        match s.kind {
            BlockGroupKind::GlobalReserve => {
                global_reserve = s.total.0;
                global_reserve_used = s.used.0;
            }
            BlockGroupKind::Data | BlockGroupKind::Mixed => {
                r_data_used += used;
                r_data_chunks += total;
                l_data_chunks += s.total.0;
                if s.kind == BlockGroupKind::Mixed {
                    mixed = true;
                    r_meta_used += used;
                    r_meta_chunks += total;
                    l_meta_chunks += s.total.0;
                }
            }
            BlockGroupKind::Metadata => {
                r_meta_used += used;
                r_meta_chunks += total;
                l_meta_chunks += s.total.0;
            }
            BlockGroupKind::System => {
                r_sys_used += used;
                r_sys_chunks += total;
            }
        }
    }
    let mut r_total_chunks = r_data_chunks + r_sys_chunks;
    let mut r_total_used = r_data_used + r_sys_used;
    if !mixed {
        r_total_chunks += r_meta_chunks;
        r_total_used += r_meta_used;
    }
    let r_total_unused = device_size as f64 - r_total_chunks;
    let data_ratio = if l_data_chunks > 0 {
        r_data_chunks / l_data_chunks as f64
    } else {
        1.0
    };
    let metadata_ratio = if mixed {
        data_ratio
    } else if l_meta_chunks > 0 {
        r_meta_chunks / l_meta_chunks as f64
    } else {
        1.0
    };
    let mut free_estimated = (r_data_chunks - r_data_used) / data_ratio;
    if mixed {
        free_estimated -= (global_reserve - global_reserve_used) as f64;
    }
    let mut free_min = free_estimated;
    if r_total_unused >= MIN_UNALLOCATED as f64 {
        free_estimated += r_total_unused / data_ratio;
        free_min += r_total_unused / max_ratio;
    }

    let devices = devices
        .iter()
        .map(|d| {
            let mut per: BTreeMap<(BlockGroupKind, Profile), u64> = BTreeMap::new();
            for c in chunks {
                let on_dev = c.stripes.iter().filter(|s| s.devid == d.devid).count() as u64;
                if on_dev > 0 {
                    *per.entry((c.kind, c.profile)).or_default() += on_dev * c.stripe_size().0;
                }
            }
            let allocated: Vec<Allocation> = per
                .into_iter()
                .map(|((kind, profile), bytes)| Allocation {
                    kind,
                    profile,
                    bytes: ByteSize(bytes),
                })
                .collect();
            let total: u64 = allocated.iter().map(|a| a.bytes.0).sum();
            DeviceUsage {
                devid: d.devid,
                path: d.path.clone(),
                size: d.total_bytes,
                allocated,
                unallocated: ByteSize(d.total_bytes.0.saturating_sub(total)),
            }
        })
        .collect();

    Usage {
        device_size: ByteSize(device_size),
        device_allocated: ByteSize(r_total_chunks as u64),
        device_unallocated: ByteSize(r_total_unused.max(0.0) as u64),
        device_missing: ByteSize(device_missing),
        used: ByteSize(r_total_used as u64),
        free_estimated: ByteSize(free_estimated.max(0.0) as u64),
        free_min: ByteSize(free_min.max(0.0) as u64),
        data_ratio,
        metadata_ratio,
        global_reserve: ByteSize(global_reserve),
        global_reserve_used: ByteSize(global_reserve_used),
        mixed,
        space,
        devices,
    }
}

impl Filesystem {
    /// How full data and metadata are ([`Fill`]): exact as root, from allocated chunks
    /// otherwise. Fails only on errors other than the missing privilege.
    pub fn fill(&self) -> Result<Fill> {
        match self.usage() {
            Ok(usage) => Ok(Fill {
                data_used_ratio: usage.data_used_ratio(),
                metadata_used_ratio: usage.metadata_used_ratio(),
                space: usage.space.clone(),
                usage: Some(usage),
            }),
            Err(crate::Error::PermissionDenied { .. }) => {
                let space = self.space_info()?;
                Ok(Fill {
                    data_used_ratio: allocated_used_ratio(&space, BlockGroupKind::holds_data),
                    metadata_used_ratio: allocated_used_ratio(&space, |k| {
                        matches!(k, BlockGroupKind::Metadata | BlockGroupKind::Mixed)
                    }),
                    space,
                    usage: None,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The figures of `btrfs filesystem usage`: overall allocation, used, free estimate, ratios,
    /// and per-device allocation per kind and profile. Needs CAP_SYS_ADMIN (it reads the chunk
    /// tree); without it the error is [`Error::PermissionDenied`](crate::Error::PermissionDenied).
    pub fn usage(&self) -> Result<Usage> {
        let chunks = self.chunks()?;
        let devices = self.devices()?;
        let space = self.space_info()?;
        Ok(compute_usage(space, &devices, &chunks))
    }
}
