//! containerd's btrfs snapshotter on disk (`plugins/snapshots/btrfs/btrfs.go`,
//! `core/snapshots/storage/bolt.go`):
//!
//! * `<root>/metadata.db`, bbolt: `v1/snapshots/<key>` buckets with `id` (uvarint, from the
//!   `snapshots` bucket's sequence), `kind` (one byte: 1 view, 2 active, 3 committed), `parent`
//!   (the parent's key), `inodes`/`size` (varints), labels; `v1/parents` maps
//!   `uvarint(parent id) 0 uvarint(child id)` to the child's key;
//! * one subvolume per snapshot, `<root>/<kind dir>/<id>`: `view/`, `active/`, `snapshots/`
//!   (committed);
//! * `Remove` snapshots `<dir>/<id>` to `<dir>/rm-<id>`, deletes `<dir>/<id>`, commits, then
//!   deletes `rm-<id>`: a crash in between leaves an `rm-*` subvolume nothing will delete.
//!   `Commit` snapshots `active/<id>` read-only to `snapshots/<id>` and deletes `active/<id>`
//!   after the transaction: a crash there leaves `active/<id>` under a committed record.
//!
//! An **orphan** is a subvolume in one of the three directories that no record of its kind
//! names (or an `rm-*` leftover); a **missing** snapshot is a record whose subvolume is gone.

use super::bolt::{BoltError, Db};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The snapshotter's own database, below its root.
pub const METADATA_DB: &str = "metadata.db";

/// A snapshot's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A read-only view (`view/`).
    View,
    /// A writable snapshot (`active/`): a container's layer, or a layer being unpacked.
    Active,
    /// A committed, read-only layer (`snapshots/`).
    Committed,
}

impl Kind {
    /// The three kinds, in directory order.
    pub const ALL: [Kind; 3] = [Kind::Active, Kind::View, Kind::Committed];

    /// containerd's byte for the kind.
    pub fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::View),
            2 => Some(Kind::Active),
            3 => Some(Kind::Committed),
            _ => None,
        }
    }

    /// The directory its subvolumes live in.
    pub fn dir(self) -> &'static str {
        match self {
            Kind::View => "view",
            Kind::Active => "active",
            Kind::Committed => "snapshots",
        }
    }

    /// The name `ctr snapshots ls` prints (`View`, `Active`, `Committed`).
    pub fn ctr_name(self) -> &'static str {
        match self {
            Kind::View => "View",
            Kind::Active => "Active",
            Kind::Committed => "Committed",
        }
    }

    /// The kind `ctr` names.
    pub fn from_ctr(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.ctr_name() == name)
    }
}

/// One record of the snapshotter's metadata.db.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// The backend key (`<namespace>/<n>/<key in the namespace>`, as containerd's metadata
    /// layer names them).
    pub key: String,
    /// The subvolume's id.
    pub id: u64,
    /// Its kind.
    pub kind: Kind,
    /// The parent's backend key.
    pub parent: Option<String>,
}

impl Record {
    /// The subvolume's path below the snapshotter root.
    pub fn subvolume(&self) -> PathBuf {
        Path::new(self.kind.dir()).join(self.id.to_string())
    }
}

/// Why the snapshotter's layout could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// Its database.
    #[error(transparent)]
    Bolt(#[from] BoltError),
    /// A directory could not be listed.
    #[error("list {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Reads metadata.db's records (`v1/snapshots`), in key order.
pub fn records(db: &Db) -> Result<Vec<Record>, BoltError> {
    let Some(snapshots) = db.bucket(&[b"v1", b"snapshots"])? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (key, value) in snapshots.entries()? {
        let Some(b) = value.bucket() else { continue };
        let id = b.value(b"id")?.and_then(uvarint);
        let kind = b
            .value(b"kind")?
            .and_then(|k| k.first().copied())
            .and_then(Kind::from_byte);
        let (Some(id), Some(kind)) = (id, kind) else {
            return Err(BoltError::Corrupt {
                path: db.path().into(),
                page: None,
                what: format!(
                    "snapshot {:?} has no valid id or kind",
                    String::from_utf8_lossy(key)
                ),
            });
        };
        let parent = b
            .value(b"parent")?
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned());
        out.push(Record {
            key: String::from_utf8_lossy(key).into_owned(),
            id,
            kind,
            parent,
        });
    }
    Ok(out)
}

/// An unsigned LEB128 varint (Go's `binary.Uvarint`) filling the whole value.
pub fn uvarint(bytes: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// A subvolume found in the snapshotter's directories.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Entry {
    /// `active`, `view` or `snapshots`.
    pub kind: Kind,
    /// Its name (a decimal id, `rm-<id>`, or anything else).
    pub name: String,
}

