//! The one API both backends implement, and the front that implements it for both: validation,
//! operation names, the device-mapper check, size rounding and read-back, over each backend's
//! [`Driver`].

use crate::change::{self, Change, Driver};
use crate::error::{Error, ObjectKind, Result};
use crate::model::{LogicalVolume, PhysicalVolume, Report, VolumeGroup};
use crate::name::{validate_lv_name, validate_vg_name};
use crate::request::{resize_target, LvCreate, LvSize, NewSize, ResizeMode, ThinPoolCreate};
use crate::size::{Bytes, SECTOR};
use std::path::{Path, PathBuf};

/// The LVM API. [`crate::CliBackend`] implements it with the lvm2 tools, `DbusBackend`
/// (feature `dbus`) with lvmdbusd, through one front (below) that both share: names and devices
/// are validated before anything is run, activation is refused without device-mapper, sizes
/// are rounded up to whole 512-byte sectors, and every change is read back.
pub trait LvmBackend: Send + Sync {
    /// A snapshot of every PV, VG and LV, taken at once.
    fn report(&self) -> Result<Report>;

    /// All physical volumes.
    fn pvs(&self) -> Result<Vec<PhysicalVolume>> {
        Ok(self.report()?.pvs)
    }

    /// All volume groups.
    fn vgs(&self) -> Result<Vec<VolumeGroup>> {
        Ok(self.report()?.vgs)
    }

    /// All logical volumes (internal ones included).
    fn lvs(&self) -> Result<Vec<LogicalVolume>> {
        Ok(self.report()?.lvs)
    }

    /// The PV on `device`.
    fn pv(&self, device: &Path) -> Result<PhysicalVolume>;

    /// The VG named `name`.
    fn vg(&self, name: &str) -> Result<VolumeGroup>;

    /// The LV `vg/name`.
    fn lv(&self, vg: &str, name: &str) -> Result<LogicalVolume>;

    /// The VG's free space.
    fn vg_free(&self, vg: &str) -> Result<Bytes> {
        Ok(self.vg(vg)?.free)
    }

    /// Whether the LV is active in the kernel.
    fn lv_is_active(&self, vg: &str, name: &str) -> Result<bool> {
        Ok(self.lv(vg, name)?.active)
    }

    /// The LV's device path (`/dev/VG/LV`; it exists only while the LV is active).
    fn lv_path(&self, vg: &str, name: &str) -> Result<PathBuf> {
        Ok(self.lv(vg, name)?.path)
    }

    /// `pvcreate DEVICE`.
    fn pv_create(&self, device: &Path) -> Result<PhysicalVolume>;

    /// `pvremove DEVICE`.
    fn pv_remove(&self, device: &Path) -> Result<()>;

    /// `vgcreate [-s EXTENT_SIZE] NAME DEVICES...`.
    fn vg_create(
        &self,
        name: &str,
        devices: &[&Path],
        extent_size: Option<Bytes>,
    ) -> Result<VolumeGroup>;

    /// `vgextend NAME DEVICES...`.
    fn vg_extend(&self, name: &str, devices: &[&Path]) -> Result<VolumeGroup>;

    /// `vgremove NAME` (with every LV in it).
    fn vg_remove(&self, name: &str) -> Result<()>;

    /// `lvcreate`: a linear LV. Returns it as created, with the rounded-up size it got.
    fn lv_create(&self, vg: &str, name: &str, request: LvCreate) -> Result<LogicalVolume>;

    /// `lvextend`: grow only. Extending to the current size is a no-op success.
    fn lv_extend(&self, vg: &str, name: &str, size: NewSize) -> Result<LogicalVolume>;

    /// `lvresize`: grow or shrink (data past the new end is lost). Same size is a no-op success.
    fn lv_resize(&self, vg: &str, name: &str, size: NewSize) -> Result<LogicalVolume>;

