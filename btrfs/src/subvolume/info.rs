//! [`SubvolumeInfo`] and its two sources: `BTRFS_IOC_GET_SUBVOL_INFO` (unprivileged, one
//! subvolume by descriptor) and the root tree's ROOT_ITEM/ROOT_REF items (privileged, by id).

use super::TOP_LEVEL_ID;
use crate::le::{self, ShortRead};
use btrfs_sys as sys;
use std::ffi::OsString;
use std::mem::{offset_of, size_of};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use uuid::Uuid;

/// What the kernel records about a subvolume.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SubvolumeInfo {
    /// The subvolume id (tree id); 5 is the top level.
    pub id: u64,
    /// The id of the subvolume whose directory holds this one; `None` for the top level.
    pub parent_id: Option<u64>,
    /// The inode number of the directory (in the parent subvolume) that holds this one.
    pub dir_id: Option<u64>,
    /// The subvolume's name in that directory (empty for the top level): bytes, not
    /// necessarily UTF-8 (see [`crate::name`] to show it).
    #[cfg_attr(
        feature = "serde",
        serde(flatten, serialize_with = "crate::name::name_field")
    )]
    pub name: OsString,
    /// The path relative to the top-level subvolume, where it could be resolved (always in
    /// privileged mode; unprivileged callers get it only when listing from the top level).
    #[cfg_attr(
        feature = "serde",
        serde(flatten, serialize_with = "crate::name::opt_path_field")
    )]
    pub path: Option<PathBuf>,
    /// The subvolume's uuid.
    pub uuid: Option<Uuid>,
    /// The uuid of the subvolume this one is a snapshot of.
    pub parent_uuid: Option<Uuid>,
    /// The uuid of the sent subvolume this one was received from (`btrfs receive`).
    pub received_uuid: Option<Uuid>,
    /// The transaction id of the subvolume's root.
    pub generation: u64,
    /// The transaction id of the last change.
    pub ctransid: u64,
    /// The transaction id that created the subvolume.
    pub otransid: u64,
    /// The transaction id of the send that produced it (received subvolumes).
    pub stransid: Option<u64>,
    /// The transaction id of its receive.
    pub rtransid: Option<u64>,
    /// When the subvolume last changed.
    pub ctime: Option<SystemTime>,
    /// When the subvolume was created.
    pub otime: Option<SystemTime>,
    /// The send time (received subvolumes).
    pub stime: Option<SystemTime>,
    /// The receive time.
    pub rtime: Option<SystemTime>,
    /// Whether the subvolume is read-only.
    pub read_only: bool,
}

impl SubvolumeInfo {
    /// Whether this is the top-level subvolume (id 5).
    pub fn is_top_level(&self) -> bool {
        self.id == TOP_LEVEL_ID
    }
}

/// `None` for the all-zero uuid.
pub(crate) fn uuid_of(bytes: [u8; 16]) -> Option<Uuid> {
    Some(Uuid::from_bytes(bytes)).filter(|u| !u.is_nil())
}

fn nonzero(v: u64) -> Option<u64> {
    (v != 0).then_some(v)
}

fn time_of(sec: u64, nsec: u32) -> Option<SystemTime> {
    if sec == 0 && nsec == 0 {
        return None;
    }
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(sec, nsec.min(999_999_999)))
}

fn ioctl_time(t: &sys::btrfs_ioctl_timespec) -> Option<SystemTime> {
    time_of(t.sec, t.nsec)
}

fn root_flags_read_only(flags: u64) -> bool {
    flags & u64::from(sys::BTRFS_ROOT_SUBVOL_RDONLY) != 0
}

/// Decodes `BTRFS_IOC_GET_SUBVOL_INFO`'s answer; `path` is left unknown.
pub(crate) fn from_ioctl(a: &sys::btrfs_ioctl_get_subvol_info_args) -> SubvolumeInfo {
    let top = a.treeid == TOP_LEVEL_ID;
    SubvolumeInfo {
        id: a.treeid,
        parent_id: nonzero(a.parent_id).filter(|_| !top),
        dir_id: nonzero(a.dirid).filter(|_| !top),
        name: OsString::from_vec(crate::ioctl::c_bytes(&a.name)),
        path: top.then(PathBuf::new),
        uuid: uuid_of(a.uuid),
        parent_uuid: uuid_of(a.parent_uuid),
        received_uuid: uuid_of(a.received_uuid),
        generation: a.generation,
        ctransid: a.ctransid,
        otransid: a.otransid,
        stransid: nonzero(a.stransid),
        rtransid: nonzero(a.rtransid),
        ctime: ioctl_time(&a.ctime),
        otime: ioctl_time(&a.otime),
        stime: ioctl_time(&a.stime),
        rtime: ioctl_time(&a.rtime),
        read_only: root_flags_read_only(a.flags),
    }
}

/// Where a subvolume hangs in its parent: from a ROOT_REF or ROOT_BACKREF item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RootRef {
    /// The directory in the parent subvolume.
    pub dir_id: u64,
    /// The entry's name.
    pub name: Vec<u8>,
}

impl RootRef {
    /// Decodes `struct btrfs_root_ref` followed by the name; an error when truncated.
    pub(crate) fn decode(data: &[u8]) -> Result<RootRef, ShortRead> {
        type R = sys::btrfs_root_ref;
        let dir_id = le::u64_at(data, offset_of!(R, dirid))?;
        let len = le::u16_at(data, offset_of!(R, name_len))? as usize;
        let name = le::bytes_at(data, size_of::<R>(), len)?.to_vec();
        Ok(RootRef { dir_id, name })
    }
}

