//! The lvmdbusd backend: the same [`LvmBackend`] API over D-Bus (feature `dbus`).
//!
//! Uses lvmdbusd's Manager/Vg/Lv/Job object model: every change is called with a `tmo`; if the
//! daemon hands back a Job, it is waited for, its result read, and the Job removed. The daemon
//! caches LVM state and goes stale after changes made outside it, so reports and failed lookups
//! call `Manager.Refresh` first. Confinement is the daemon's own: start it with an
//! `LVM_SYSTEM_DIR` whose lvm.conf has a `global_filter` (see [`Confinement::global_filter`]).
//!
//! [`Confinement::global_filter`]: crate::Confinement::global_filter

mod job;
mod value;

use crate::backend::{resize_target, LvCreate, LvSize, LvmBackend, NewSize, ThinPoolCreate};
use crate::classify::Target;
use crate::cli::device_mapper_loaded;
use crate::error::{Error, ObjectKind, Result};
use crate::model::{LogicalVolume, PhysicalVolume, Report, VolumeGroup};
use crate::name::{validate_lv_name, validate_vg_name};
use crate::size::Bytes;
use job::{call, finish};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, Value};

/// The default `tmo` (seconds lvmdbusd works on a change before handing back a Job).
pub const DEFAULT_TMO_SECONDS: i32 = 5;

/// The method-call timeout of [`DbusBackend::at_address`]. Changes are called with a short
/// `tmo` and then polled as Jobs, so no single call should take this long.
pub const DEFAULT_METHOD_TIMEOUT: Duration = Duration::from_secs(120);

const MANAGER_IFACE: &str = "com.redhat.lvmdbus1.Manager";
const PV_IFACE: &str = "com.redhat.lvmdbus1.Pv";
const VG_IFACE: &str = "com.redhat.lvmdbus1.Vg";
const LV_IFACE: &str = "com.redhat.lvmdbus1.Lv";
const THIN_POOL_IFACE: &str = "com.redhat.lvmdbus1.ThinPool";

/// Options passed to lvmdbusd, which turns each into `--key value` on the lvm2 command line.
type Options<'a> = HashMap<&'a str, Value<'a>>;

/// LVM through lvmdbusd.
#[derive(Debug, Clone)]
pub struct DbusBackend {
    conn: Connection,
    device_mapper: bool,
    tmo: i32,
}

impl DbusBackend {
    /// Connects to lvmdbusd on the system bus.
    pub fn system() -> Result<Self> {
        Self::from_connection(Connection::system().map_err(|e| connect_error("system bus", e))?)
    }

    /// Connects to lvmdbusd on the session bus (`DBUS_SESSION_BUS_ADDRESS`), where it runs with
    /// `LVMDBUSD_USE_SESSION=1` (lvm2 2.03.16; `LVM_DBUSD_USE_SESSION` from 2.03.17).
    pub fn session() -> Result<Self> {
        Self::from_connection(Connection::session().map_err(|e| connect_error("session bus", e))?)
    }

    /// Connects to lvmdbusd on the bus at `address`, e.g. `unix:path=/run/test/bus`, with a
    /// method-call timeout of [`DEFAULT_METHOD_TIMEOUT`].
    pub fn at_address(address: &str) -> Result<Self> {
        Self::at_address_with_timeout(address, DEFAULT_METHOD_TIMEOUT)
    }

    /// Like [`DbusBackend::at_address`], with a given method-call timeout (a daemon that never
    /// answers then fails the call instead of blocking forever).
    pub fn at_address_with_timeout(address: &str, timeout: Duration) -> Result<Self> {
        let conn = zbus::blocking::connection::Builder::address(address)
            .map(|b| b.method_timeout(timeout))
            .and_then(|b| b.build())
            .map_err(|e| connect_error(address, e))?;
        Self::from_connection(conn)
    }

