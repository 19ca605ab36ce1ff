//! Reading lvmdbusd's object properties (`GetManagedObjects`) into the crate's model.

use crate::attr::{LvAttr, LvType, PvAttr, VgAttr};
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

/// Rebuilds a `vg_attr` string from lvmdbusd's flags, so both backends decode it alike.
fn vg_attr(p: &Props<'_>) -> String {
    let alloc = if p.bool("AllocContiguous") {
        'c'
    } else if p.bool("AllocCling") {
        'l'
    } else if p.bool("AllocAnywhere") {
        'a'
    } else {
        'n'
    };
    [
        if p.bool("Writeable") { 'w' } else { 'r' },
        if p.bool("Resizeable") { 'z' } else { '-' },
        if p.bool("Exportable") { 'x' } else { '-' },
        if p.bool("Partial") { 'p' } else { '-' },
        alloc,
        if p.bool("Clustered") { 'c' } else { '-' },
    ]
    .iter()
    .collect()
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

/// Builds a [`Report`] from every lvmdbusd object.
pub(crate) fn report_from_objects(objects: &ManagedObjects) -> Report {
    let iface = |name: &str| format!("com.redhat.lvmdbus1.{name}");
    let (vg_if, pv_if, lv_if) = (iface("Vg"), iface("Pv"), iface("LvCommon"));
    let mut vg_names: HashMap<String, String> = HashMap::new();
    let mut vg_extent: HashMap<String, Bytes> = HashMap::new();
    let mut pv_names: HashMap<String, String> = HashMap::new();
    let mut lv_uuids: HashMap<String, String> = HashMap::new();
    for (path, ifaces) in objects {
        if let Some(p) = ifaces.get(&vg_if) {
            let p = Props(p);
            vg_names.insert(path.to_string(), p.string("Name"));
            vg_extent.insert(path.to_string(), p.bytes("ExtentSizeBytes"));
        }
        if let Some(p) = ifaces.get(&pv_if) {
            pv_names.insert(path.to_string(), Props(p).string("Name"));
        }
        if let Some(p) = ifaces.get(&lv_if) {
            lv_uuids.insert(path.to_string(), Props(p).string("Uuid"));
        }
    }
    let mut report = Report::default();
    for ifaces in objects.values() {
        if let Some(p) = ifaces.get(&pv_if).map(Props) {
            let segments = p
                .get("PeSegments")
                .map(|v| {
                    items(v)
                        .into_iter()
                        .filter_map(|seg| {
                            let f = items(seg);
                            Some((u64_of(f.first()?)?, u64_of(f.get(1)?)?))
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            let owners = p.get("Lv").map(ranges).unwrap_or_default();
            let segments = segments
                .into_iter()
                .map(|(start, count)| PvSegment {
                    start_extent: start,
                    extent_count: count,
                    lv_uuid: owners
                        .iter()
                        .find(|(_, rs)| rs.iter().any(|(s, _, _)| *s == start))
                        .and_then(|(lv, _)| lv_uuids.get(lv).cloned()),
                })
                .collect();
            let attr = format!(
                "{}{}{}",
                if p.bool("Allocatable") { 'a' } else { '-' },
                if p.bool("Exportable") { 'x' } else { '-' },
                if p.bool("Missing") { 'm' } else { '-' },
            );
            report.pvs.push(PhysicalVolume {
                name: p.string("Name").into(),
                uuid: p.string("Uuid"),
                vg_name: p.path("Vg").and_then(|v| vg_names.get(&v).cloned()),
                dev_size: p.bytes("DevSizeBytes"),
                size: p.bytes("SizeBytes"),
                free: p.bytes("FreeBytes"),
                used: p.bytes("UsedBytes"),
                pe_start: p.bytes("PeStart"),
                extent_count: p.u64("PeCount"),
                allocated_extent_count: p.u64("PeAllocCount"),
                attr: PvAttr::parse(&attr),
                tags: p.strings("Tags"),
                segments,
            });
        }
    }
    for ifaces in objects.values() {
        if let Some(p) = ifaces.get(&vg_if).map(Props) {
            let name = p.string("Name");
            let missing = report
                .pvs
                .iter()
                .filter(|pv| pv.vg_name.as_deref() == Some(name.as_str()) && pv.attr.missing)
                .count() as u64;
            report.vgs.push(VolumeGroup {
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
                attr: VgAttr::parse(&vg_attr(&p)),
                tags: p.strings("Tags"),
                name,
            });
        }
        if let Some(p) = ifaces.get(&lv_if).map(Props) {
            let vg_path = p.path("Vg").unwrap_or_default();
            let vg_name = vg_names.get(&vg_path).cloned().unwrap_or_default();
            let extent = vg_extent.get(&vg_path).copied().unwrap_or_default();
            let name = p.string("Name");
            let lv_name_of = |key: &str| {
                p.path(key).and_then(|path| {
                    objects.iter().find_map(|(op, ifs)| {
                        (op.as_str() == path)
                            .then(|| ifs.get(&lv_if).map(|l| Props(l).string("Name")))
                            .flatten()
                    })
                })
            };
            let mut next_le = 0;
            let segments = p
                .get("Devices")
                .map(ranges)
                .unwrap_or_default()
                .into_iter()
                .flat_map(|(pv, rs)| {
                    let device = pv_names.get(&pv).cloned().unwrap_or(pv);
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
                .collect();
            let attr = LvAttr::parse(&p.string("Attr"));
            // lvmdbusd gives whole percents and 0 where lvm2 has none: keep it only where a
            // data percentage exists.
            let data_percent = matches!(
                attr.volume_type,
                LvType::ThinPool | LvType::Thin | LvType::Snapshot
            )
            .then(|| p.f64("DataPercent"))
            .flatten();
            report.lvs.push(LogicalVolume {
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
                segments,
                vg_name,
                name,
            });
        }
    }
    report
}
