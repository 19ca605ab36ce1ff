//! The LVM objects as the crate reports them: PVs, VGs, LVs, their segments, and the snapshot of
//! all of them taken at once.

use crate::attr::{LvAttr, PvAttr, VgAttr};
use crate::error::{Error, ObjectKind, Result};
use crate::size::Bytes;
use std::path::PathBuf;

/// A physical volume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PhysicalVolume {
    /// The device path, e.g. `/dev/loop3`.
    pub name: PathBuf,
    /// The PV UUID.
    pub uuid: String,
    /// The VG it belongs to (`None` for an orphan PV).
    pub vg_name: Option<String>,
    /// The size of the underlying device.
    pub dev_size: Bytes,
    /// The usable size (whole extents once in a VG).
    pub size: Bytes,
    /// Unallocated space.
    pub free: Bytes,
    /// Allocated space.
    pub used: Bytes,
    /// Where the first extent starts on the device.
    pub pe_start: Bytes,
    /// The number of extents.
    pub extent_count: u64,
    /// The number of allocated extents.
    pub allocated_extent_count: u64,
    /// The decoded `pv_attr`.
    pub attr: PvAttr,
    /// Tags.
    pub tags: Vec<String>,
    /// The PV's segments: which extent ranges belong to which LV (or are free).
    pub segments: Vec<PvSegment>,
}

/// A range of a PV's extents, allocated to one LV or free.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PvSegment {
    /// The first extent.
    pub start_extent: u64,
    /// The number of extents.
    pub extent_count: u64,
    /// The UUID of the LV using it (`None` if free).
    pub lv_uuid: Option<String>,
}

/// A volume group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VolumeGroup {
    /// The VG name.
    pub name: String,
    /// The VG UUID.
    pub uuid: String,
    /// The total size.
    pub size: Bytes,
    /// Unallocated space.
    pub free: Bytes,
    /// The extent size.
    pub extent_size: Bytes,
    /// The number of extents.
    pub extent_count: u64,
    /// The number of free extents.
    pub free_extent_count: u64,
    /// The number of PVs.
    pub pv_count: u64,
    /// The number of LVs.
    pub lv_count: u64,
    /// The number of missing PVs.
    pub missing_pv_count: u64,
    /// The metadata sequence number.
    pub seqno: u64,
    /// The decoded `vg_attr`.
    pub attr: VgAttr,
    /// Tags.
    pub tags: Vec<String>,
}

/// A logical volume.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LogicalVolume {
    /// The VG name.
    pub vg_name: String,
    /// The LV name.
    pub name: String,
    /// The LV UUID.
    pub uuid: String,
    /// The device path, `/dev/VG/LV` (exists only while active).
    pub path: PathBuf,
    /// The device-mapper path, `/dev/mapper/VG-LV`.
    pub dm_path: PathBuf,
    /// The size.
    pub size: Bytes,
    /// The decoded `lv_attr`.
    pub attr: LvAttr,
    /// Whether the LV is active in the kernel.
    pub active: bool,
    /// The layout, e.g. `["linear"]`, `["thin", "pool"]`.
    pub layout: Vec<String>,
    /// The role, e.g. `["public"]`, `["private", "thin", "pool", "data"]`.
    pub role: Vec<String>,
    /// The snapshot origin (for a snapshot or thin snapshot).
    pub origin: Option<String>,
    /// The pool (for a thin LV).
    pub pool_lv: Option<String>,
    /// Percentage of data in use (thin pools, thin LVs, snapshots), when known.
    pub data_percent: Option<f64>,
    /// Tags.
    pub tags: Vec<String>,
    /// The LV's segments.
    pub segments: Vec<Segment>,
}

impl LogicalVolume {
    /// `VG/LV`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.vg_name, self.name)
    }

    /// Whether this LV is visible to users (not an internal sub-LV like `[pool_tdata]`).
    pub fn is_public(&self) -> bool {
        self.role.iter().any(|r| r == "public")
    }
}

/// One segment of an LV.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Segment {
    /// The segment type, e.g. `linear`, `striped`, `thin-pool`, `thin`, `snapshot`.
    pub segtype: String,
    /// Where the segment starts in the LV.
    pub start: Bytes,
    /// The first logical extent.
    pub start_extent: u64,
    /// The segment size.
    pub size: Bytes,
    /// The number of extents.
    pub extent_count: u64,
    /// The number of stripes.
    pub stripes: u64,
    /// The devices the segment maps to, with their first physical extent.
    pub devices: Vec<SegmentDevice>,
}

/// One device of a segment: `devices` entries such as `/dev/loop3(0)`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SegmentDevice {
    /// The PV path, or the sub-LV name for stacked segments (e.g. `pool_tdata`).
    pub device: String,
    /// The first extent on that device.
    pub start_extent: u64,
}

/// Every PV, VG and LV that lvm2 saw, taken with one `lvm fullreport` process.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Report {
    /// All PVs, orphans included.
    pub pvs: Vec<PhysicalVolume>,
    /// All VGs.
    pub vgs: Vec<VolumeGroup>,
    /// All LVs, internal ones included (see [`LogicalVolume::is_public`]).
    pub lvs: Vec<LogicalVolume>,
}

impl Report {
    /// The VG with this name.
    pub fn vg(&self, name: &str) -> Option<&VolumeGroup> {
        self.vgs.iter().find(|v| v.name == name)
    }

    /// The LV `vg/name`.
    pub fn lv(&self, vg: &str, name: &str) -> Option<&LogicalVolume> {
        self.lvs.iter().find(|l| l.vg_name == vg && l.name == name)
    }

    /// The PV on this device path.
    pub fn pv(&self, device: &std::path::Path) -> Option<&PhysicalVolume> {
        self.pvs.iter().find(|p| p.name == device)
    }

    /// The PV on this device path, or [`Error::NotFound`] naming the lookup.
    pub fn find_pv(&self, device: &std::path::Path) -> Result<&PhysicalVolume> {
        self.pv(device).ok_or_else(|| Error::NotFound {
            operation: format!("look up PV {}", device.display()),
            object: ObjectKind::PhysicalVolume,
            name: device.display().to_string(),
        })
    }

    /// The VG with this name, or [`Error::NotFound`] naming the lookup.
    pub fn find_vg(&self, name: &str) -> Result<&VolumeGroup> {
        self.vg(name).ok_or_else(|| Error::NotFound {
            operation: format!("look up VG {name}"),
            object: ObjectKind::VolumeGroup,
            name: name.to_owned(),
        })
    }

    /// The LV `vg/name`, or [`Error::NotFound`] naming the LV.
    pub fn find_lv(&self, vg: &str, name: &str) -> Result<&LogicalVolume> {
        self.lv(vg, name).ok_or_else(|| Error::NotFound {
            operation: format!("look up LV {vg}/{name}"),
            object: ObjectKind::LogicalVolume,
            name: format!("{vg}/{name}"),
        })
    }
}