    /// `lvremove VG/NAME`.
    fn lv_remove(&self, vg: &str, name: &str) -> Result<()>;

    /// `lvchange -ay VG/NAME`. Needs device-mapper.
    fn lv_activate(&self, vg: &str, name: &str) -> Result<()>;

    /// `lvchange -an VG/NAME`.
    fn lv_deactivate(&self, vg: &str, name: &str) -> Result<()>;

    /// `lvcreate -s -L SIZE -n NAME VG/ORIGIN`: a classic (copy-on-write) snapshot.
    fn snapshot_create(
        &self,
        vg: &str,
        origin: &str,
        name: &str,
        size: Bytes,
    ) -> Result<LogicalVolume>;

    /// `lvcreate --type thin-pool`: a thin pool.
    fn thin_pool_create(
        &self,
        vg: &str,
        name: &str,
        request: ThinPoolCreate,
    ) -> Result<LogicalVolume>;

    /// `lvcreate --type thin`: a thin LV of `virtual_size` in `pool`.
    fn thin_create(
        &self,
        vg: &str,
        pool: &str,
        name: &str,
        virtual_size: Bytes,
    ) -> Result<LogicalVolume>;
}

/// The LV `vg/name` as the VG's report has it after `operation` made or changed it.
fn read_back<D: Driver + ?Sized>(
    driver: &D,
    operation: &str,
    vg: &str,
    name: &str,
) -> Result<LogicalVolume> {
    driver
        .read_vg_report(vg)?
        .lv(vg, name)
        .cloned()
        .ok_or_else(|| Error::Parse {
            operation: format!("{operation}: read back LV {vg}/{name}"),
            detail: "lvm2 reported success but the LV is not in the report".into(),
        })
}

/// Rounds a size up to whole 512-byte sectors, the unit lvm2 and lvmdbusd take.
fn sectors(size: Bytes) -> Bytes {
    size.round_up_to(Bytes(SECTOR))
}

/// Runs `change` (which creates the LV `vg/name`) and reads the new LV back.
fn create<D: Driver + ?Sized>(
    driver: &D,
    vg: &str,
    name: &str,
    change: Change<'_>,
) -> Result<LogicalVolume> {
    let operation = change::run(driver, &change)?;
    read_back(driver, &operation, vg, name)
}

/// `lvextend`/`lvresize`: the target from the current size and extent size, nothing run when it
/// is the current size, and after the change a check that the LV really moved there.
fn resize<D: Driver + ?Sized>(
    driver: &D,
    vg: &str,
    name: &str,
    size: NewSize,
    mode: ResizeMode,
) -> Result<LogicalVolume> {
    validate_lv_name(vg, name)?;
    let operation = format!("{} {vg}/{name}", mode.command());
    let report = driver.read_vg_report(vg)?;
    let extent = report.find_vg(vg)?.extent_size;
    let before = report.find_lv(vg, name)?.clone();
    let Some(target) = resize_target(&operation, before.size, extent, size, mode)? else {
        return Ok(before);
    };
    let change = Change::LvResize {
        vg,
        name,
        target,
        mode,
    };
    change::run(driver, &change)?;
    let after = read_back(driver, &operation, vg, name)?;
    // lvm2 may round further (stripes), never the other way: a resize that did not move the LV
    // towards the target is a failure, whatever lvm2 said.
    let reached = if target > before.size {
        after.size >= target
    } else {
        after.size < before.size
    };
    if !reached {
        return Err(Error::SizeMismatch {
            operation,
            lv: format!("{vg}/{name}"),
            expected: target,
            found: after.size,
        });
    }
    Ok(after)
}

impl<D: Driver> LvmBackend for D {
    fn report(&self) -> Result<Report> {
        self.read_report()
    }

    fn pv(&self, device: &Path) -> Result<PhysicalVolume> {
        self.read_report()?.find_pv(device).cloned()
    }

