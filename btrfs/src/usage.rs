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
    /// Logical data bytes used, and the data capacity (used + estimated free).
    fn data_fill(&self) -> (u64, u64) {
        let used = self.logical_used(BlockGroupKind::holds_data);
        (used, used + self.free_estimated.0)
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
        ByteSize(used).ratio_of(ByteSize(capacity))
    }

    /// Fraction of the metadata capacity in use: metadata used ÷ (metadata chunks + unallocated
    /// ÷ metadata ratio). The global reserve lives in metadata and counts as used.
    pub fn metadata_used_ratio(&self) -> f64 {
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
        ByteSize(used.min(capacity)).ratio_of(ByteSize(capacity))
    }

    /// Total unallocated bytes, the figure balance is run to recover.
    pub fn unallocated(&self) -> ByteSize {
        self.device_unallocated
    }
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
