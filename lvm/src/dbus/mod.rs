//! The lvmdbusd backend: the same [`LvmBackend`](crate::LvmBackend) API over D-Bus (feature `dbus`).
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

use crate::change::{device_mapper_loaded, Change, Driver};
use crate::classify::Target;
use crate::error::{Error, ObjectKind, Result};
use crate::model::Report;
use crate::request::LvSize;
use crate::size::{Bytes, SECTOR};
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

    /// Calls a method whose reply ends in a Job path (see [`JobReply`]) and finishes the job.
    fn call_job<R, B>(
        &self,
        operation: &str,
        target: &Target,
        path: &str,
        iface: &str,
        method: &str,
        body: &B,
    ) -> Result<()>
    where
        R: JobReply,
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let reply: R = call(&self.conn, operation, target, path, iface, method, body)?;
        let (object, job) = reply.object_and_job();
        finish(&self.conn, operation, method, target, object, job).map(drop)
    }

    /// The object paths of the PVs on `devices` (checked by the front).
    fn pv_paths(&self, operation: &str, devices: &[&Path]) -> Result<Vec<OwnedObjectPath>> {
        devices
            .iter()
            .map(|d| {
                let key = d.to_string_lossy();
                let path = self.lookup(operation, ObjectKind::PhysicalVolume, &key)?;
                Ok(OwnedObjectPath::try_from(path).expect("lvmdbusd returned a valid path"))
            })
            .collect()
    }
}

/// The reply of a call that may hand back a Job: a job path (`o`) for most calls, `(object,
/// job)` (`(oo)`) for those that create an object. A path of `/` means none.
trait JobReply: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type {
    /// The created object (`/` if none) and the job (`/` if the call finished within `tmo`).
    fn object_and_job(self) -> (OwnedObjectPath, OwnedObjectPath);
}

/// The reply of a call that changes an object.
type Job = OwnedObjectPath;

/// The reply of a call that creates an object.
type Created = (OwnedObjectPath, OwnedObjectPath);

impl JobReply for Job {
    fn object_and_job(self) -> (OwnedObjectPath, OwnedObjectPath) {
        (OwnedObjectPath::try_from("/").expect("valid path"), self)
    }
}

impl JobReply for Created {
    fn object_and_job(self) -> (OwnedObjectPath, OwnedObjectPath) {
        self
    }
}

fn connect_error(bus: &str, e: zbus::Error) -> Error {
    Error::Dbus {
        operation: format!("connect to lvmdbusd on {bus}"),
        detail: e.to_string(),
    }
}

/// The `(tmo, options)` tail of most lvmdbusd calls, with no options.
fn plain(tmo: i32) -> (i32, Options<'static>) {
    (tmo, Options::new())
}

/// The option dict of `LvCreateLinear`: `-an -Zn` when not activating, `-Zn` when not zeroing.
fn create_options(activate: bool, zero: bool) -> Options<'static> {
    let mut o = Options::new();
    if !activate {
        o.insert("activate", Value::from("n"));
    }
    if !zero {
        o.insert("zero", Value::from("n"));
    }
    o
}

impl DbusBackend {
    /// `LvCreateLinear` takes bytes: extents and percentages are converted with the VG's extent
    /// size (a percentage rounds down to whole extents, as lvm2's %FREE does).
    fn linear_size(&self, vg: &str, size: LvSize) -> Result<Bytes> {
        Ok(match size {
            LvSize::Bytes(b) => b,
            LvSize::Extents(n) => Bytes(n * self.read_report()?.find_vg(vg)?.extent_size.get()),
            LvSize::PercentFree(p) => {
                let report = self.read_report()?;
                let v = report.find_vg(vg)?;
                Bytes(v.free_extent_count * u64::from(p) / 100 * v.extent_size.get())
            }
        })
    }
}

impl Driver for DbusBackend {
    fn has_device_mapper(&self) -> bool {
        self.device_mapper
    }

