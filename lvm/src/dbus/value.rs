//! Reading lvmdbusd's object properties (`GetManagedObjects`) into the crate's model.

use crate::attr::{AllocationPolicy, LvAttr, LvType, PvAttr, VgAttr};
use crate::model::{
    LogicalVolume, PhysicalVolume, PvSegment, Report, Segment, SegmentDevice, VolumeGroup,
};
use crate::size::Bytes;
use std::collections::HashMap;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

/// `GetManagedObjects`' reply: object path → interface → property → value.
pub(crate) type ManagedObjects =
    HashMap<OwnedObjectPath, HashMap<String, HashMap<String, OwnedValue>>>;

/// The properties of one interface of one object.
pub(crate) struct Props<'a>(pub(crate) &'a HashMap<String, OwnedValue>);

fn u64_of(v: &Value<'_>) -> Option<u64> {
    match v {
        Value::U64(n) => Some(*n),
        Value::U32(n) => Some(u64::from(*n)),
        Value::U16(n) => Some(u64::from(*n)),
        Value::U8(n) => Some(u64::from(*n)),
        Value::I64(n) => u64::try_from(*n).ok(),
        Value::I32(n) => u64::try_from(*n).ok(),
        Value::Value(inner) => u64_of(inner),
        _ => None,
    }
}

fn str_of(v: &Value<'_>) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.to_string()),
        Value::ObjectPath(p) => Some(p.to_string()),
        Value::Value(inner) => str_of(inner),
        _ => None,
    }
}

fn items<'a>(v: &'a Value<'a>) -> Vec<&'a Value<'a>> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Structure(s) => s.fields().iter().collect(),
        _ => Vec::new(),
    }
}

impl Props<'_> {
    fn get(&self, key: &str) -> Option<&Value<'_>> {
        self.0.get(key).map(|v| &**v)
    }

    fn u64(&self, key: &str) -> u64 {
        self.get(key).and_then(u64_of).unwrap_or(0)
    }

    fn bytes(&self, key: &str) -> Bytes {
        Bytes(self.u64(key))
    }

    fn string(&self, key: &str) -> String {
        self.get(key).and_then(str_of).unwrap_or_default()
    }

    /// An object path property, `None` for `/`.
    fn path(&self, key: &str) -> Option<String> {
        self.get(key).and_then(str_of).filter(|p| p != "/")
    }

    fn bool(&self, key: &str) -> bool {
        matches!(self.get(key), Some(Value::Bool(true)))
    }

    fn strings(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| items(v).into_iter().filter_map(str_of).collect())
            .unwrap_or_default()
    }

    fn f64(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::F64(f) => Some(*f),
            v => u64_of(v).map(|n| n as f64),
        }
    }
}

/// The VG attributes from lvmdbusd's flags.
fn vg_attr(p: &Props<'_>) -> VgAttr {
    let allocation = if p.bool("AllocContiguous") {
        AllocationPolicy::Contiguous
    } else if p.bool("AllocCling") {
        AllocationPolicy::Cling
    } else if p.bool("AllocAnywhere") {
        AllocationPolicy::Anywhere
    } else {
        AllocationPolicy::Normal
    };
    VgAttr::from_flags(
        p.bool("Writeable"),
        p.bool("Resizeable"),
        p.bool("Exportable"),
        p.bool("Partial"),
        allocation,
        p.bool("Clustered"),
    )
}

/// `/dev/mapper/VG-LV` with `-` doubled inside names, as device-mapper names it.
fn dm_path(vg: &str, lv: &str) -> String {
    format!(
        "/dev/mapper/{}-{}",
        vg.replace('-', "--"),
        lv.replace('-', "--")
    )
}

/// An extent range `(first, last, segtype)` of an lvmdbusd `Lv` or `Devices` property.
type ExtentRange = (u64, u64, String);

/// `(object, [(first, last, segtype)])` entries of an `Lv` or `Devices` property.
fn ranges<'a>(v: &'a Value<'a>) -> Vec<(String, Vec<ExtentRange>)> {
    items(v)
        .into_iter()
        .filter_map(|entry| {
            let fields = items(entry);
            let object = str_of(fields.first()?)?;
            let list = items(fields.get(1)?)
                .into_iter()
                .filter_map(|r| {
                    let f = items(r);
                    Some((
                        u64_of(f.first()?)?,
                        u64_of(f.get(1)?)?,
                        f.get(2).and_then(|s| str_of(s)).unwrap_or_default(),
                    ))
                })
                .collect();
            Some((object, list))
        })
        .collect()
}

const VG_IFACE: &str = "com.redhat.lvmdbus1.Vg";
const PV_IFACE: &str = "com.redhat.lvmdbus1.Pv";
const LV_IFACE: &str = "com.redhat.lvmdbus1.LvCommon";

/// What objects refer to each other by: object path → name, extent size or UUID.
#[derive(Default)]
struct Index {
    vg_names: HashMap<String, String>,
    vg_extent: HashMap<String, Bytes>,
    pv_names: HashMap<String, String>,
    lv_names: HashMap<String, String>,
    lv_uuids: HashMap<String, String>,
}

impl Index {
    fn new(objects: &ManagedObjects) -> Index {
        let mut index = Index::default();
        for (path, ifaces) in objects {
            let path = path.to_string();
            if let Some(p) = ifaces.get(VG_IFACE).map(Props) {
                index.vg_names.insert(path.clone(), p.string("Name"));
                index
                    .vg_extent
                    .insert(path.clone(), p.bytes("ExtentSizeBytes"));
            }
            if let Some(p) = ifaces.get(PV_IFACE).map(Props) {
                index.pv_names.insert(path.clone(), p.string("Name"));
            }
            if let Some(p) = ifaces.get(LV_IFACE).map(Props) {
                index.lv_names.insert(path.clone(), p.string("Name"));
                index.lv_uuids.insert(path, p.string("Uuid"));
            }
        }
        index
    }
}