impl Entry {
    /// Its path below the snapshotter root.
    pub fn path(&self) -> PathBuf {
        Path::new(self.kind.dir()).join(&self.name)
    }
}

/// The entries of `<root>/{active,view,snapshots}`; a missing directory is empty.
pub fn entries(root: &Path) -> Result<Vec<Entry>, LayoutError> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let dir = root.join(kind.dir());
        let list = match std::fs::read_dir(&dir) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(LayoutError::Io { path: dir, source }),
        };
        for e in list {
            let e = e.map_err(|source| LayoutError::Io {
                path: dir.clone(),
                source,
            })?;
            out.push(Entry {
                kind,
                name: e.file_name().to_string_lossy().into_owned(),
            });
        }
    }
    out.sort();
    Ok(out)
}

/// The snapshotter's layout judged against its records.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SnapshotterReport {
    /// The snapshotter root.
    pub root: PathBuf,
    /// Whether any of its directories exists.
    pub exists: bool,
    /// Subvolumes found.
    pub subvolumes: usize,
    /// Records in metadata.db.
    pub records: usize,
    /// Subvolumes no record of their kind names (not `rm-*`), by path below the root.
    pub orphans: Vec<PathBuf>,
    /// `rm-*` subvolumes a crashed `Remove` left.
    pub removing: Vec<PathBuf>,
    /// Records whose subvolume is gone: (key, expected path).
    pub missing: Vec<(String, PathBuf)>,
}

impl SnapshotterReport {
    /// Every subvolume `--fix-orphans` deletes: orphans and `rm-*` leftovers.
    pub fn removable(&self) -> Vec<PathBuf> {
        self.orphans.iter().chain(&self.removing).cloned().collect()
    }
}

/// Judges the snapshotter at `root` against `records`.
pub fn judge(root: &Path, records: &[Record]) -> Result<SnapshotterReport, LayoutError> {
    let exists = Kind::ALL.iter().any(|k| root.join(k.dir()).is_dir());
    let found = entries(root)?;
    let expected: BTreeMap<PathBuf, &Record> = records.iter().map(|r| (r.subvolume(), r)).collect();
    let mut report = SnapshotterReport {
        root: root.into(),
        exists,
        subvolumes: found.len(),
        records: records.len(),
        ..Default::default()
    };
    for e in &found {
        if e.name.starts_with("rm-") {
            report.removing.push(e.path());
        } else if !expected.contains_key(&e.path()) {
            report.orphans.push(e.path());
        }
    }
    report.orphans.sort();
    report.removing.sort();
    let present: std::collections::BTreeSet<PathBuf> = found.iter().map(Entry::path).collect();
    for (path, r) in &expected {
        if !present.contains(path) {
            report.missing.push((r.key.clone(), path.clone()));
        }
    }
    Ok(report)
}

/// Reads `<root>/metadata.db` and judges the layout (refusing while containerd holds the
/// database: [`BoltError::InUse`]).
pub fn analyse(root: &Path) -> Result<(Vec<Record>, SnapshotterReport), LayoutError> {
    let db = Db::open(&root.join(METADATA_DB))?;
    let records = records(&db)?;
    let report = judge(root, &records)?;
    Ok((records, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarints_as_go_writes_them() {
        assert_eq!(uvarint(&[1]), Some(1));
        assert_eq!(uvarint(&[0xac, 0x02]), Some(300));
        assert_eq!(uvarint(&[0x80]), None);
        assert_eq!(uvarint(&[]), None);
    }

    #[test]
    fn orphans_leftovers_and_missing_records() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for p in [
            "snapshots/1",
            "snapshots/rm-7",
            "active/1",
            "active/3",
            "view/9",
        ] {
            std::fs::create_dir_all(root.join(p)).unwrap();
        }
        let rec = |key: &str, id, kind| Record {
            key: key.into(),
            id,
            kind,
            parent: None,
        };
        let records = [
            rec("a", 1, Kind::Committed),
            rec("b", 3, Kind::Active),
            rec("c", 4, Kind::Committed),
        ];
        let r = judge(root, &records).unwrap();
        // active/1: a committed record's leftover of Commit; view/9: nothing names it.
        assert_eq!(
            r.orphans,
            [PathBuf::from("active/1"), PathBuf::from("view/9")]
        );
        assert_eq!(r.removing, [PathBuf::from("snapshots/rm-7")]);
        assert_eq!(r.missing, [("c".to_string(), PathBuf::from("snapshots/4"))]);
        assert_eq!(r.subvolumes, 5);
    }
}
