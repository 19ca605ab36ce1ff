//! Quotas and qgroups: what Docker's btrfs driver uses to cap a container's subvolume.
//!
//! ```no_run
//! use btrfs_kit::{ByteSize, Filesystem, quota::{Limit, QgroupId, QgroupLimits}};
//!
//! # fn main() -> Result<(), btrfs_kit::Error> {
//! let fs = Filesystem::open("/var/lib/docker")?;
//! fs.enable_quota()?;
//! fs.wait_quota_rescan()?;
//! let layer = QgroupId::subvolume(fs.subvolume_id()?);
//! fs.limit_qgroup(layer, QgroupLimits { referenced: Limit::Set(ByteSize(10 << 30)), ..Default::default() })?;
//! for q in fs.qgroups()? {
//!     println!("{} {} {}", q.id, q.referenced, q.exclusive);
//! }
//! # Ok(())
//! # }
//! ```

use crate::error::{Error, ErrorKind, Result};
use crate::fs::Filesystem;
use crate::ioctl;
use crate::le::{self, ShortRead};
use crate::size::ByteSize;
use crate::tree_search::{SearchRange, TreeItem};
use btrfs_sys as sys;
use rustix::io::Errno;
use std::fmt;
use std::mem::offset_of;
use std::str::FromStr;

const QUOTA_TREE: u64 = sys::BTRFS_QUOTA_TREE_OBJECTID as u64;
const LEVEL_SHIFT: u32 = sys::BTRFS_QGROUP_LEVEL_SHIFT;

/// A qgroup id: level and id, written `level/id`. Level 0 qgroups belong to subvolumes (the id
/// is the subvolume id); higher levels group other qgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QgroupId(u64);

impl QgroupId {
    /// The qgroup `level/id`.
    pub fn new(level: u16, id: u64) -> Self {
        QgroupId((u64::from(level) << LEVEL_SHIFT) | (id & ((1 << LEVEL_SHIFT) - 1)))
    }

    /// The level-0 qgroup of subvolume `id`.
    pub fn subvolume(id: u64) -> Self {
        Self::new(0, id)
    }

    /// Decodes the kernel's packed form.
    pub fn from_raw(raw: u64) -> Self {
        QgroupId(raw)
    }

    /// The kernel's packed form (level in the top 16 bits).
    pub fn raw(self) -> u64 {
        self.0
    }

    /// The level.
    pub fn level(self) -> u16 {
        (self.0 >> LEVEL_SHIFT) as u16
    }

    /// The id within the level.
    pub fn id(self) -> u64 {
        self.0 & ((1 << LEVEL_SHIFT) - 1)
    }
}

impl fmt::Display for QgroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.level(), self.id())
    }
}

impl FromStr for QgroupId {
    type Err = String;
    /// Parses `level/id`, or a bare subvolume id as `0/id`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("{s:?} is not a qgroup id: expected LEVEL/ID, e.g. 0/257 or 1/100");
        let (level, id) = s.split_once('/').unwrap_or(("0", s));
        let level: u16 = level.parse().map_err(|_| bad())?;
        let id: u64 = id.parse().map_err(|_| bad())?;
        if id >= 1 << LEVEL_SHIFT {
            return Err(bad());
        }
        Ok(QgroupId::new(level, id))
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for QgroupId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One change to one limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Limit {
    /// Leave the limit as it is.
    #[default]
    Keep,
    /// Remove the limit.
    Clear,
    /// Cap at this many bytes.
    Set(ByteSize),
}

/// Changes to a qgroup's limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QgroupLimits {
    /// Cap on referenced bytes (everything the subvolume sees, shared or not).
    pub referenced: Limit,
    /// Cap on exclusive bytes (shared with no other subvolume).
    pub exclusive: Limit,
}

/// A qgroup's usage and limits, as the quota tree records them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Qgroup {
    /// The qgroup id.
    pub id: QgroupId,
    /// The transaction that last updated the counts.
    pub generation: u64,
    /// Bytes referenced.
    pub referenced: ByteSize,
    /// Bytes referenced, after compression.
    pub referenced_compressed: ByteSize,
    /// Bytes referenced by this qgroup only.
    pub exclusive: ByteSize,
    /// Exclusive bytes, after compression.
    pub exclusive_compressed: ByteSize,
    /// The cap on referenced bytes, if any.
    pub max_referenced: Option<ByteSize>,
    /// The cap on exclusive bytes, if any.
    pub max_exclusive: Option<ByteSize>,
}

/// The quota tree's status item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct QuotaStatus {
    /// Quotas are on.
    pub enabled: bool,
    /// The counts are known to be wrong until a rescan finishes.
    pub inconsistent: bool,
    /// A rescan is running.
    pub rescan_running: bool,
    /// The transaction of the last status update.
    pub generation: u64,
}

fn quota_err(fs: &Filesystem, op: &'static str, e: Errno) -> Error {
    match e {
        Errno::NOTCONN => Error::new(op, fs.path(), ErrorKind::QuotaNotEnabled),
        e => fs.err(op, e),
    }
}

