//! A small read-only reader of bbolt files (`go.etcd.io/bbolt`, the key/value store containerd
//! keeps its metadata in), written from bbolt's format as its sources define it
//! (`internal/common/{page,meta,bucket}.go`, `db.go`); no maintained Rust crate reads them.
//!
//! The format (native byte order, little-endian on every platform containerd runs btrfs on):
//!
//! * The file is a sequence of pages of `page_size` bytes. Every page starts with a 16-byte
//!   header: `id u64, flags u16, count u16, overflow u32`; a page spans `overflow + 1` pages.
//!   Flags: `0x01` branch, `0x02` leaf, `0x04` meta, `0x10` freelist.
//! * Pages 0 and 1 are meta pages; the meta follows the header: `magic u32 (0xED0CDAED),
//!   version u32 (2), page_size u32, flags u32, root bucket (root pgid u64, sequence u64),
//!   freelist pgid u64, high-water pgid u64, txid u64, checksum u64`, the checksum being
//!   FNV-1a 64 of the 56 bytes before it. The valid meta with the higher txid is current.
//! * A branch page holds `count` elements `pos u32, ksize u32, pgid u64` (16 bytes); a leaf page
//!   `count` elements `flags u32, pos u32, ksize u32, vsize u32` (16 bytes). `pos` counts from
//!   the element's own offset; the key follows at `pos`, then (leaf) the value.
//! * A leaf element with flag `0x01` is a bucket: its value is the bucket header (root pgid u64,
//!   sequence u64), followed, for an *inline* bucket (root 0), by the bucket's single leaf page.
//!
//! bbolt writers hold `flock(LOCK_EX)` on the file as long as the database is open, so a
//! non-blocking `LOCK_SH` that fails means a writer (containerd) has it open: [`Db::open`] then
//! refuses ([`BoltError::InUse`]) rather than read a file being written. It holds the shared lock
//! only while reading the file into memory and never writes. Every offset is bounds-checked: a
//! corrupt file is an error naming the file and the page.

use nix::fcntl::{Flock, FlockArg};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// bbolt's magic number.
const MAGIC: u32 = 0xED0C_DAED;
/// The one file format version bbolt reads.
const VERSION: u32 = 2;
/// Page header bytes.
const PAGE_HEADER: usize = 16;
/// Bytes of a branch or leaf element.
const ELEMENT: usize = 16;
/// Bytes of a bucket header (root pgid, sequence).
const BUCKET_HEADER: usize = 16;
const BRANCH: u16 = 0x01;
const LEAF: u16 = 0x02;
const META: u16 = 0x04;
/// A leaf element that is a bucket.
const BUCKET_LEAF: u32 = 0x01;
/// The largest file read into memory (containerd's metadata is far smaller).
const MAX_FILE: u64 = 4 << 30;

/// Why a bbolt file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BoltError {
    /// The file could not be opened or read.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A writer holds the file open (its `flock(LOCK_EX)`): it is not read while being written.
    #[error("{} is open for writing (a process holds its exclusive lock: containerd runs): it is not read while being written; stop containerd for the full check, or rely on what its API says", path.display())]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// A writer holds the file and no point-in-time copy of it could be made
    /// ([`Db::open_or_copy`]).
    #[error("{} is open for writing (containerd runs) and no point-in-time copy of it could be made ({source}): stop containerd to read it", path.display())]
    InUseNotCopied {
        /// The file.
        path: PathBuf,
        /// Why the reflink copy failed (e.g. the file is not on btrfs).
        source: btrfs_kit::Error,
    },
    /// The file is not a bbolt database, or is damaged.
    #[error("{} is not a readable bbolt database ({}): {what}; containerd cannot read it either: restore it or let containerd rebuild its state", path.display(), match page { Some(p) => format!("page {p}"), None => "meta pages".to_string() })]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The page at fault (None: the meta pages).
        page: Option<u64>,
        /// What is wrong.
        what: String,
    },
}

