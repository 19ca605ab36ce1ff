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
    /// The device path; empty when the device is missing.
    #[cfg_attr(
        feature = "serde",
        serde(flatten, serialize_with = "crate::name::path_field")
    )]
    pub path: PathBuf,
    /// Whether the device is missing (a degraded mount); shown as `<missing>` by the examples.
    pub missing: bool,
    /// The size btrfs may use on the device.
    pub size: ByteSize,
    /// The part of the block device beyond `size`, which btrfs does not use (btrfs-progs'
    /// "Device slack"; e.g. after growing the LV under the filesystem): see
    /// [`DeviceInfo::slack`].
    pub slack: ByteSize,
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
    /// Device slack summed over the devices: block device sizes beyond what btrfs uses.
    pub device_slack: ByteSize,
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

/// Raw ÷ logical used bytes of each kind within one RAID5/6 profile (btrfs-progs'
/// `get_raid56_logical_ratio`): (data, metadata, system); `None` where the kind has no chunks.
fn raid56_used_ratios(space: &[SpaceInfo], profile: Profile) -> [Option<f64>; 3] {
    let mut sums = [(0u64, 0u64); 3];
    for s in space.iter().filter(|s| s.profile == profile) {
        let slot = match s.kind {
            BlockGroupKind::Data | BlockGroupKind::Mixed => 0,
            BlockGroupKind::Metadata => 1,
            BlockGroupKind::System => 2,
            BlockGroupKind::GlobalReserve => continue,
        };
        sums[slot].0 += s.used.0;
        sums[slot].1 += s.total.0;
    }
    sums.map(|(used, total)| (total > 0).then(|| used as f64 / total as f64))
}

/// The slot (data 0, metadata 1, system 2) a chunk of `kind` is counted in by btrfs-progs,
/// which tests the data bit first (so mixed chunks count as data).
fn slot_of(kind: BlockGroupKind) -> Option<usize> {
    match kind {
        BlockGroupKind::Data | BlockGroupKind::Mixed => Some(0),
        BlockGroupKind::Metadata => Some(1),
        BlockGroupKind::System => Some(2),
        BlockGroupKind::GlobalReserve => None,
    }
}

/// btrfs-progs' `chunk_info`: the chunks of one type and stripe count, summed per device
/// (each stripe on the device adds the chunk's length).
type ChunkInfos = BTreeMap<(BlockGroupKind, Profile, u64, usize), u64>;

fn chunk_infos(chunks: &[Chunk]) -> ChunkInfos {
    let mut infos = ChunkInfos::new();
    for c in chunks {
        for s in &c.stripes {
            *infos
                .entry((c.kind, c.profile, s.devid, c.stripes.len()))
                .or_default() += c.length.0;
        }
    }
    infos
}

/// The stripes of a chunk that hold data, as btrfs-progs divides by (`calc_chunk_size`).
fn data_stripes(profile: Profile, num_stripes: usize) -> u64 {
    let n = num_stripes as u64;
    match profile {
        Profile::Raid0 => n,
        Profile::Raid10 => n / 2,
        Profile::Raid5 | Profile::Raid6 => n - profile.parity(),
        _ => 1,
    }
    .max(1)
}

/// `value += addend` the way C adds a double to a `u64` lvalue: in floating point, then
/// truncated back to an integer.
fn add_f64(value: &mut u64, addend: f64) {
    *value = (*value as f64 + addend) as u64;
}