impl Filesystem {
    /// Turns quotas on (CAP_SYS_ADMIN). The kernel starts a rescan: see
    /// [`Filesystem::wait_quota_rescan`] before trusting the counts.
    pub fn enable_quota(&self) -> Result<()> {
        ioctl::quota_ctl(self.fd(), sys::BTRFS_QUOTA_CTL_ENABLE)
            .map_err(|e| self.err("enable quota", e))?;
        Ok(())
    }

    /// Turns quotas off and removes every qgroup (CAP_SYS_ADMIN).
    pub fn disable_quota(&self) -> Result<()> {
        ioctl::quota_ctl(self.fd(), sys::BTRFS_QUOTA_CTL_DISABLE)
            .map_err(|e| self.err("disable quota", e))?;
        Ok(())
    }

    /// Creates qgroup `id` (CAP_SYS_ADMIN).
    pub fn create_qgroup(&self, id: QgroupId) -> Result<()> {
        ioctl::qgroup_create(self.fd(), true, id.raw())
            .map_err(|e| quota_err(self, "create qgroup", e))?;
        Ok(())
    }

    /// Destroys qgroup `id` (CAP_SYS_ADMIN).
    pub fn destroy_qgroup(&self, id: QgroupId) -> Result<()> {
        ioctl::qgroup_create(self.fd(), false, id.raw())
            .map_err(|e| quota_err(self, "destroy qgroup", e))?;
        Ok(())
    }

    /// Makes qgroup `child` a member of the higher-level qgroup `parent` (CAP_SYS_ADMIN).
    /// Returns true when the kernel could not update the counts at once and marked them
    /// inconsistent: run [`Filesystem::rescan_quota`] then.
    pub fn assign_qgroup(&self, child: QgroupId, parent: QgroupId) -> Result<bool> {
        let r = ioctl::qgroup_assign(self.fd(), true, child.raw(), parent.raw())
            .map_err(|e| quota_err(self, "assign qgroup", e))?;
        Ok(r > 0)
    }

    /// Removes qgroup `child` from `parent`; returns true when a rescan is needed.
    pub fn unassign_qgroup(&self, child: QgroupId, parent: QgroupId) -> Result<bool> {
        let r = ioctl::qgroup_assign(self.fd(), false, child.raw(), parent.raw())
            .map_err(|e| quota_err(self, "remove qgroup relation", e))?;
        Ok(r > 0)
    }

    /// Changes the limits of qgroup `id` (CAP_SYS_ADMIN). Writes beyond a limit fail with
    /// EDQUOT.
    pub fn limit_qgroup(&self, id: QgroupId, limits: QgroupLimits) -> Result<()> {
        // The kernel clears a limit whose flag is set with the value u64::MAX.
        const CLEAR: u64 = u64::MAX;
        let mut lim = sys::btrfs_qgroup_limit::default();
        let mut apply = |limit: Limit, flag: u32, slot: &mut u64| match limit {
            Limit::Keep => {}
            Limit::Clear => {
                lim.flags |= u64::from(flag);
                *slot = CLEAR;
            }
            Limit::Set(bytes) => {
                lim.flags |= u64::from(flag);
                *slot = bytes.0;
            }
        };
        let (mut rfer, mut excl) = (0, 0);
        apply(
            limits.referenced,
            sys::BTRFS_QGROUP_LIMIT_MAX_RFER,
            &mut rfer,
        );
        apply(
            limits.exclusive,
            sys::BTRFS_QGROUP_LIMIT_MAX_EXCL,
            &mut excl,
        );
        lim.max_rfer = rfer;
        lim.max_excl = excl;
        ioctl::qgroup_limit(self.fd(), id.raw(), lim)
            .map_err(|e| quota_err(self, "limit qgroup", e))?;
        Ok(())
    }

    /// Starts a rescan of every qgroup (CAP_SYS_ADMIN). A running rescan is not an error.
    pub fn rescan_quota(&self) -> Result<()> {
        match ioctl::quota_rescan(self.fd()) {
            Ok(_) | Err(Errno::INPROGRESS) => Ok(()),
            Err(e) => Err(quota_err(self, "rescan quota", e)),
        }
    }

    /// Whether a rescan is running, and the object id it has reached (CAP_SYS_ADMIN).
    pub fn quota_rescan_progress(&self) -> Result<Option<u64>> {
        let (running, progress) = ioctl::quota_rescan_status(self.fd())
            .map_err(|e| quota_err(self, "quota rescan status", e))?;
        Ok(running.then_some(progress))
    }

    /// Blocks until the running rescan (if any) finishes (CAP_SYS_ADMIN).
    pub fn wait_quota_rescan(&self) -> Result<()> {
        ioctl::quota_rescan_wait(self.fd())
            .map_err(|e| quota_err(self, "wait for quota rescan", e))?;
        Ok(())
    }