/// How [`Db::open_or_copy`] read a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadFrom {
    /// The file itself: no writer held it.
    File,
    /// A point-in-time reflink copy: a writer (containerd) held it.
    PointInTimeCopy,
}

/// An opened bbolt file, read into memory (a snapshot of its current transaction).
#[derive(Debug, Clone)]
pub struct Db {
    path: PathBuf,
    data: Vec<u8>,
    page_size: usize,
    high_water: u64,
    txid: u64,
    root_pgid: u64,
    root_sequence: u64,
}

/// The fields of a meta page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    page_size: u32,
    root: u64,
    sequence: u64,
    high_water: u64,
    txid: u64,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// FNV-1a, 64 bits (bbolt's meta checksum).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The meta at byte `offset` (a meta page's start), or why it is invalid.
fn meta_at(data: &[u8], offset: usize) -> Result<Meta, String> {
    let m = offset + PAGE_HEADER;
    let bytes = data
        .get(m..m + 64)
        .ok_or_else(|| format!("the file ends before the meta page at byte {offset}"))?;
    let flags = u16_at(data, offset + 8).unwrap_or(0);
    let r32 = |at| u32_at(bytes, at).unwrap_or(0);
    let r64 = |at| u64_at(bytes, at).unwrap_or(0);
    if r32(0) != MAGIC {
        return Err(format!("no bbolt magic (found {:#x})", r32(0)));
    }
    if r32(4) != VERSION {
        return Err(format!(
            "format version {} (only {VERSION} is known)",
            r32(4)
        ));
    }
    if flags != META {
        return Err(format!("page flags {flags:#x}, not a meta page"));
    }
    let sum = fnv1a64(&bytes[..56]);
    if sum != r64(56) {
        return Err(format!(
            "meta checksum {:#018x}, computed {sum:#018x}",
            r64(56)
        ));
    }
    Ok(Meta {
        page_size: r32(8),
        root: r64(16),
        sequence: r64(24),
        high_water: r64(40),
        txid: r64(48),
    })
}