/// Computes the usage figures from their three sources with btrfs-progs' arithmetic
/// (`cmds/filesystem-usage.c`, `print_filesystem_usage_overall`): raw sums in integers (copies
/// × bytes), RAID5/6 chunks through their per-device chunk info, the ratios in floating
/// point, and each floating-point step truncated back to whole bytes where btrfs-progs stores
/// it in an integer, so every figure equals btrfs-progs' to the byte.
pub fn compute_usage(space: Vec<SpaceInfo>, devices: &[DeviceInfo], chunks: &[Chunk]) -> Usage {
    let mut device_size = 0u64;
    let mut device_slack = 0u64;
    let mut device_missing = 0u64;
    for d in devices {
        device_size += d.total_bytes.0;
        device_slack += d.slack().0;
        if d.missing {
            device_missing += d.total_bytes.0;
        }
    }
    let infos = chunk_infos(chunks);

    // Raw figures per slot (data, metadata, system): chunks and used, as integers.
    let mut r_chunks = [0u64; 3];
    let mut r_used = [0u64; 3];
    let mut l_chunks = [0u64; 3];
    let mut max_ratio = 1.0f64;
    // RAID5/6 first: raw size from the chunk infos, used in proportion.
    let ratios5 = raid56_used_ratios(&space, Profile::Raid5);
    let ratios6 = raid56_used_ratios(&space, Profile::Raid6);
    for (&(kind, profile, _, num_stripes), &size) in &infos {
        let ratios = match profile {
            Profile::Raid5 => &ratios5,
            Profile::Raid6 => &ratios6,
            _ => continue,
        };
        let data_stripes = (num_stripes as u64).saturating_sub(profile.parity()).max(1);
        max_ratio = max_ratio.max(num_stripes as f64 / data_stripes as f64);
        let Some(slot) = slot_of(kind) else { continue };
        let raw = size / data_stripes;
        r_chunks[slot] += raw;
        add_f64(&mut r_used[slot], raw as f64 * ratios[slot].unwrap_or(0.0));
    }
    let mut mixed = false;
    let (mut global_reserve, mut global_reserve_used) = (0, 0);
    for s in &space {
        // RAID5/6 were counted above (ratio 0 here, as in btrfs-progs).
        let copies = if s.profile.parity() > 0 {
            0
        } else {
            s.profile.copies()
        };
        max_ratio = max_ratio.max(copies as f64);
        let (data, meta, system) = match s.kind {
            BlockGroupKind::GlobalReserve => {
                global_reserve = s.total.0;
                global_reserve_used = s.used.0;
                (false, false, false)
            }
            BlockGroupKind::Mixed => {
                mixed = true;
                (true, true, false)
            }
            BlockGroupKind::Data => (true, false, false),
            BlockGroupKind::Metadata => (false, true, false),
            BlockGroupKind::System => (false, false, true),
        };
        for (slot, counted) in [data, meta, system].into_iter().enumerate() {
            if counted {
                r_used[slot] += s.used.0 * copies;
                r_chunks[slot] += s.total.0 * copies;
                l_chunks[slot] += s.total.0;
            }
        }
    }
    let [r_data_chunks, r_meta_chunks, r_sys_chunks] = r_chunks;
    let [r_data_used, r_meta_used, r_sys_used] = r_used;
    let mut r_total_chunks = r_data_chunks + r_sys_chunks;
    let mut r_total_used = r_data_used + r_sys_used;
    if !mixed {
        r_total_chunks += r_meta_chunks;
        r_total_used += r_meta_used;
    }
    let r_total_unused = device_size.saturating_sub(r_total_chunks);
    let ratio = |raw: u64, logical: u64| {
        if logical > 0 {
            raw as f64 / logical as f64
        } else {
            1.0
        }
    };
    let data_ratio = ratio(r_data_chunks, l_chunks[0]);
    let metadata_ratio = if mixed {
        data_ratio
    } else {
        ratio(r_meta_chunks, l_chunks[1])
    };
    let mut free_estimated = (r_data_chunks.saturating_sub(r_data_used) as f64 / data_ratio) as u64;
    if mixed {
        free_estimated =
            free_estimated.saturating_sub(global_reserve.saturating_sub(global_reserve_used));
    }
    let mut free_min = free_estimated;
    if r_total_unused >= MIN_UNALLOCATED {
        add_f64(&mut free_estimated, r_total_unused as f64 / data_ratio);
        add_f64(&mut free_min, r_total_unused as f64 / max_ratio);
    }

    let devices = devices
        .iter()
        .map(|d| {
            let mut per: BTreeMap<(BlockGroupKind, Profile), u64> = BTreeMap::new();
            for (&(kind, profile, devid, num_stripes), &size) in &infos {
                if devid == d.devid {
                    *per.entry((kind, profile)).or_default() +=
                        size / data_stripes(profile, num_stripes);
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
                missing: d.missing,
                size: d.total_bytes,
                slack: d.slack(),
                allocated,
                unallocated: ByteSize(d.total_bytes.0.saturating_sub(total)),
            }
        })
        .collect();

    Usage {
        device_size: ByteSize(device_size),
        device_allocated: ByteSize(r_total_chunks),
        device_unallocated: ByteSize(r_total_unused),
        device_missing: ByteSize(device_missing),
        device_slack: ByteSize(device_slack),
        used: ByteSize(r_total_used),
        free_estimated: ByteSize(free_estimated),
        free_min: ByteSize(free_min),
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
            Err(e) if matches!(e.kind(), crate::ErrorKind::PermissionDenied { .. }) => {
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
    /// tree); without it the error is [`ErrorKind::PermissionDenied`](crate::ErrorKind::PermissionDenied).
    pub fn usage(&self) -> Result<Usage> {
        let chunks = self.chunks()?;
        let devices = self.devices()?;
        let space = self.space_info()?;
        Ok(compute_usage(space, &devices, &chunks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const MIB: u64 = 1 << 20;

    fn space(kind: BlockGroupKind, profile: Profile, total: u64, used: u64) -> SpaceInfo {
        SpaceInfo {
            kind,
            profile,
            total: ByteSize(total),
            used: ByteSize(used),
        }
    }

    #[test]
    fn free_estimate_truncates_where_btrfs_progs_does() {
        // Data in single and dup chunks at once: a data ratio of 1.5, and fractions on both
        // terms of the free estimate.
        let (t1, t2, u2) = (8 * MIB, 8 * MIB, 3 * MIB + 4096);
        let infos = vec![
            space(BlockGroupKind::Data, Profile::Single, t1, 0),
            space(BlockGroupKind::Data, Profile::Dup, t2, u2),
            space(BlockGroupKind::Metadata, Profile::Dup, 64 * MIB, MIB),
            space(BlockGroupKind::System, Profile::Dup, 8 * MIB, 16384),
        ];
        let device = DeviceInfo {
            devid: 1,
            uuid: Uuid::nil(),
            path: "/dev/x".into(),
            missing: false,
            total_bytes: ByteSize(2048 * MIB),
            used_bytes: ByteSize(0),
            device_size: Some(ByteSize(2048 * MIB + 4096)),
        };
        let u = compute_usage(infos, &[device], &[]);
        let (raw_chunks, raw_used) = (t1 + 2 * t2, 2 * u2);
        let ratio = raw_chunks as f64 / (t1 + t2) as f64;
        let unused = 2048 * MIB - raw_chunks - 2 * 64 * MIB - 2 * 8 * MIB;
        // btrfs-progs: u64 free = (raw chunks - raw used) / ratio; then free += unused / ratio.
        let first = ((raw_chunks - raw_used) as f64 / ratio) as u64;
        let progs = (first as f64 + unused as f64 / ratio) as u64;
        let summed_first = ((raw_chunks - raw_used) as f64 / ratio + unused as f64 / ratio) as u64;
        assert_ne!(
            progs, summed_first,
            "the case must tell the two orders apart"
        );
        assert_eq!(u.free_estimated.bytes(), progs);
        assert_eq!(u.device_unallocated.bytes(), unused);
        assert_eq!(u.device_slack.bytes(), 4096);
        assert_eq!(u.data_ratio, ratio);
    }
}