    fn vg(&self, name: &str) -> Result<VolumeGroup> {
        validate_vg_name(name)?;
        self.read_vg_report(name)?.find_vg(name).cloned()
    }

    fn lv(&self, vg: &str, name: &str) -> Result<LogicalVolume> {
        validate_lv_name(vg, name)?;
        let report = self.read_vg_report(vg)?;
        if report.vg(vg).is_none() {
            return Err(Error::NotFound {
                operation: format!("look up LV {vg}/{name}"),
                object: ObjectKind::VolumeGroup,
                name: vg.to_owned(),
            });
        }
        report.find_lv(vg, name).cloned()
    }

    fn pv_create(&self, device: &Path) -> Result<PhysicalVolume> {
        change::run(self, &Change::PvCreate { device })?;
        self.pv(device)
    }

    fn pv_remove(&self, device: &Path) -> Result<()> {
        change::run(self, &Change::PvRemove { device }).map(drop)
    }

    fn vg_create(
        &self,
        name: &str,
        devices: &[&Path],
        extent_size: Option<Bytes>,
    ) -> Result<VolumeGroup> {
        let extent_size = extent_size.map(sectors);
        change::run(
            self,
            &Change::VgCreate {
                vg: name,
                devices,
                extent_size,
            },
        )?;
        self.vg(name)
    }

    fn vg_extend(&self, name: &str, devices: &[&Path]) -> Result<VolumeGroup> {
        change::run(self, &Change::VgExtend { vg: name, devices })?;
        self.vg(name)
    }

    fn vg_remove(&self, name: &str) -> Result<()> {
        change::run(self, &Change::VgRemove { vg: name }).map(drop)
    }

    fn lv_create(&self, vg: &str, name: &str, request: LvCreate) -> Result<LogicalVolume> {
        let request = LvCreate {
            size: match request.size {
                LvSize::Bytes(b) => LvSize::Bytes(sectors(b)),
                other => other,
            },
            zero: request.activate && request.zero,
            ..request
        };
        create(self, vg, name, Change::LvCreate { vg, name, request })
    }

    fn lv_extend(&self, vg: &str, name: &str, size: NewSize) -> Result<LogicalVolume> {
        resize(self, vg, name, size, ResizeMode::Extend)
    }

    fn lv_resize(&self, vg: &str, name: &str, size: NewSize) -> Result<LogicalVolume> {
        resize(self, vg, name, size, ResizeMode::Resize)
    }

    fn lv_remove(&self, vg: &str, name: &str) -> Result<()> {
        change::run(self, &Change::LvRemove { vg, name }).map(drop)
    }

    fn lv_activate(&self, vg: &str, name: &str) -> Result<()> {
        let change = Change::LvActivation {
            vg,
            name,
            active: true,
        };
        change::run(self, &change).map(drop)
    }

    fn lv_deactivate(&self, vg: &str, name: &str) -> Result<()> {
        let change = Change::LvActivation {
            vg,
            name,
            active: false,
        };
        change::run(self, &change).map(drop)
    }

    fn snapshot_create(
        &self,
        vg: &str,
        origin: &str,
        name: &str,
        size: Bytes,
    ) -> Result<LogicalVolume> {
        let change = Change::Snapshot {
            vg,
            origin,
            name,
            size: sectors(size),
        };
        create(self, vg, name, change)
    }

    fn thin_pool_create(
        &self,
        vg: &str,
        name: &str,
        request: ThinPoolCreate,
    ) -> Result<LogicalVolume> {
        let change = Change::ThinPool {
            vg,
            name,
            size: sectors(request.size),
        };
        create(self, vg, name, change)
    }

    fn thin_create(
        &self,
        vg: &str,
        pool: &str,
        name: &str,
        virtual_size: Bytes,
    ) -> Result<LogicalVolume> {
        let change = Change::Thin {
            vg,
            pool,
            name,
            virtual_size: sectors(virtual_size),
        };
        create(self, vg, name, change)
    }
}