impl Db {
    /// Reads `path`, refusing while a writer holds it ([`BoltError::InUse`]).
    pub fn open(path: &Path) -> Result<Db, BoltError> {
        let io = |op, source| BoltError::Io {
            op,
            path: path.into(),
            source,
        };
        let file = std::fs::File::open(path).map_err(|e| io("open", e))?;
        let locked = match Flock::lock(file, FlockArg::LockSharedNonblock) {
            Ok(l) => l,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(BoltError::InUse { path: path.into() })
            }
            Err((_, e)) => return Err(io("lock (shared, non-blocking)", e.into())),
        };
        let len = locked.metadata().map_err(|e| io("stat", e))?.len();
        if len > MAX_FILE {
            return Err(BoltError::Corrupt {
                path: path.into(),
                page: None,
                what: format!("{len} bytes, more than a metadata database holds"),
            });
        }
        let mut data = Vec::with_capacity(len as usize);
        std::io::Read::read_to_end(&mut &*locked, &mut data).map_err(|e| io("read", e))?;
        drop(locked);
        Db::from_bytes(path, data)
    }

    /// Reads `path`; while a writer holds it, reads a point-in-time reflink copy instead
    /// ([`btrfs_kit::reflink::point_in_time_copy`]). bbolt writes a transaction's pages before
    /// the meta page that points at them, and only to pages the last committed transaction
    /// does not use, so the file at any instant holds a whole committed transaction (the one a
    /// power cut at that instant would leave), which is what the copy holds. For reading only:
    /// what is decided from it may be out of date by the time it is acted upon.
    pub fn open_or_copy(path: &Path) -> Result<(Db, ReadFrom), BoltError> {
        match Db::open(path) {
            Err(BoltError::InUse { .. }) => {}
            other => return other.map(|db| (db, ReadFrom::File)),
        }
        let mut copy = btrfs_kit::reflink::point_in_time_copy(path).map_err(|source| {
            BoltError::InUseNotCopied {
                path: path.into(),
                source,
            }
        })?;
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut copy, &mut data).map_err(|source| BoltError::Io {
            op: "read the point-in-time copy of",
            path: path.into(),
            source,
        })?;
        Db::from_bytes(path, data).map(|db| (db, ReadFrom::PointInTimeCopy))
    }

    /// Parses the bytes of a bbolt file (`path` names it in errors).
    pub fn from_bytes(path: &Path, data: Vec<u8>) -> Result<Db, BoltError> {
        let corrupt = |page, what| BoltError::Corrupt {
            path: path.into(),
            page,
            what,
        };
        // Page 0 gives the page size; when it is damaged, page 1 is looked for at the usual
        // sizes (bbolt uses the OS page size).
        let first = meta_at(&data, 0);
        let sizes: Vec<usize> = match &first {
            Ok(m) => vec![m.page_size as usize],
            Err(_) => vec![4096, 8192, 16384, 65536],
        };
        let mut second = Err("not found".to_string());
        for size in sizes {
            second = meta_at(&data, size).and_then(|m| {
                if m.page_size as usize == size {
                    Ok(m)
                } else {
                    Err(format!("page size {} at offset {size}", m.page_size))
                }
            });
            if second.is_ok() {
                break;
            }
        }
        let meta = match (&first, &second) {
            (Ok(a), Ok(b)) => {
                if b.txid > a.txid {
                    *b
                } else {
                    *a
                }
            }
            (Ok(a), Err(_)) => *a,
            (Err(_), Ok(b)) => *b,
            (Err(a), Err(b)) => {
                return Err(corrupt(
                    None,
                    format!("neither meta page is valid (page 0: {a}; page 1: {b})"),
                ))
            }
        };
        let page_size = meta.page_size as usize;
        if !(512..=1 << 20).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(corrupt(None, format!("page size {page_size}")));
        }
        Ok(Db {
            path: path.into(),
            data,
            page_size,
            high_water: meta.high_water,
            txid: meta.txid,
            root_pgid: meta.root,
            root_sequence: meta.sequence,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current transaction id (the valid meta page with the highest).
    pub fn txid(&self) -> u64 {
        self.txid
    }

    /// The page size the file was created with.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// The root bucket (its keys are the top-level buckets).
    pub fn root(&self) -> Bucket<'_> {
        Bucket {
            db: self,
            root: Root::Page(self.root_pgid),
            sequence: self.root_sequence,
        }
    }

    /// The bucket at `path` of nested bucket names below the root, if every one exists.
    pub fn bucket(&self, path: &[&[u8]]) -> Result<Option<Bucket<'_>>, BoltError> {
        let mut bucket = self.root();
        for name in path {
            match bucket.bucket(name)? {
                Some(b) => bucket = b,
                None => return Ok(None),
            }
        }
        Ok(Some(bucket))
    }

    /// Counts the pages of every bucket's tree, reading each page once (a check of the whole
    /// file: every reachable page is bounds-checked).
    pub fn stats(&self) -> Result<TreeStats, BoltError> {
        let mut stats = TreeStats::default();
        let mut visited = HashSet::new();
        let mut pending = vec![self.root_pgid];
        let mut inline: Vec<&[u8]> = Vec::new();
        while let Some(id) = pending.pop() {
            if !visited.insert(id) {
                return Err(self.corrupt(id, "a page reached twice (a cycle)"));
            }
            let page = self.page(id)?;
            stats.overflow += (page.bytes.len() / self.page_size - 1) as u64;
            if page.leaf {
                stats.leaf += 1;
            } else {
                stats.branch += 1;
            }
            let mut queue = vec![page];
            while let Some(page) = queue.pop() {
                for i in 0..page.count {
                    if !page.leaf {
                        pending.push(page.branch(i).map_err(|w| self.corrupt(page.id, w))?.1);
                        continue;
                    }
                    let (_, value, flags) = page.leaf(i).map_err(|w| self.corrupt(page.id, w))?;
                    if flags & BUCKET_LEAF == 0 {
                        continue;
                    }
                    match u64_at(value, 0) {
                        Some(0) => {
                            stats.inline_buckets += 1;
                            inline.push(&value[BUCKET_HEADER.min(value.len())..]);
                        }
                        Some(root) => pending.push(root),
                        None => {
                            return Err(
                                self.corrupt(page.id, "a bucket value shorter than its header")
                            )
                        }
                    }
                }
                while let Some(bytes) = inline.pop() {
                    queue
                        .push(PageRef::new(bytes, page.id).map_err(|w| {
                            self.corrupt(page.id, format!("an inline bucket: {w}"))
                        })?);
                }
            }
        }
        Ok(stats)
    }

    fn corrupt(&self, page: u64, what: impl Into<String>) -> BoltError {
        BoltError::Corrupt {
            path: self.path.clone(),
            page: Some(page),
            what: what.into(),
        }
    }

    /// The bytes of page `id` (with its overflow pages), checked.
    fn page(&self, id: u64) -> Result<PageRef<'_>, BoltError> {
        if id < 2 || id >= self.high_water {
            return Err(self.corrupt(
                id,
                format!(
                    "a reference to page {id}, outside the data pages 2..{}",
                    self.high_water
                ),
            ));
        }
        let start = usize::try_from(id)
            .ok()
            .and_then(|i| i.checked_mul(self.page_size))
            .filter(|s| s + PAGE_HEADER <= self.data.len())
            .ok_or_else(|| self.corrupt(id, "beyond the end of the file"))?;
        let header = &self.data[start..start + PAGE_HEADER];
        let overflow = u32_at(header, 12).unwrap_or(0) as usize;
        let end = overflow
            .checked_add(1)
            .and_then(|n| n.checked_mul(self.page_size))
            .and_then(|n| n.checked_add(start))
            .filter(|e| *e <= self.data.len())
            .ok_or_else(|| {
                self.corrupt(
                    id,
                    format!("{overflow} overflow pages reach beyond the end of the file"),
                )
            })?;
        let found = u64_at(header, 0).unwrap_or(0);
        if found != id {
            return Err(self.corrupt(id, format!("the page says it is page {found}")));
        }
        PageRef::new(&self.data[start..end], id).map_err(|w| self.corrupt(id, w))
    }
}