/// A PV from its `Pv` properties.
fn pv_from_props(p: &Props<'_>, index: &Index) -> PhysicalVolume {
    let owners = p.get("Lv").map(ranges).unwrap_or_default();
    let segments = p
        .get("PeSegments")
        .map(items)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|seg| {
            let f = items(seg);
            Some((u64_of(f.first()?)?, u64_of(f.get(1)?)?))
        })
        .map(|(start, count)| PvSegment {
            start_extent: start,
            extent_count: count,
            lv_uuid: owners
                .iter()
                .find(|(_, rs)| rs.iter().any(|(s, _, _)| *s == start))
                .and_then(|(lv, _)| index.lv_uuids.get(lv).cloned()),
        })
        .collect();
    PhysicalVolume {
        name: p.string("Name").into(),
        uuid: p.string("Uuid"),
        vg_name: p.path("Vg").and_then(|v| index.vg_names.get(&v).cloned()),
        dev_size: p.bytes("DevSizeBytes"),
        size: p.bytes("SizeBytes"),
        free: p.bytes("FreeBytes"),
        used: p.bytes("UsedBytes"),
        pe_start: p.bytes("PeStart"),
        extent_count: p.u64("PeCount"),
        allocated_extent_count: p.u64("PeAllocCount"),
        attr: PvAttr::from_flags(
            p.bool("Allocatable"),
            p.bool("Exportable"),
            p.bool("Missing"),
        ),
        tags: p.strings("Tags"),
        segments,
    }
}

/// A VG from its `Vg` properties; `pvs` gives the count of its missing PVs.
fn vg_from_props(p: &Props<'_>, pvs: &[PhysicalVolume]) -> VolumeGroup {
    let name = p.string("Name");
    let missing = pvs
        .iter()
        .filter(|pv| pv.vg_name.as_deref() == Some(name.as_str()) && pv.attr.missing)
        .count() as u64;
    VolumeGroup {
        uuid: p.string("Uuid"),
        size: p.bytes("SizeBytes"),
        free: p.bytes("FreeBytes"),
        extent_size: p.bytes("ExtentSizeBytes"),
        extent_count: p.u64("ExtentCount"),
        free_extent_count: p.u64("FreeCount"),
        pv_count: p.u64("PvCount"),
        lv_count: p.u64("LvCount"),
        missing_pv_count: missing,
        seqno: p.u64("Seqno"),
        attr: vg_attr(p),
        tags: p.strings("Tags"),
        name,
    }
}

/// An LV's segments from its `Devices` property: one linear segment per PV extent range, in
/// logical order.
fn lv_segments(p: &Props<'_>, extent: Bytes, index: &Index) -> Vec<Segment> {
    let mut next_le = 0;
    p.get("Devices")
        .map(ranges)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(pv, rs)| {
            let device = index.pv_names.get(&pv).cloned().unwrap_or(pv);
            rs.into_iter().map(move |r| (device.clone(), r))
        })
        .map(|(device, (start, end, segtype))| {
            let count = end.saturating_sub(start) + 1;
            let seg = Segment {
                segtype,
                start: Bytes(next_le * extent.get()),
                start_extent: next_le,
                size: Bytes(count * extent.get()),
                extent_count: count,
                stripes: 1,
                devices: vec![SegmentDevice {
                    device,
                    start_extent: start,
                }],
            };
            next_le += count;
            seg
        })
        .collect()
}

/// An LV from its `LvCommon` properties.
fn lv_from_props(p: &Props<'_>, index: &Index) -> LogicalVolume {
    let vg_path = p.path("Vg").unwrap_or_default();
    let vg_name = index.vg_names.get(&vg_path).cloned().unwrap_or_default();
    let extent = index.vg_extent.get(&vg_path).copied().unwrap_or_default();
    let name = p.string("Name");
    let lv_name_of = |key: &str| {
        p.path(key)
            .and_then(|path| index.lv_names.get(&path).cloned())
    };
    let attr = LvAttr::parse(&p.string("Attr"));
    // lvmdbusd gives whole percents and 0 where lvm2 has none: keep it only where a data
    // percentage exists.
    let data_percent = matches!(
        attr.volume_type,
        LvType::ThinPool | LvType::Thin | LvType::Snapshot
    )
    .then(|| p.f64("DataPercent"))
    .flatten();
    LogicalVolume {
        uuid: p.string("Uuid"),
        path: p.string("Path").into(),
        dm_path: dm_path(&vg_name, &name).into(),
        size: p.bytes("SizeBytes"),
        attr,
        active: p.bool("Active"),
        layout: p.strings("SegType"),
        role: p.strings("Roles"),
        origin: lv_name_of("OriginLv"),
        pool_lv: lv_name_of("PoolLv"),
        data_percent,
        tags: p.strings("Tags"),
        segments: lv_segments(p, extent, index),
        vg_name,
        name,
    }
}

/// Builds a [`Report`] from every lvmdbusd object.
pub(crate) fn report_from_objects(objects: &ManagedObjects) -> Report {
    let index = Index::new(objects);
    let props = |iface: &'static str| {
        objects
            .values()
            .filter_map(move |ifaces| ifaces.get(iface).map(Props))
    };
    let pvs: Vec<PhysicalVolume> = props(PV_IFACE).map(|p| pv_from_props(&p, &index)).collect();
    Report {
        vgs: props(VG_IFACE).map(|p| vg_from_props(&p, &pvs)).collect(),
        lvs: props(LV_IFACE).map(|p| lv_from_props(&p, &index)).collect(),
        pvs,
    }
}