    /// Uses an existing connection.
    pub fn from_connection(conn: Connection) -> Result<Self> {
        Ok(DbusBackend {
            conn,
            device_mapper: device_mapper_loaded(),
            tmo: DEFAULT_TMO_SECONDS,
        })
    }

    /// Overrides device-mapper detection (activation is refused without it).
    pub fn with_device_mapper(mut self, available: bool) -> Self {
        self.device_mapper = available;
        self
    }

    /// Sets the `tmo` passed with every change: how many seconds lvmdbusd works on it before
    /// handing back a Job to poll (0: a Job at once; -1: block until done, no Job).
    pub fn with_tmo(mut self, seconds: i32) -> Self {
        self.tmo = seconds;
        self
    }

    /// lvmdbusd's API version (`Manager.Version`); also a readiness probe.
    pub fn daemon_version(&self) -> Result<String> {
        let v = job::property(
            &self.conn,
            "read lvmdbusd version",
            job::MANAGER,
            MANAGER_IFACE,
            "Version",
        )?;
        String::try_from(v).map_err(|e| Error::Parse {
            operation: "read lvmdbusd version".into(),
            detail: e.to_string(),
        })
    }

    /// `Manager.Refresh`: makes the daemon re-read LVM state after outside changes.
    pub fn refresh(&self) -> Result<()> {
        let _changes: u64 = call(
            &self.conn,
            "refresh lvmdbusd",
            &Target::all(),
            job::MANAGER,
            MANAGER_IFACE,
            "Refresh",
            &(),
        )?;
        Ok(())
    }

    /// The object path of `key` (`VG`, `VG/LV` or a PV device), refreshing once on a miss.
    fn lookup(&self, operation: &str, object: ObjectKind, key: &str) -> Result<String> {
        let find = || -> Result<String> {
            let path: OwnedObjectPath = call(
                &self.conn,
                operation,
                &Target {
                    object,
                    name: key.to_owned(),
                    vg: None,
                },
                job::MANAGER,
                MANAGER_IFACE,
                "LookUpByLvmId",
                &(key,),
            )?;
            Ok(path.to_string())
        };
        let mut path = find()?;
        if path == "/" {
            self.refresh()?;
            path = find()?;
        }
        if path == "/" {
            return Err(Error::NotFound {
                operation: operation.to_owned(),
                object,
                name: key.to_owned(),
            });
        }
        Ok(path)
    }

    fn lv_lookup(&self, operation: &str, vg: &str, name: &str) -> Result<String> {
        self.lookup(operation, ObjectKind::VolumeGroup, vg)?;
        self.lookup(
            operation,
            ObjectKind::LogicalVolume,
            &format!("{vg}/{name}"),
        )
    }