/// Decodes a ROOT_ITEM of subvolume `id`, hanging at `parent` (id and ref), into info;
/// `path` is left unknown.
///
/// Kernels before 3.x wrote *legacy* root items that stop before `generation_v2` (the tree
/// checker accepts exactly that size or the whole struct); like the kernel, such an item (or
/// one whose `generation_v2` is stale) has no uuids, times or transids beyond `generation`.
pub(crate) fn from_root_item(
    id: u64,
    parent: Option<(u64, &RootRef)>,
    d: &[u8],
) -> Result<SubvolumeInfo, ShortRead> {
    type R = sys::btrfs_root_item;
    let generation = le::u64_at(d, offset_of!(R, generation))?;
    let flags = le::u64_at(d, offset_of!(R, flags))?;
    let v2 =
        d.len() >= size_of::<R>() && le::u64_at(d, offset_of!(R, generation_v2))? == generation;
    // The fields below exist (and are read) only in a current item.
    let u64_v2 = |off: usize| if v2 { le::u64_at(d, off) } else { Ok(0) };
    let uuid_v2 = |off: usize| -> Result<Option<Uuid>, ShortRead> {
        if !v2 {
            return Ok(None);
        }
        le::array_at(d, off).map(uuid_of)
    };
    let time_v2 = |off: usize| -> Result<Option<SystemTime>, ShortRead> {
        if !v2 {
            return Ok(None);
        }
        let sec = le::u64_at(d, off + offset_of!(sys::btrfs_timespec, sec))?;
        let nsec = le::u32_at(d, off + offset_of!(sys::btrfs_timespec, nsec))?;
        Ok(time_of(sec, nsec))
    };
    Ok(SubvolumeInfo {
        id,
        parent_id: parent.map(|(p, _)| p),
        dir_id: parent.map(|(_, r)| r.dir_id),
        name: parent
            .map(|(_, r)| OsString::from_vec(r.name.clone()))
            .unwrap_or_default(),
        path: (id == TOP_LEVEL_ID).then(PathBuf::new),
        uuid: uuid_v2(offset_of!(R, uuid))?,
        parent_uuid: uuid_v2(offset_of!(R, parent_uuid))?,
        received_uuid: uuid_v2(offset_of!(R, received_uuid))?,
        generation,
        ctransid: u64_v2(offset_of!(R, ctransid))?,
        otransid: u64_v2(offset_of!(R, otransid))?,
        stransid: nonzero(u64_v2(offset_of!(R, stransid))?),
        rtransid: nonzero(u64_v2(offset_of!(R, rtransid))?),
        ctime: time_v2(offset_of!(R, ctime))?,
        otime: time_v2(offset_of!(R, otime))?,
        stime: time_v2(offset_of!(R, stime))?,
        rtime: time_v2(offset_of!(R, rtime))?,
        read_only: root_flags_read_only(flags),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_ref_decodes_name_and_rejects_truncation() {
        let mut d = vec![0u8; 18];
        d[0..8].copy_from_slice(&300u64.to_le_bytes());
        d[16..18].copy_from_slice(&3u16.to_le_bytes());
        d.extend_from_slice(b"abc");
        let r = RootRef::decode(&d).unwrap();
        assert_eq!((r.dir_id, r.name.as_slice()), (300, &b"abc"[..]));
        assert!(RootRef::decode(&d[..20]).is_err());
    }

    #[test]
    fn root_item_fields_land_where_the_header_says() {
        type R = sys::btrfs_root_item;
        let mut d = vec![0u8; std::mem::size_of::<R>()];
        let put =
            |d: &mut Vec<u8>, off: usize, v: u64| d[off..off + 8].copy_from_slice(&v.to_le_bytes());
        put(&mut d, offset_of!(R, generation), 42);
        put(&mut d, offset_of!(R, generation_v2), 42);
        put(&mut d, offset_of!(R, flags), 1);
        put(&mut d, offset_of!(R, otransid), 7);
        put(&mut d, offset_of!(R, otime), 1_700_000_000);
        d[offset_of!(R, uuid)] = 0xab;
        let r = RootRef {
            dir_id: 256,
            name: b"x".to_vec(),
        };
        let info = from_root_item(300, Some((5, &r)), &d).unwrap();
        assert_eq!(info.generation, 42);
        assert!(info.read_only);
        assert_eq!(info.otransid, 7);
        assert_eq!(info.parent_id, Some(5));
        assert_eq!(info.uuid.unwrap().as_bytes()[0], 0xab);
        assert_eq!(info.parent_uuid, None);
        assert_eq!(
            info.otime
                .unwrap()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_700_000_000
        );
        // A legacy-sized item has no v2 fields, but its generation and flags still count.
        let legacy = from_root_item(300, None, &d[..offset_of!(R, generation_v2)]).unwrap();
        assert_eq!(
            (legacy.uuid, legacy.otransid, legacy.otime),
            (None, 0, None)
        );
        assert_eq!((legacy.generation, legacy.read_only), (42, true));
        // Shorter than that: the caller hears of it.
        assert!(from_root_item(300, None, &d[..offset_of!(R, flags)]).is_err());
        // An old item (generation_v2 stale) hides its v2 fields.
        put(&mut d, offset_of!(R, generation_v2), 0);
        assert_eq!(from_root_item(300, None, &d).unwrap().uuid, None);
    }
}
