//! Naming the damage of a scrub: where its uncorrectable errors are and which files they hit.
//!
//! How the addresses are learned: the scrub ioctl returns only counts, so the scrub watches
//! the kernel log ([`kmsg`](super::kmsg)), where the kernel names, per bad sector, the 64 KiB
//! stripe holding it (logical address, device, physical offset). For each such stripe in a
//! data block group this module then reads the stripe from that device (`O_DIRECT`, so no
//! cache hides the disk) and checks every sector against its checksum from the checksum tree:
//! the sectors that fail (or cannot be read) are the damaged ones, exactly. Nothing is read
//! through the filesystem, so no read-repair runs, no error counter rises and no extra kernel
//! messages appear; files in subvolumes not reachable from the mount are found too.
//! `LOGICAL_INO_V2` + `INO_PATHS` then name the files, once per subvolume holding them.
//!
//! Why not the other ways: re-reading every file through the filesystem would find damaged
//! files without the log, but it costs a full read of all data (snapshots again and again),
//! bumps the corruption counters and triggers repairs; the kernel's own "checksum error ...
//! (path: ...)" warnings name the file of the stripe's first sector, not of the bad one, and
//! are rate-limited harder.
//!
//! Stripes in metadata block groups are reported as damaged metadata (no file to name; the
//! filesystem needs `btrfs check` or a restore). When a data stripe shows no bad sector (the
//! data changed since, or a read error that went away), the files in it are reported as
//! suspects, not as damaged.

use super::kmsg::{ErrorRecord, KernelLog};
use crate::chunk::Chunk;
use crate::error::Result;
use crate::fs::Filesystem;
use crate::info::{ChecksumType, DeviceInfo};
use crate::inspect::{DamagedFile, FileResolver, InodeRef};
use crate::profile::BlockGroupKind;
use crate::tree_search::SearchRange;
use btrfs_sys as sys;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// The length of the stripe the kernel names in its scrub messages (`BTRFS_STRIPE_LEN`).
pub const STRIPE_LEN: u64 = 64 << 10;
/// How far before an address a checksum item covering it can start: an item holds at most a
/// 64 KiB leaf of 4-byte checksums, 16 Ki sectors of 4 KiB.
const MAX_CSUM_ITEM_SPAN: u64 = 64 << 20;

/// A place with an uncorrectable error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DamagedLocation {
    /// Logical start address.
    pub logical: u64,
    /// Length in bytes: one sector when `pinpointed`, else the stripe the kernel named.
    pub length: u64,
    /// The device of the bad copy, when known.
    pub devid: Option<u64>,
    /// The physical offset of the bad copy on that device, when known.
    pub physical: Option<u64>,
    /// What the block group holds (data, metadata, system), when known.
    pub kind: Option<BlockGroupKind>,
    /// Whether this exact sector failed its checksum (or could not be read); false: somewhere
    /// in this range, as far as the kernel said.
    pub pinpointed: bool,
}

/// Where a scrub's uncorrectable errors are and which files they hit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DamageReport {
    /// Uncorrectable sectors the kernel counted in this run.
    pub uncorrectable_errors: u64,
    /// "unable to fixup" messages seen in the kernel log during this run.
    pub logged: u64,
    /// The damaged places, by logical address.
    pub locations: Vec<DamagedLocation>,
    /// Files holding a pinpointed damaged sector, once per subvolume: these read as EIO there.
    pub files: Vec<DamagedFile>,
    /// Files in a stripe the kernel named where no bad sector could be pinpointed.
    pub suspects: Vec<DamagedFile>,
    /// Whether every uncorrectable error was accounted for; false when kernel log records were
    /// rate-limited, overwritten or unreadable (then run the scrub again, or read the files).
    pub complete: bool,
    /// Why the report is incomplete, or what could not be checked.
    pub notes: Vec<String>,
}

impl DamageReport {
    /// Whether metadata (tree blocks) is damaged: no file to name, the filesystem itself is
    /// at risk.
    pub fn metadata_damaged(&self) -> bool {
        self.locations.iter().any(|l| {
            matches!(
                l.kind,
                Some(BlockGroupKind::Metadata | BlockGroupKind::System)
            )
        })
    }
}