    fn read_report(&self) -> Result<Report> {
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

    fn apply(&self, change: &Change<'_>, op: &str) -> Result<()> {
        use ObjectKind::{PhysicalVolume as Pv, VolumeGroup as Vg};
        let t = &change.target();
        let tmo = self.tmo;
        let on = |path: &str, iface, method, body: &(i32, Options<'_>)| {
            self.call_job::<Job, _>(op, t, path, iface, method, body)
        };
        match *change {
            Change::PvCreate { device } => {
                let name = device.to_string_lossy();
                let body = (name.as_ref(), tmo, Options::new());
                self.call_job::<Created, _>(op, t, job::MANAGER, MANAGER_IFACE, "PvCreate", &body)
            }
            Change::PvRemove { device } => {
                let path = self.lookup(op, Pv, &device.to_string_lossy())?;
                on(&path, PV_IFACE, "Remove", &plain(tmo))
            }
            Change::VgCreate {
                vg,
                devices,
                extent_size,
            } => {
                let pvs = self.pv_paths(op, devices)?;
                let mut options = Options::new();
                if let Some(size) = extent_size {
                    let sectors = format!("{}s", size.get() / SECTOR);
                    options.insert("physicalextentsize", Value::from(sectors));
                }
                let body = (vg, pvs, tmo, options);
                self.call_job::<Created, _>(op, t, job::MANAGER, MANAGER_IFACE, "VgCreate", &body)
            }
            Change::VgExtend { vg, devices } => {
                let path = self.lookup(op, Vg, vg)?;
                let pvs = self.pv_paths(op, devices)?;
                self.call_job::<Job, _>(
                    op,
                    t,
                    &path,
                    VG_IFACE,
                    "Extend",
                    &(pvs, tmo, Options::new()),
                )
            }
            Change::VgRemove { vg } => {
                let path = self.lookup(op, Vg, vg)?;
                on(&path, VG_IFACE, "Remove", &plain(tmo))
            }
            Change::LvCreate { vg, name, request } => {
                let path = self.lookup(op, Vg, vg)?;
                let bytes = self.linear_size(vg, request.size)?.get();
                let options = create_options(request.activate, request.zero);
                let body = (name, bytes, false, tmo, options);
                self.call_job::<Created, _>(op, t, &path, VG_IFACE, "LvCreateLinear", &body)
            }
            Change::LvResize {
                vg, name, target, ..
            } => {
                let path = self.lv_lookup(op, vg, name)?;
                let no_pvs: Vec<(OwnedObjectPath, u64, u64)> = Vec::new();
                let body = (target.get(), no_pvs, tmo, Options::new());
                self.call_job::<Job, _>(op, t, &path, LV_IFACE, "Resize", &body)
            }
            Change::LvRemove { vg, name } => {
                let path = self.lv_lookup(op, vg, name)?;
                on(&path, LV_IFACE, "Remove", &plain(tmo))
            }
            Change::LvActivation { vg, name, active } => {
                let path = self.lv_lookup(op, vg, name)?;
                let method = if active { "Activate" } else { "Deactivate" };
                let body = (0u64, tmo, Options::new());
                self.call_job::<Job, _>(op, t, &path, LV_IFACE, method, &body)
            }
            Change::Snapshot {
                vg,
                origin,
                name,
                size,
            } => {
                let path = self.lv_lookup(op, vg, origin)?;
                let body = (name, size.get(), tmo, Options::new());
                self.call_job::<Created, _>(op, t, &path, LV_IFACE, "Snapshot", &body)
            }
            Change::ThinPool { vg, name, size } => {
                let path = self.lookup(op, Vg, vg)?;
                let body = (name, size.get(), true, tmo, Options::new());
                self.call_job::<Created, _>(op, t, &path, VG_IFACE, "LvCreateLinear", &body)
            }
            Change::Thin {
                vg,
                pool,
                name,
                virtual_size,
            } => {
                let path = self.lv_lookup(op, vg, pool)?;
                let body = (name, virtual_size.get(), tmo, Options::new());
                self.call_job::<Created, _>(op, t, &path, THIN_POOL_IFACE, "LvCreate", &body)
            }
        }
    }
}