/// The pages of a file's trees ([`Db::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeStats {
    /// Branch pages.
    pub branch: u64,
    /// Leaf pages.
    pub leaf: u64,
    /// Overflow pages (beyond the first page of a branch or leaf).
    pub overflow: u64,
    /// Inline buckets (stored inside their parent's leaf).
    pub inline_buckets: u64,
}

/// A page's bytes, its kind and element count, checked to hold its elements.
#[derive(Debug, Clone, Copy)]
struct PageRef<'a> {
    bytes: &'a [u8],
    id: u64,
    leaf: bool,
    count: usize,
}

impl<'a> PageRef<'a> {
    fn new(bytes: &'a [u8], id: u64) -> Result<Self, String> {
        let flags = u16_at(bytes, 8).ok_or("a page shorter than its header")?;
        let count = usize::from(u16_at(bytes, 10).ok_or("a page shorter than its header")?);
        let leaf = match flags {
            LEAF => true,
            BRANCH => false,
            other => {
                return Err(format!(
                    "flags {other:#x} where a branch or leaf page belongs"
                ))
            }
        };
        if PAGE_HEADER + count * ELEMENT > bytes.len() {
            return Err(format!(
                "{count} elements do not fit in {} bytes",
                bytes.len()
            ));
        }
        Ok(PageRef {
            bytes,
            id,
            leaf,
            count,
        })
    }