/// The uncorrectable records, once each, with how many log lines named them.
fn unfixed(log: &KernelLog) -> BTreeMap<ErrorRecord, u64> {
    let mut out = BTreeMap::new();
    for r in log.records.iter().filter(|r| !r.corrected) {
        *out.entry(r.clone()).or_insert(0) += 1;
    }
    out
}

/// Builds the report after a scrub that counted `uncorrectable` sectors. Never fails: what
/// cannot be checked is said in `notes`.
pub(crate) fn report(
    fs: &Filesystem,
    devices: &[DeviceInfo],
    log: &KernelLog,
    uncorrectable: u64,
) -> DamageReport {
    let records = unfixed(log);
    let mut report = DamageReport {
        uncorrectable_errors: uncorrectable,
        logged: records.values().sum(),
        locations: Vec::new(),
        files: Vec::new(),
        suspects: Vec::new(),
        complete: false,
        notes: Vec::new(),
    };
    if let Some(why) = &log.unreadable {
        report.notes.push(why.clone());
    }
    if log.lost {
        report
            .notes
            .push("kernel log records were overwritten before they could be read".into());
    }
    let layout = fs.chunks().and_then(|c| Ok((c, fs.info()?)));
    let (chunks, info) = match layout {
        Ok(l) => l,
        Err(e) => {
            report.notes.push(format!("cannot read the chunk map: {e}"));
            return report;
        }
    };
    let sectorsize = info.sectorsize.bytes().max(512);
    let mut bad = BTreeSet::new();
    let mut suspect = BTreeSet::new();
    let mut accounted = 0u64;
    for (record, lines) in &records {
        let chunk = chunk_of(&chunks, record.logical);
        let length = chunk.map_or(STRIPE_LEN, |c| {
            STRIPE_LEN.min(c.logical + c.length.bytes() - record.logical)
        });
        let devid = record.device.as_deref().and_then(|p| devid_of(devices, p));
        let stripe = DamagedLocation {
            logical: record.logical,
            length,
            devid,
            physical: record.physical,
            kind: chunk.map(|c| c.kind),
            pinpointed: false,
        };
        let is_data = chunk.is_some_and(|c| c.kind.holds_data());
        let found = match (is_data, &record.device, record.physical) {
            (true, Some(dev), Some(physical)) => {
                match pinpoint(
                    fs,
                    dev,
                    physical,
                    record.logical,
                    length,
                    sectorsize,
                    info.checksum,
                ) {
                    Ok(sectors) => sectors,
                    Err(e) => {
                        report.notes.push(format!(
                            "could not check stripe {} on {}: {e}",
                            record.logical,
                            dev.display()
                        ));
                        Vec::new()
                    }
                }
            }
            _ => Vec::new(),
        };
        if found.is_empty() {
            accounted += lines;
            if is_data {
                suspect.extend((0..length / sectorsize).map(|i| record.logical + i * sectorsize));
            }
            report.locations.push(stripe);
        } else {
            accounted += found.len() as u64;
            for sector in found {
                bad.insert(sector);
                report.locations.push(DamagedLocation {
                    logical: sector,
                    length: sectorsize,
                    physical: record.physical.map(|p| p + (sector - record.logical)),
                    pinpointed: true,
                    ..stripe.clone()
                });
            }
        }
    }
    report
        .locations
        .sort_by_key(|l| (l.logical, l.devid, l.physical));
    report.locations.dedup();
    let mut resolver = FileResolver::new(fs);
    match files_at(fs, &mut resolver, &bad) {
        Ok(files) => report.files = files,
        Err(e) => report
            .notes
            .push(format!("could not name the damaged files: {e}")),
    }
    let suspect: BTreeSet<u64> = suspect.difference(&bad).copied().collect();
    match files_at(fs, &mut resolver, &suspect) {
        Ok(files) => {
            report.suspects = files
                .into_iter()
                .filter(|f| {
                    !report
                        .files
                        .iter()
                        .any(|d| (d.subvolume_id, d.inode) == (f.subvolume_id, f.inode))
                })
                .collect()
        }
        Err(e) => report
            .notes
            .push(format!("could not name the suspect files: {e}")),
    }
    if report.logged < uncorrectable && accounted < uncorrectable {
        report.notes.push(format!(
            "the kernel logged {} of {uncorrectable} uncorrectable errors (it rate-limits these messages); {accounted} are accounted for",
            report.logged
        ));
    }
    report.complete = log.unreadable.is_none() && !log.lost && accounted >= uncorrectable;
    report
}