    /// Calls a method that returns `(object, job)` and finishes the job.
    fn call_create<B>(
        &self,
        operation: &str,
        target: &Target,
        path: &str,
        iface: &str,
        method: &str,
        body: &B,
    ) -> Result<Option<String>>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let (object, job): (OwnedObjectPath, OwnedObjectPath) =
            call(&self.conn, operation, target, path, iface, method, body)?;
        finish(&self.conn, operation, method, target, object, job)
    }

    /// Calls a method that creates the LV `vg/name` (returning `(object, job)`), finishes the
    /// job, and reads the new LV back.
    #[allow(clippy::too_many_arguments)]
    fn create_lv<B>(
        &self,
        operation: &str,
        vg: &str,
        name: &str,
        path: &str,
        iface: &str,
        method: &str,
        body: &B,
    ) -> Result<LogicalVolume>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.call_create(operation, &Target::lv(vg, name), path, iface, method, body)?;
        self.lv(vg, name)
    }

    /// Calls a method that returns a job path and finishes it.
    fn call_job<B>(
        &self,
        operation: &str,
        target: &Target,
        path: &str,
        iface: &str,
        method: &str,
        body: &B,
    ) -> Result<()>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let job: OwnedObjectPath = call(&self.conn, operation, target, path, iface, method, body)?;
        let none = OwnedObjectPath::try_from("/").expect("valid path");
        finish(&self.conn, operation, method, target, none, job).map(drop)
    }

    fn require_device_mapper(&self, operation: &str) -> Result<()> {
        if self.device_mapper {
            return Ok(());
        }
        Err(Error::DeviceMapperUnavailable {
            operation: operation.to_owned(),
            detail: "the kernel has no device-mapper driver".into(),
        })
    }

    fn pv_paths(&self, operation: &str, devices: &[&Path]) -> Result<Vec<OwnedObjectPath>> {
        if devices.is_empty() {
            return Err(Error::InvalidRequest {
                operation: operation.to_owned(),
                reason: "no devices given".into(),
            });
        }
        devices
            .iter()
            .map(|d| {
                let key = d.to_str().ok_or_else(|| Error::InvalidRequest {
                    operation: operation.to_owned(),
                    reason: format!("device {d:?} is not UTF-8"),
                })?;
                let path = self.lookup(operation, ObjectKind::PhysicalVolume, key)?;
                Ok(OwnedObjectPath::try_from(path).expect("lvmdbusd returned a valid path"))
            })
            .collect()
    }
}

fn connect_error(bus: &str, e: zbus::Error) -> Error {
    Error::Dbus {
        operation: format!("connect to lvmdbusd on {bus}"),
        detail: e.to_string(),
    }
}

fn inactive_options(activate: bool) -> Options<'static> {
    let mut o = Options::new();
    if !activate {
        o.insert("activate", Value::from("n"));
        o.insert("zero", Value::from("n"));
    }
    o
}

impl LvmBackend for DbusBackend {
    fn report(&self) -> Result<Report> {
        self.refresh()?;
        let objects: value::ManagedObjects = call(
            &self.conn,
            "report all PVs, VGs and LVs",
            &Target::all(),
            "/com/redhat/lvmdbus1",
            "org.freedesktop.DBus.ObjectManager",
            "GetManagedObjects",
            &(),
        )?;
        Ok(value::report_from_objects(&objects))
    }

    fn pv_create(&self, device: &Path) -> Result<PhysicalVolume> {
        let operation = format!("pvcreate {}", device.display());
        let name = device
            .to_str()
            .filter(|_| device.is_absolute())
            .ok_or_else(|| Error::InvalidRequest {
                operation: operation.clone(),
                reason: format!("device {device:?} must be an absolute UTF-8 path"),
            })?;
        let t = Target::pv(name);
        self.call_create(
            &operation,
            &t,
            job::MANAGER,
            MANAGER_IFACE,
            "PvCreate",
            &(name, self.tmo, Options::new()),
        )?;
        self.pv(device)
    }

    fn pv_remove(&self, device: &Path) -> Result<()> {
        let operation = format!("pvremove {}", device.display());
        let key = device.to_string_lossy();
        let path = self.lookup(&operation, ObjectKind::PhysicalVolume, &key)?;
        let t = Target::pv(&key);
        self.call_job(
            &operation,
            &t,
            &path,
            PV_IFACE,
            "Remove",
            &(self.tmo, Options::new()),
        )
    }

    fn vg_create(
        &self,
        name: &str,
        devices: &[&Path],
        extent_size: Option<Bytes>,
    ) -> Result<VolumeGroup> {
        validate_vg_name(name)?;
        let operation = format!("vgcreate {name}");
        let pvs = self.pv_paths(&operation, devices)?;
        let mut options = Options::new();
        if let Some(size) = extent_size {
            options.insert(
                "physicalextentsize",
                Value::from(format!("{}s", size.get().div_ceil(512))),
            );
        }
        let t = Target::vg(name);
        self.call_create(
            &operation,
            &t,
            job::MANAGER,
            MANAGER_IFACE,
            "VgCreate",
            &(name, pvs, self.tmo, options),
        )?;
        self.vg(name)
    }