    /// Element `i`'s offset, and its four u32 words (a branch's pgid spans the last two).
    fn element(&self, i: usize) -> (usize, [u32; 4]) {
        let at = PAGE_HEADER + i * ELEMENT;
        let w = |k: usize| u32_at(self.bytes, at + 4 * k).unwrap_or(0);
        (at, [w(0), w(1), w(2), w(3)])
    }

    fn slice(&self, from: usize, len: usize) -> Result<&'a [u8], String> {
        from.checked_add(len)
            .and_then(|end| self.bytes.get(from..end))
            .ok_or_else(|| {
                format!(
                    "an element's bytes {from}..+{len} lie outside the page ({} bytes)",
                    self.bytes.len()
                )
            })
    }

    /// A leaf element: (key, value, flags).
    fn leaf(&self, i: usize) -> Result<(&'a [u8], &'a [u8], u32), String> {
        let (at, [flags, pos, ksize, vsize]) = self.element(i);
        let k = at + pos as usize;
        let key = self.slice(k, ksize as usize)?;
        let value = self.slice(k + ksize as usize, vsize as usize)?;
        Ok((key, value, flags))
    }

    /// A branch element: (first key, child page).
    fn branch(&self, i: usize) -> Result<(&'a [u8], u64), String> {
        let (at, [pos, ksize, _, _]) = self.element(i);
        let pgid = u64_at(self.bytes, at + 8).unwrap_or(0);
        Ok((self.slice(at + pos as usize, ksize as usize)?, pgid))
    }
}

/// Where a bucket's tree starts.
#[derive(Debug, Clone, Copy)]
enum Root<'a> {
    /// A page of the file.
    Page(u64),
    /// An inline bucket's leaf page, inside its parent's value.
    Inline(&'a [u8]),
}

/// A bucket of a [`Db`].
#[derive(Debug, Clone, Copy)]
pub struct Bucket<'a> {
    db: &'a Db,
    root: Root<'a>,
    sequence: u64,
}

/// A value in a bucket: bytes, or a nested bucket.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// A plain value.
    Data(&'a [u8]),
    /// A nested bucket.
    Bucket(Bucket<'a>),
}

impl<'a> Value<'a> {
    /// The bytes of a plain value.
    pub fn data(&self) -> Option<&'a [u8]> {
        match self {
            Value::Data(d) => Some(d),
            Value::Bucket(_) => None,
        }
    }

    /// The nested bucket.
    pub fn bucket(&self) -> Option<Bucket<'a>> {
        match self {
            Value::Bucket(b) => Some(*b),
            Value::Data(_) => None,
        }
    }
}

impl<'a> Bucket<'a> {
    /// The bucket's sequence (`NextSequence`'s last value: containerd's snapshot ids).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// A cursor over the bucket's keys, in key order.
    pub fn cursor(&self) -> Cursor<'a> {
        let mut cursor = Cursor {
            db: self.db,
            stack: Vec::new(),
            pending: None,
            visited: HashSet::new(),
            error: None,
        };
        match self.root {
            Root::Page(id) => cursor.pending = Some(id),
            Root::Inline(bytes) => match PageRef::new(bytes, 0) {
                Ok(p) if p.leaf => cursor.stack.push((p, 0)),
                Ok(_) => {
                    cursor.error = Some(
                        self.db
                            .corrupt(0, "an inline bucket whose page is not a leaf"),
                    )
                }
                Err(w) => cursor.error = Some(self.db.corrupt(0, format!("an inline bucket: {w}"))),
            },
        }
        cursor
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> Result<Vec<(&'a [u8], Value<'a>)>, BoltError> {
        self.cursor().collect()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Result<Option<Value<'a>>, BoltError> {
        for entry in self.cursor() {
            let (k, v) = entry?;
            match k.cmp(key) {
                std::cmp::Ordering::Equal => return Ok(Some(v)),
                std::cmp::Ordering::Greater => return Ok(None),
                std::cmp::Ordering::Less => {}
            }
        }
        Ok(None)
    }