/// The device id of the device at `path` (as the kernel names it in the log).
fn devid_of(devices: &[DeviceInfo], path: &Path) -> Option<u64> {
    let real = path.canonicalize().ok();
    devices
        .iter()
        .find(|d| d.path == path || (real.is_some() && d.path.canonicalize().ok() == real))
        .map(|d| d.devid)
}

/// The files at these logical addresses, merged per subvolume and inode.
fn files_at(
    fs: &Filesystem,
    resolver: &mut FileResolver<'_>,
    sectors: &BTreeSet<u64>,
) -> Result<Vec<DamagedFile>> {
    let mut refs: Vec<InodeRef> = Vec::new();
    for &sector in sectors {
        refs.extend(fs.inodes_at_logical(sector)?);
    }
    resolver.resolve(&refs)
}

/// The data checksums of the sectors in `[logical, logical + length)`, by sector address.
fn checksums(
    fs: &Filesystem,
    logical: u64,
    length: u64,
    sectorsize: u64,
    size: usize,
) -> Result<BTreeMap<u64, Vec<u8>>> {
    let objectid = sys::BTRFS_EXTENT_CSUM_OBJECTID as i64 as u64;
    let range = SearchRange {
        objectids: (objectid, objectid),
        types: (
            sys::BTRFS_EXTENT_CSUM_KEY as u8,
            sys::BTRFS_EXTENT_CSUM_KEY as u8,
        ),
        offsets: (
            logical.saturating_sub(MAX_CSUM_ITEM_SPAN),
            logical + length - 1,
        ),
        ..SearchRange::whole_tree(sys::BTRFS_CSUM_TREE_OBJECTID.into())
    };
    let mut out = BTreeMap::new();
    for item in fs.tree_search(range) {
        let item = item?;
        for (i, csum) in item.data.chunks_exact(size).enumerate() {
            let sector = item.offset + i as u64 * sectorsize;
            if (logical..logical + length).contains(&sector) {
                out.insert(sector, csum.to_vec());
            }
        }
    }
    Ok(out)
}

/// Reads `length` bytes at `physical` of `device` bypassing the page cache.
fn read_direct(device: &Path, physical: u64, length: usize) -> std::io::Result<Vec<u8>> {
    let file = File::options()
        .read(true)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(device)?;
    // O_DIRECT needs an aligned buffer: over-allocate and read into an aligned window.
    const ALIGN: usize = 4096;
    let mut raw = vec![0u8; length + ALIGN];
    let start = raw.as_ptr().align_offset(ALIGN);
    let buf = &mut raw[start..start + length];
    let mut done = 0;
    while done < length {
        let n = file.read_at(&mut buf[done..], physical + done as u64)?;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
        done += n;
    }
    Ok(buf.to_vec())
}

/// The sectors of the stripe at `logical` (physical `physical` on `device`) whose data does
/// not match its checksum or cannot be read. Sectors without a checksum are not judged.
fn pinpoint(
    fs: &Filesystem,
    device: &Path,
    physical: u64,
    logical: u64,
    length: u64,
    sectorsize: u64,
    csum: ChecksumType,
) -> std::result::Result<Vec<u64>, String> {
    let size = csum.size();
    if size == 0 {
        return Err(format!("checksum type {csum} is not known to this crate"));
    }
    let expected = checksums(fs, logical, length, sectorsize, size).map_err(|e| e.to_string())?;
    let whole = read_direct(device, physical, length as usize);
    let mut bad = Vec::new();
    for (&sector, want) in &expected {
        let at = sector - logical;
        let data = match &whole {
            Ok(all) => Ok(all[at as usize..(at + sectorsize) as usize].to_vec()),
            // One read error fails the whole read: find the sectors one by one.
            Err(_) => read_direct(device, physical + at, sectorsize as usize),
        };
        let ok = data.is_ok_and(|d| csum.checksum(&d).is_some_and(|got| got[..size] == want[..]));
        if !ok {
            bad.push(sector);
        }
    }
    Ok(bad)
}

/// The chunk holding `logical`.
fn chunk_of(chunks: &[Chunk], logical: u64) -> Option<&Chunk> {
    chunks
        .iter()
        .find(|c| c.logical <= logical && logical < c.logical + c.length.bytes())
}
