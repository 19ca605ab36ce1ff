//! Parsing lvm2's JSON output (`--reportformat json` or `json_std`) into the crate's model.
//!
//! `json` (lvm2 2.03.16 and older) gives every value as a string, with `""` for "none" and tags as
//! a comma-separated string; `json_std` (2.03.17+) gives numbers, `null` and arrays. Every field
//! here accepts both forms.

use crate::attr::{LvAttr, PvAttr, VgAttr};
use crate::model::{
    LogicalVolume, PhysicalVolume, PvSegment, Report, Segment, SegmentDevice, VolumeGroup,
};
use crate::size::Bytes;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::HashMap;

/// A report value: a string (`json`), a number (`json_std`), an array (`json_std` lists) or null.
#[derive(Debug, Clone, Default)]
pub(crate) struct Field(Value);

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Field)
    }
}

impl Field {
    /// The value as text; `None` for empty, null, or an empty list.
    pub(crate) fn text(&self) -> Option<String> {
        match &self.0 {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Array(a) if a.is_empty() => None,
            Value::Array(a) => Some(
                a.iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            _ => None,
        }
    }

    /// The value as text, `""` when absent.
    pub(crate) fn string(&self) -> String {
        self.text().unwrap_or_default()
    }

    /// The value as an unsigned integer (`None` when absent or negative such as `-1`).
    pub(crate) fn u64(&self) -> Option<u64> {
        match &self.0 {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as a float (percentages).
    pub(crate) fn f64(&self) -> Option<f64> {
        match &self.0 {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as a list: an array, or a comma-separated string.
    pub(crate) fn list(&self) -> Vec<String> {
        match &self.0 {
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Value::String(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A size in bytes (0 when absent).
    pub(crate) fn bytes(&self) -> Bytes {
        Bytes(self.u64().unwrap_or(0))
    }
}

/// One row of any sub-report: field name to value.
pub(crate) type Row = HashMap<String, Field>;

/// Reads a field of a row (absent fields read as empty).
pub(crate) fn get<'a>(row: &'a Row, key: &str) -> &'a Field {
    static EMPTY: Field = Field(Value::Null);
    row.get(key).unwrap_or(&EMPTY)
}

/// One entry of the command log (`log/report_command_log=1`).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct LogEntry {
    /// `print`, `error`, `warn`, `status`.
    #[serde(default)]
    pub(crate) log_type: Field,
    /// The message.
    #[serde(default)]
    pub(crate) log_message: Field,
}

/// The whole JSON document lvm2 prints.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Document {
    /// One group of sub-reports per VG (plus one for orphan PVs).
    #[serde(default)]
    pub(crate) report: Vec<HashMap<String, Vec<Row>>>,
    /// The command log.
    #[serde(default)]
    pub(crate) log: Vec<LogEntry>,
}

impl Document {
    /// Parses lvm2's stdout. lvm2 2.03.16 can emit a trailing comma in the command log when some
    /// entries are filtered out; such commas are removed before parsing as a last resort.
    pub(crate) fn parse(stdout: &str) -> Result<Document, String> {
        if stdout.trim().is_empty() {
            return Ok(Document::default());
        }
        match serde_json::from_str(stdout) {
            Ok(doc) => Ok(doc),
            Err(first) => {
                let repaired = remove_trailing_commas(stdout);
                serde_json::from_str(&repaired).map_err(|_| first.to_string())
            }
        }
    }

    /// The messages of `error`-type log entries.
    pub(crate) fn errors(&self) -> Vec<String> {
        self.log
            .iter()
            .filter(|e| e.log_type.string() == "error")
            .map(|e| e.log_message.string())
            .collect()
    }
}

/// Removes commas that directly precede `]` or `}` outside strings.
fn remove_trailing_commas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut pending_comma: Option<String> = None;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if let Some(pending) = pending_comma.as_mut() {
            if c.is_whitespace() {
                pending.push(c);
                continue;
            }
            let held = pending_comma.take().unwrap_or_default();
            if c == ']' || c == '}' {
                out.push_str(&held[1..]);
            } else {
                out.push_str(&held);
            }
        }
        match c {
            ',' => pending_comma = Some(String::from(",")),
            '"' => {
                in_string = true;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    if let Some(held) = pending_comma {
        out.push_str(&held);
    }
    out
}

/// Parses `/dev/loop3(0),/dev/loop4(12)` (or a `json_std` list of such entries).
fn segment_devices(field: &Field) -> Vec<SegmentDevice> {
    field
        .list()
        .iter()
        .filter_map(|entry| {
            let (device, rest) = entry.rsplit_once('(')?;
            let start = rest.strip_suffix(')')?.parse().ok()?;
            Some(SegmentDevice {
                device: device.to_owned(),
                start_extent: start,
            })
        })
        .collect()
}

fn vg_from_row(row: &Row) -> VolumeGroup {
    let f = |k| get(row, k);
    VolumeGroup {
        name: f("vg_name").string(),
        uuid: f("vg_uuid").string(),
        size: f("vg_size").bytes(),
        free: f("vg_free").bytes(),
        extent_size: f("vg_extent_size").bytes(),
        extent_count: f("vg_extent_count").u64().unwrap_or(0),
        free_extent_count: f("vg_free_count").u64().unwrap_or(0),
        pv_count: f("pv_count").u64().unwrap_or(0),
        lv_count: f("lv_count").u64().unwrap_or(0),
        missing_pv_count: f("vg_missing_pv_count").u64().unwrap_or(0),
        seqno: f("vg_seqno").u64().unwrap_or(0),
        attr: VgAttr::parse(&f("vg_attr").string()),
        tags: f("vg_tags").list(),
    }
}

fn pv_from_row(row: &Row, vg_name: Option<&str>, pvsegs: &[Row]) -> PhysicalVolume {
    let f = |k| get(row, k);
    let uuid = f("pv_uuid").string();
    let segments = pvsegs
        .iter()
        .filter(|s| get(s, "pv_uuid").string() == uuid)
        .map(|s| PvSegment {
            start_extent: get(s, "pvseg_start").u64().unwrap_or(0),
            extent_count: get(s, "pvseg_size").u64().unwrap_or(0),
            lv_uuid: get(s, "lv_uuid").text(),
        })
        .collect();
    PhysicalVolume {
        name: f("pv_name").string().into(),
        uuid,
        vg_name: vg_name.map(str::to_owned).or_else(|| f("vg_name").text()),
        dev_size: f("dev_size").bytes(),
        size: f("pv_size").bytes(),
        free: f("pv_free").bytes(),
        used: f("pv_used").bytes(),
        pe_start: f("pe_start").bytes(),
        extent_count: f("pv_pe_count").u64().unwrap_or(0),
        allocated_extent_count: f("pv_pe_alloc_count").u64().unwrap_or(0),
        attr: PvAttr::parse(&f("pv_attr").string()),
        tags: f("pv_tags").list(),
        segments,
    }
}

fn lv_from_row(row: &Row, vg_name: &str, segs: &[Row]) -> LogicalVolume {
    let f = |k| get(row, k);
    let uuid = f("lv_uuid").string();
    let segments = segs
        .iter()
        .filter(|s| get(s, "lv_uuid").string() == uuid)
        .map(|s| Segment {
            segtype: get(s, "segtype").string(),
            start: get(s, "seg_start").bytes(),
            start_extent: get(s, "seg_start_pe").u64().unwrap_or(0),
            size: get(s, "seg_size").bytes(),
            extent_count: get(s, "seg_size_pe").u64().unwrap_or(0),
            stripes: get(s, "stripes").u64().unwrap_or(0),
            devices: segment_devices(get(s, "devices")),
        })
        .collect();
    let name = f("lv_name").string();
    let vg_name = f("vg_name").text().unwrap_or_else(|| vg_name.to_owned());
    LogicalVolume {
        path: f("lv_path")
            .text()
            .unwrap_or_else(|| format!("/dev/{vg_name}/{name}"))
            .into(),
        dm_path: f("lv_dm_path").string().into(),
        size: f("lv_size").bytes(),
        attr: LvAttr::parse(&f("lv_attr").string()),
        active: f("lv_active").string() == "active",
        layout: f("lv_layout").list(),
        role: f("lv_role").list(),
        origin: f("origin").text(),
        pool_lv: f("pool_lv").text(),
        data_percent: f("data_percent").f64(),
        tags: f("lv_tags").list(),
        segments,
        vg_name,
        name,
        uuid,
    }
}

impl Report {
    /// Builds a report from `lvm fullreport` output.
    pub(crate) fn from_document(doc: &Document) -> Report {
        let mut report = Report::default();
        let empty = Vec::new();
        for group in &doc.report {
            let rows = |k: &str| group.get(k).unwrap_or(&empty);
            let vg = rows("vg").first().map(vg_from_row);
            let vg_name = vg.as_ref().map(|v| v.name.clone());
            for pv in rows("pv") {
                report
                    .pvs
                    .push(pv_from_row(pv, vg_name.as_deref(), rows("pvseg")));
            }
            for lv in rows("lv") {
                report.lvs.push(lv_from_row(
                    lv,
                    vg_name.as_deref().unwrap_or(""),
                    rows("seg"),
                ));
            }
            report.vgs.extend(vg);
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from real lvm2 2.03.16 `fullreport --reportformat json --units b --nosuffix`.
    const JSON_2_03_16: &str = r#"
  {
      "report": [
          {
              "vg": [
                  {"vg_uuid":"4Hvp", "vg_name":"expvg1", "vg_attr":"wz--n-", "vg_size":"205520896", "vg_free":"192937984", "vg_extent_size":"4194304", "vg_extent_count":"49", "vg_free_count":"46", "pv_count":"1", "vg_missing_pv_count":"0", "lv_count":"1", "vg_seqno":"2", "vg_tags":""}
              ]
              ,
              "pv": [
                  {"pv_uuid":"MRqW", "dev_size":"209715200", "pv_name":"/dev/loop0", "pe_start":"1048576", "pv_size":"205520896", "pv_free":"192937984", "pv_used":"12582912", "pv_attr":"a--", "pv_pe_count":"49", "pv_pe_alloc_count":"3", "pv_tags":""}
              ]
              ,
              "lv": [
                  {"lv_uuid":"MHel", "lv_name":"l1", "lv_path":"/dev/expvg1/l1", "lv_dm_path":"/dev/mapper/expvg1-l1", "lv_layout":"linear", "lv_role":"public", "lv_active":"", "lv_size":"12582912", "origin":"", "pool_lv":"", "lv_tags":"a,b", "data_percent":"", "lv_attr":"-wi-XX----"}
              ]
              ,
              "pvseg": [
                  {"pvseg_start":"0", "pvseg_size":"3", "pv_uuid":"MRqW", "lv_uuid":"MHel"},
                  {"pvseg_start":"3", "pvseg_size":"46", "pv_uuid":"MRqW", "lv_uuid":""}
              ]
              ,
              "seg": [
                  {"segtype":"linear", "stripes":"1", "seg_start":"0", "seg_start_pe":"0", "seg_size":"12582912", "seg_size_pe":"3", "devices":"/dev/loop0(0)", "lv_uuid":"MHel"}
              ]
          }
          ,
          {
              "pv": [
                  {"pv_uuid":"ssx3", "dev_size":"209715200", "pv_name":"/dev/loop1", "pe_start":"1048576", "pv_size":"209715200", "pv_free":"209715200", "pv_used":"0", "pv_attr":"---", "pv_pe_count":"0", "pv_pe_alloc_count":"0", "pv_tags":""}
              ]
          }
      ]
  }
"#;

    /// The same in `json_std` form (numbers, arrays, null), as lvm2 2.03.17+ prints it.
    const JSON_STD: &str = r#"
  {"report": [{
      "vg": [{"vg_uuid":"4Hvp", "vg_name":"expvg1", "vg_attr":"wz--n-", "vg_size":205520896, "vg_free":192937984, "vg_extent_size":4194304, "vg_extent_count":49, "vg_free_count":46, "pv_count":1, "vg_missing_pv_count":0, "lv_count":1, "vg_seqno":2, "vg_tags":[]}],
      "pv": [{"pv_uuid":"MRqW", "dev_size":209715200, "pv_name":"/dev/loop0", "pe_start":1048576, "pv_size":205520896, "pv_free":192937984, "pv_used":12582912, "pv_attr":"a--", "pv_pe_count":49, "pv_pe_alloc_count":3, "pv_tags":[]}],
      "lv": [{"lv_uuid":"MHel", "lv_name":"l1", "lv_path":"/dev/expvg1/l1", "lv_dm_path":"/dev/mapper/expvg1-l1", "lv_layout":["linear"], "lv_role":["public"], "lv_active":"", "lv_size":12582912, "origin":"", "pool_lv":"", "lv_tags":["a","b"], "data_percent":null, "lv_attr":"-wi-XX----"}],
      "pvseg": [{"pvseg_start":0, "pvseg_size":3, "pv_uuid":"MRqW", "lv_uuid":"MHel"}],
      "seg": [{"segtype":"linear", "stripes":1, "seg_start":0, "seg_start_pe":0, "seg_size":12582912, "seg_size_pe":3, "devices":["/dev/loop0(0)"], "lv_uuid":"MHel"}]
  }]}"#;

    fn check(report: &Report) {
        let vg = report.vg("expvg1").expect("vg");
        assert_eq!(vg.size, Bytes(205520896));
        assert_eq!(vg.extent_size, Bytes::mib(4));
        assert_eq!(vg.free_extent_count, 46);
        let lv = report.lv("expvg1", "l1").expect("lv");
        assert_eq!(lv.size, Bytes::mib(12));
        assert_eq!(lv.tags, ["a", "b"]);
        assert_eq!(lv.layout, ["linear"]);
        assert!(lv.is_public() && !lv.active);
        assert_eq!(lv.segments.len(), 1);
        assert_eq!(lv.segments[0].devices[0].device, "/dev/loop0");
        let pv = report.pv("/dev/loop0".as_ref()).expect("pv");
        assert_eq!(pv.vg_name.as_deref(), Some("expvg1"));
        assert_eq!(pv.pe_start, Bytes::mib(1));
        assert_eq!(pv.segments[0].lv_uuid.as_deref(), Some("MHel"));
    }

    #[test]
    fn parses_json_and_json_std_alike() {
        let a = Report::from_document(&Document::parse(JSON_2_03_16).unwrap());
        check(&a);
        assert_eq!(a.pvs.len(), 2);
        assert_eq!(a.pvs[1].vg_name, None);
        let b = Report::from_document(&Document::parse(JSON_STD).unwrap());
        check(&b);
    }

    #[test]
    fn repairs_the_2_03_16_trailing_comma() {
        // Real lvcreate output with the default command_log_selection on 2.03.16.
        let text = r#"{ "log": [ {"log_type":"print", "log_message":"Logical volume \"l3\" created, ok."}, ] }"#;
        let doc = Document::parse(text).unwrap();
        assert_eq!(doc.log.len(), 1);
        assert_eq!(
            doc.log[0].log_message.string(),
            "Logical volume \"l3\" created, ok."
        );
        assert!(Document::parse("{ \"log\": [ {\"a\": 1} \"x\" ] }").is_err());
    }
}
