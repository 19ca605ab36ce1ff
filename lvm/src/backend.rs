//! The one API both backends implement, and the request types it takes.

use crate::error::{Error, ObjectKind, Result};
use crate::model::{LogicalVolume, PhysicalVolume, Report, VolumeGroup};
use crate::size::Bytes;
use std::path::{Path, PathBuf};

/// How big a new LV should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LvSize {
    /// At least this many bytes (lvm2 rounds up to whole extents).
    Bytes(Bytes),
    /// Exactly this many extents.
    Extents(u64),
    /// This percentage (1..=100) of the VG's free space.
    PercentFree(u8),
}

/// A request to create a linear LV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvCreate {
    /// The size.
    pub size: LvSize,
    /// Activate it after creation. `false` writes metadata only (`-an -Zn`), which works without
    /// device-mapper.
    pub activate: bool,
    /// Zero the first 4 KiB when active (`-Z y`). Ignored when not activating.
    pub zero: bool,
}

impl LvCreate {
    /// An active, zeroed LV of at least `size` bytes.
    pub fn size(size: Bytes) -> Self {
        LvCreate {
            size: LvSize::Bytes(size),
            activate: true,
            zero: true,
        }
    }

    /// An active, zeroed LV of `count` extents.
    pub fn extents(count: u64) -> Self {
        LvCreate {
            size: LvSize::Extents(count),
            ..LvCreate::size(Bytes(0))
        }
    }

    /// An active, zeroed LV using `percent` of the VG's free space.
    pub fn percent_free(percent: u8) -> Self {
        LvCreate {
            size: LvSize::PercentFree(percent),
            ..LvCreate::size(Bytes(0))
        }
    }

    /// Writes metadata only: no activation, no zeroing (works without device-mapper).
    pub fn inactive(mut self) -> Self {
        self.activate = false;
        self.zero = false;
        self
    }
}

/// A request to create a thin pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinPoolCreate {
    /// The pool's data size.
    pub size: Bytes,
}

/// The target of a resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewSize {
    /// Exactly this size (rounded up to whole extents).
    To(Bytes),
    /// The current size plus this much.
    Add(Bytes),
    /// The current size minus this much (only for [`LvmBackend::lv_resize`]).
    Subtract(Bytes),
}

impl std::str::FromStr for NewSize {
    type Err = crate::size::SizeParseError;

    /// `10g` → `To`, `+1g` → `Add`, `-1g` → `Subtract`.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        if let Some(rest) = s.strip_prefix('+') {
            Ok(NewSize::Add(rest.parse()?))
        } else if let Some(rest) = s.strip_prefix('-') {
            Ok(NewSize::Subtract(rest.parse()?))
        } else {
            Ok(NewSize::To(s.parse()?))
        }
    }
}

/// The set of block devices LVM may look at. Everything else is invisible to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confinement {
    devices: Vec<PathBuf>,
}

impl Confinement {
    /// Confines LVM to these devices.
    pub fn new<I, P>(devices: I) -> Result<Self>
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        let devices: Vec<PathBuf> = devices.into_iter().map(Into::into).collect();
        for d in &devices {
            let text = d.to_str().unwrap_or("");
            if !d.is_absolute() || text.is_empty() || text.contains([',', '"', '|', '\n']) {
                return Err(Error::InvalidRequest {
                    operation: "confine LVM to devices".into(),
                    reason: format!(
                        "device {d:?} must be an absolute UTF-8 path without ',', '\"', '|' or newlines"
                    ),
                });
            }
        }
        Ok(Confinement { devices })
    }

    /// The devices.
    pub fn devices(&self) -> &[PathBuf] {
        &self.devices
    }

    /// An lvm.conf `devices { global_filter = [...] }` accepting only these devices: what an
    /// lvmdbusd started for these devices needs in its `LVM_SYSTEM_DIR/lvm.conf`.
    pub fn global_filter(&self) -> String {
        filter_list(&self.devices)
    }
}

/// An lvm.conf filter list accepting exactly `devices` and rejecting everything else:
/// `[ "a|^/dev/loop3$|", "r|.*|" ]`.
pub(crate) fn filter_list(devices: &[PathBuf]) -> String {
    let rules: Vec<String> = devices
        .iter()
        .map(|d| format!("\"a|^{}$|\"", regex_escape(&d.to_string_lossy())))
        .chain(["\"r|.*|\"".to_owned()])
        .collect();
    format!("[ {} ]", rules.join(", "))
}