    /// The quota status, or `None` when quotas are off (CAP_SYS_ADMIN).
    pub fn quota_status(&self) -> Result<Option<QuotaStatus>> {
        let range = SearchRange::items(QUOTA_TREE, (0, 0), sys::BTRFS_QGROUP_STATUS_KEY as u8);
        let item = match self.tree_search(range).next() {
            None => return Ok(None),
            Some(Err(e)) if matches!(e.kind(), ErrorKind::NotFound) => return Ok(None),
            Some(Err(e)) => return Err(e),
            Some(Ok(item)) => item,
        };
        decode_status(&item.data)
            .map(Some)
            .map_err(|e| self.decode_err("quota status", format!("qgroup status item: {e}")))
    }

    /// Every qgroup with its usage and limits, by id, from a search of the quota tree
    /// (CAP_SYS_ADMIN). Fails with [`ErrorKind::QuotaNotEnabled`] when quotas are off.
    pub fn qgroups(&self) -> Result<Vec<Qgroup>> {
        let search = |key: u32| -> Result<Vec<TreeItem>> {
            let range = SearchRange::items(QUOTA_TREE, (0, 0), key as u8);
            self.tree_search(range)
                .collect::<Result<_>>()
                .map_err(|e| match e.kind() {
                    ErrorKind::NotFound => {
                        Error::new("list qgroups", self.path(), ErrorKind::QuotaNotEnabled)
                    }
                    _ => e,
                })
        };
        let undecodable = |what: &str, item: &TreeItem, e: ShortRead| {
            let detail = format!(
                "qgroup {what} item {}: {e}",
                QgroupId::from_raw(item.offset)
            );
            self.decode_err("list qgroups", detail)
        };
        let limits = search(sys::BTRFS_QGROUP_LIMIT_KEY)?;
        let mut out: Vec<Qgroup> = search(sys::BTRFS_QGROUP_INFO_KEY)?
            .iter()
            .map(|item| decode_info(item).map_err(|e| undecodable("info", item, e)))
            .collect::<Result<_>>()?;
        for item in &limits {
            let Ok(i) = out.binary_search_by_key(&item.offset, |q| q.id.raw()) else {
                continue;
            };
            let (max_referenced, max_exclusive) =
                decode_limits(&item.data).map_err(|e| undecodable("limit", item, e))?;
            out[i].max_referenced = max_referenced;
            out[i].max_exclusive = max_exclusive;
        }
        Ok(out)
    }
}

/// The quota status from the QGROUP_STATUS item.
fn decode_status(d: &[u8]) -> Result<QuotaStatus, ShortRead> {
    type S = sys::btrfs_qgroup_status_item;
    let flags = le::u64_at(d, offset_of!(S, flags))?;
    let has = |f: u32| flags & u64::from(f) != 0;
    Ok(QuotaStatus {
        enabled: has(sys::BTRFS_QGROUP_STATUS_FLAG_ON),
        inconsistent: has(sys::BTRFS_QGROUP_STATUS_FLAG_INCONSISTENT),
        rescan_running: has(sys::BTRFS_QGROUP_STATUS_FLAG_RESCAN),
        generation: le::u64_at(d, offset_of!(S, generation))?,
    })
}

/// A qgroup and its usage from its QGROUP_INFO item (limits unset).
fn decode_info(item: &TreeItem) -> Result<Qgroup, ShortRead> {
    type I = sys::btrfs_qgroup_info_item;
    let u = |off: usize| le::u64_at(&item.data, off).map(ByteSize);
    Ok(Qgroup {
        id: QgroupId::from_raw(item.offset),
        generation: le::u64_at(&item.data, offset_of!(I, generation))?,
        referenced: u(offset_of!(I, rfer))?,
        referenced_compressed: u(offset_of!(I, rfer_cmpr))?,
        exclusive: u(offset_of!(I, excl))?,
        exclusive_compressed: u(offset_of!(I, excl_cmpr))?,
        max_referenced: None,
        max_exclusive: None,
    })
}

/// The (referenced, exclusive) limits a QGROUP_LIMIT item sets.
fn decode_limits(d: &[u8]) -> Result<(Option<ByteSize>, Option<ByteSize>), ShortRead> {
    type L = sys::btrfs_qgroup_limit_item;
    let flags = le::u64_at(d, offset_of!(L, flags))?;
    let value = |flag: u32, off: usize| -> Result<Option<ByteSize>, ShortRead> {
        if flags & u64::from(flag) == 0 {
            return Ok(None);
        }
        le::u64_at(d, off).map(|v| Some(ByteSize(v)))
    };
    Ok((
        value(sys::BTRFS_QGROUP_LIMIT_MAX_RFER, offset_of!(L, max_rfer))?,
        value(sys::BTRFS_QGROUP_LIMIT_MAX_EXCL, offset_of!(L, max_excl))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qgroup_ids_round_trip() {
        let q: QgroupId = "1/100".parse().unwrap();
        assert_eq!((q.level(), q.id()), (1, 100));
        assert_eq!(q.raw(), (1 << 48) | 100);
        assert_eq!(q.to_string(), "1/100");
        assert_eq!("257".parse::<QgroupId>().unwrap(), QgroupId::subvolume(257));
        assert!("x/1".parse::<QgroupId>().is_err());
        assert!(format!("0/{}", 1u64 << 48).parse::<QgroupId>().is_err());
    }
}