    /// The plain value of `key`, if present and not a bucket.
    pub fn value(&self, key: &[u8]) -> Result<Option<&'a [u8]>, BoltError> {
        Ok(self.get(key)?.and_then(|v| v.data()))
    }

    /// The nested bucket `key`, if present and a bucket.
    pub fn bucket(&self, key: &[u8]) -> Result<Option<Bucket<'a>>, BoltError> {
        Ok(self.get(key)?.and_then(|v| v.bucket()))
    }

    /// The names of the nested buckets, in key order.
    pub fn bucket_names(&self) -> Result<Vec<&'a [u8]>, BoltError> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(|(_, v)| v.bucket().is_some())
            .map(|(k, _)| k)
            .collect())
    }
}

/// A depth-first walk over a bucket's pages, yielding its entries in key order. A page seen
/// twice (a cycle in a corrupt file) is an error, as is any bad offset.
pub struct Cursor<'a> {
    db: &'a Db,
    /// (page, next element).
    stack: Vec<(PageRef<'a>, usize)>,
    /// A page to descend into before going on.
    pending: Option<u64>,
    visited: HashSet<u64>,
    /// An error to report first (a bad inline page).
    error: Option<BoltError>,
}

impl std::fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("file", &self.db.path)
            .field("depth", &self.stack.len())
            .finish()
    }
}

impl<'a> Iterator for Cursor<'a> {
    type Item = Result<(&'a [u8], Value<'a>), BoltError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        loop {
            if let Some(id) = self.pending.take() {
                if !self.visited.insert(id) || self.stack.len() > 64 {
                    return Some(Err(self.fail(id, "a page reached twice (a cycle)".into())));
                }
                match self.db.page(id) {
                    Ok(p) => self.stack.push((p, 0)),
                    Err(e) => {
                        self.stack.clear();
                        return Some(Err(e));
                    }
                }
            }
            let (page, index) = self.stack.last_mut()?;
            let page = *page;
            if *index >= page.count {
                self.stack.pop();
                continue;
            }
            let i = *index;
            *index += 1;
            if !page.leaf {
                match page.branch(i) {
                    Ok((_, child)) => self.pending = Some(child),
                    Err(w) => return Some(Err(self.fail(page.id, w))),
                }
                continue;
            }
            return Some(match page.leaf(i) {
                Ok((key, value, flags)) if flags & BUCKET_LEAF != 0 => {
                    match self.nested(page.id, value) {
                        Ok(b) => Ok((key, Value::Bucket(b))),
                        Err(e) => Err(e),
                    }
                }
                Ok((key, value, _)) => Ok((key, Value::Data(value))),
                Err(w) => Err(self.fail(page.id, w)),
            });
        }
    }
}

impl<'a> Cursor<'a> {
    fn fail(&mut self, page: u64, what: String) -> BoltError {
        self.stack.clear();
        self.pending = None;
        self.db.corrupt(page, what)
    }

    /// The bucket whose header is `value` (a leaf value on page `page`).
    fn nested(&mut self, page: u64, value: &'a [u8]) -> Result<Bucket<'a>, BoltError> {
        let (Some(root), Some(sequence)) = (u64_at(value, 0), u64_at(value, 8)) else {
            return Err(self.fail(
                page,
                format!(
                    "a bucket value of {} bytes, shorter than its header",
                    value.len()
                ),
            ));
        };
        let root = if root == 0 {
            Root::Inline(&value[BUCKET_HEADER..])
        } else {
            Root::Page(root)
        };
        Ok(Bucket {
            db: self.db,
            root,
            sequence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_values() {
        // The FNV reference test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let path = Path::new("/nowhere/meta.db");
        for data in [Vec::new(), vec![0u8; 100], vec![0xffu8; 16384]] {
            let e = Db::from_bytes(path, data).unwrap_err().to_string();
            assert!(e.contains("/nowhere/meta.db") && e.contains("meta"), "{e}");
        }
    }
}