/// Escapes regex metacharacters for an lvm2 filter.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Computes a resize target in bytes, rounded up to whole extents as lvm2 does.
///
/// Returns `Ok(None)` when the rounded target equals the current size: resizing to the current
/// size is a no-op success. `grow_only` refuses shrinking (lvextend).
pub fn resize_target(
    operation: &str,
    current: Bytes,
    extent_size: Bytes,
    request: NewSize,
    grow_only: bool,
) -> Result<Option<Bytes>> {
    let refuse = |reason: String| Error::InvalidRequest {
        operation: operation.to_owned(),
        reason,
    };
    let target = match request {
        NewSize::To(b) => b,
        NewSize::Add(b) => current
            .checked_add(b)
            .ok_or_else(|| refuse("the new size overflows".into()))?,
        NewSize::Subtract(b) => Bytes(
            current
                .get()
                .checked_sub(b.get())
                .ok_or_else(|| refuse(format!("cannot shrink {current} by {b}")))?,
        ),
    }
    .round_up_to(extent_size);
    if target == current {
        return Ok(None);
    }
    if target.get() == 0 {
        return Err(refuse(
            "the new size would be zero; remove the LV instead".into(),
        ));
    }
    if grow_only && target < current {
        return Err(refuse(format!(
            "extend can only grow: the LV is {current} and the target is {target}; use resize to shrink"
        )));
    }
    Ok(Some(target))
}

/// The LVM API. [`crate::CliBackend`] implements it with the lvm2 tools, `DbusBackend`
/// (feature `dbus`) with lvmdbusd. Names are validated before anything is run.
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
    fn pv(&self, device: &Path) -> Result<PhysicalVolume> {
        self.report()?.find_pv(device).cloned()
    }

    /// The VG named `name`.
    fn vg(&self, name: &str) -> Result<VolumeGroup> {
        crate::name::validate_vg_name(name)?;
        self.report()?.find_vg(name).cloned()
    }

    /// The LV `vg/name`.
    fn lv(&self, vg: &str, name: &str) -> Result<LogicalVolume> {
        crate::name::validate_lv_name(vg, name)?;
        let report = self.report()?;
        if report.vg(vg).is_none() {
            return Err(Error::NotFound {
                operation: format!("look up LV {vg}/{name}"),
                object: ObjectKind::VolumeGroup,
                name: vg.to_owned(),
            });
        }
        report.find_lv(vg, name).cloned()
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_targets_round_and_detect_no_ops() {
        let ext = Bytes::mib(4);
        let cur = Bytes::mib(12);
        assert_eq!(
            resize_target("t", cur, ext, NewSize::To(Bytes::mib(12)), true).unwrap(),
            None
        );
        assert_eq!(
            resize_target("t", cur, ext, NewSize::To(Bytes::mib(9)), true).unwrap(),
            None
        );
        assert_eq!(
            resize_target("t", cur, ext, NewSize::Add(Bytes(1)), true).unwrap(),
            Some(Bytes::mib(16))
        );
        assert_eq!(
            resize_target("t", cur, ext, NewSize::Add(Bytes(0)), true).unwrap(),
            None
        );
        assert!(resize_target("t", cur, ext, NewSize::To(Bytes::mib(4)), true).is_err());
        assert_eq!(
            resize_target("t", cur, ext, NewSize::Subtract(Bytes::mib(4)), false).unwrap(),
            Some(Bytes::mib(8))
        );
        assert!(resize_target("t", cur, ext, NewSize::Subtract(Bytes::mib(12)), false).is_err());
    }

    #[test]
    fn parses_new_sizes_and_confinement() {
        assert_eq!(
            "+1g".parse::<NewSize>().unwrap(),
            NewSize::Add(Bytes::gib(1))
        );
        assert_eq!("2g".parse::<NewSize>().unwrap(), NewSize::To(Bytes::gib(2)));
        assert_eq!(
            "-1m".parse::<NewSize>().unwrap(),
            NewSize::Subtract(Bytes::mib(1))
        );
        let c = Confinement::new(["/dev/loop3", "/dev/loop10"]).unwrap();
        assert_eq!(
            c.global_filter(),
            r#"[ "a|^/dev/loop3$|", "a|^/dev/loop10$|", "r|.*|" ]"#
        );
        assert!(Confinement::new(["/dev/a,b"]).is_err());
        assert!(Confinement::new(["loop0"]).is_err());
    }
}