    fn vg_extend(&self, name: &str, devices: &[&Path]) -> Result<VolumeGroup> {
        validate_vg_name(name)?;
        let operation = format!("vgextend {name}");
        let path = self.lookup(&operation, ObjectKind::VolumeGroup, name)?;
        let pvs = self.pv_paths(&operation, devices)?;
        let t = Target::vg(name);
        self.call_job(
            &operation,
            &t,
            &path,
            VG_IFACE,
            "Extend",
            &(pvs, self.tmo, Options::new()),
        )?;
        self.vg(name)
    }

    fn vg_remove(&self, name: &str) -> Result<()> {
        validate_vg_name(name)?;
        let operation = format!("vgremove {name}");
        let path = self.lookup(&operation, ObjectKind::VolumeGroup, name)?;
        let t = Target::vg(name);
        self.call_job(
            &operation,
            &t,
            &path,
            VG_IFACE,
            "Remove",
            &(self.tmo, Options::new()),
        )
    }

    fn lv_create(&self, vg: &str, name: &str, request: LvCreate) -> Result<LogicalVolume> {
        validate_lv_name(vg, name)?;
        let operation = format!("lvcreate {vg}/{name}");
        if request.activate {
            self.require_device_mapper(&operation)?;
        }
        let vg_path = self.lookup(&operation, ObjectKind::VolumeGroup, vg)?;
        // LvCreateLinear takes bytes; extents and percentages are converted with the VG's
        // extent size (a percentage rounds down to whole extents, as lvm2's %FREE does).
        let size = match request.size {
            LvSize::Bytes(b) => b,
            LvSize::Extents(n) => Bytes(n * self.vg(vg)?.extent_size.get()),
            LvSize::PercentFree(p) if (1..=100).contains(&p) => {
                let v = self.vg(vg)?;
                Bytes(v.free_extent_count * u64::from(p) / 100 * v.extent_size.get())
            }
            LvSize::PercentFree(p) => {
                return Err(Error::InvalidRequest {
                    operation,
                    reason: format!("percent of free space must be 1..=100, not {p}"),
                })
            }
        };
        let mut options = inactive_options(request.activate);
        if request.activate && !request.zero {
            options.insert("zero", Value::from("n"));
        }
        self.create_lv(
            &operation,
            vg,
            name,
            &vg_path,
            VG_IFACE,
            "LvCreateLinear",
            &(name, size.get(), false, self.tmo, options),
        )
    }

    fn lv_extend(&self, vg: &str, name: &str, size: NewSize) -> Result<LogicalVolume> {
        resize(self, "lvextend", vg, name, size, true)
    }

    fn lv_resize(&self, vg: &str, name: &str, size: NewSize) -> Result<LogicalVolume> {
        resize(self, "lvresize", vg, name, size, false)
    }

    fn lv_remove(&self, vg: &str, name: &str) -> Result<()> {
        validate_lv_name(vg, name)?;
        let operation = format!("lvremove {vg}/{name}");
        let path = self.lv_lookup(&operation, vg, name)?;
        let t = Target::lv(vg, name);
        self.call_job(
            &operation,
            &t,
            &path,
            LV_IFACE,
            "Remove",
            &(self.tmo, Options::new()),
        )
    }

    fn lv_activate(&self, vg: &str, name: &str) -> Result<()> {
        validate_lv_name(vg, name)?;
        let operation = format!("activate {vg}/{name}");
        self.require_device_mapper(&operation)?;
        let path = self.lv_lookup(&operation, vg, name)?;
        let t = Target::lv(vg, name);
        self.call_job(
            &operation,
            &t,
            &path,
            LV_IFACE,
            "Activate",
            &(0u64, self.tmo, Options::new()),
        )
    }

    fn lv_deactivate(&self, vg: &str, name: &str) -> Result<()> {
        validate_lv_name(vg, name)?;
        let operation = format!("deactivate {vg}/{name}");
        let path = self.lv_lookup(&operation, vg, name)?;
        let t = Target::lv(vg, name);
        self.call_job(
            &operation,
            &t,
            &path,
            LV_IFACE,
            "Deactivate",
            &(0u64, self.tmo, Options::new()),
        )
    }

    fn snapshot_create(
        &self,
        vg: &str,
        origin: &str,
        name: &str,
        size: Bytes,
    ) -> Result<LogicalVolume> {
        validate_lv_name(vg, origin)?;
        validate_lv_name(vg, name)?;
        let operation = format!("snapshot {vg}/{origin} as {name}");
        self.require_device_mapper(&operation)?;
        let path = self.lv_lookup(&operation, vg, origin)?;
        self.create_lv(
            &operation,
            vg,
            name,
            &path,
            LV_IFACE,
            "Snapshot",
            &(
                name,
                size.round_up_to(Bytes(512)).get(),
                self.tmo,
                Options::new(),
            ),
        )
    }

    fn thin_pool_create(
        &self,
        vg: &str,
        name: &str,
        request: ThinPoolCreate,
    ) -> Result<LogicalVolume> {
        validate_lv_name(vg, name)?;
        let operation = format!("create thin pool {vg}/{name}");
        self.require_device_mapper(&operation)?;
        let vg_path = self.lookup(&operation, ObjectKind::VolumeGroup, vg)?;
        self.create_lv(
            &operation,
            vg,
            name,
            &vg_path,
            VG_IFACE,
            "LvCreateLinear",
            &(
                name,
                request.size.round_up_to(Bytes(512)).get(),
                true,
                self.tmo,
                Options::new(),
            ),
        )
    }

    fn thin_create(
        &self,
        vg: &str,
        pool: &str,
        name: &str,
        virtual_size: Bytes,
    ) -> Result<LogicalVolume> {
        validate_lv_name(vg, pool)?;
        validate_lv_name(vg, name)?;
        let operation = format!("create thin LV {vg}/{name} in pool {pool}");
        self.require_device_mapper(&operation)?;
        let pool_path = self.lv_lookup(&operation, vg, pool)?;
        self.create_lv(
            &operation,
            vg,
            name,
            &pool_path,
            THIN_POOL_IFACE,
            "LvCreate",
            &(
                name,
                virtual_size.round_up_to(Bytes(512)).get(),
                self.tmo,
                Options::new(),
            ),
        )
    }
}

/// lvextend/lvresize through `Lv.Resize`, with the same rounding and no-op rule as the CLI.
fn resize(
    backend: &DbusBackend,
    verb: &str,
    vg: &str,
    name: &str,
    size: NewSize,
    grow_only: bool,
) -> Result<LogicalVolume> {
    validate_lv_name(vg, name)?;
    let operation = format!("{verb} {vg}/{name}");
    let path = backend.lv_lookup(&operation, vg, name)?;
    let report = backend.report()?;
    let extent = report.vg(vg).map(|v| v.extent_size).unwrap_or_default();
    let lv = report
        .lv(vg, name)
        .cloned()
        .ok_or_else(|| Error::NotFound {
            operation: operation.clone(),
            object: ObjectKind::LogicalVolume,
            name: format!("{vg}/{name}"),
        })?;
    let Some(target_size) = resize_target(&operation, lv.size, extent, size, grow_only)? else {
        return Ok(lv);
    };
    let t = Target::lv(vg, name);
    let no_pvs: Vec<(OwnedObjectPath, u64, u64)> = Vec::new();
    backend.call_job(
        &operation,
        &t,
        &path,
        LV_IFACE,
        "Resize",
        &(target_size.get(), no_pvs, backend.tmo, Options::new()),
    )?;
    backend.lv(vg, name)
}
