//! Per-subvolume properties: info, the read-only flag (with the received-uuid guard), the
//! received uuid itself, and the filesystem's default subvolume.

use super::info::{from_ioctl, SubvolumeInfo};
use super::lookup::{self, ROOT_TREE};
use super::paths::open_subvolume;
use super::TOP_LEVEL_ID;
use crate::error::{Error, ErrorKind, Result};
use crate::fs::Filesystem;
use crate::ioctl;
use crate::le;
use crate::tree_search::SearchRange;
use btrfs_sys as sys;
use std::fs::File;
use std::mem::{offset_of, size_of};
use std::os::fd::AsFd;
use std::path::Path;
use uuid::Uuid;

const RDONLY: u64 = sys::BTRFS_SUBVOL_RDONLY as u64;
const NEEDS_OWNER: &str =
    "ownership of the subvolume, or CAP_FOWNER (run as its owner, or as root)";

/// Info of the subvolume whose root is `path` (`BTRFS_IOC_GET_SUBVOL_INFO`, no privileges
/// needed). The path from the top level is filled in when the caller has CAP_SYS_ADMIN.
pub fn info(path: impl AsRef<Path>) -> Result<SubvolumeInfo> {
    const OP: &str = "subvolume info";
    let path = path.as_ref();
    let file = open_subvolume(OP, path)?;
    let mut info = subvol_info(OP, path, &file)?;
    if info.path.is_none() {
        let fs = Filesystem::open(path)?;
        info.path = lookup::top_path(&fs, info.id).ok();
    }
    Ok(info)
}

fn subvol_info(op: &'static str, path: &Path, file: &File) -> Result<SubvolumeInfo> {
    let args = ioctl::get_subvol_info(file.as_fd()).map_err(|e| Error::from_errno(op, path, e))?;
    Ok(from_ioctl(&args))
}

fn flags(op: &'static str, path: &Path, file: &File) -> Result<u64> {
    ioctl::subvol_getflags(file.as_fd()).map_err(|e| Error::from_errno(op, path, e))
}

fn set_flags(op: &'static str, path: &Path, file: &File, flags: u64) -> Result<()> {
    ioctl::subvol_setflags(file.as_fd(), flags).map_err(|e| match e {
        rustix::io::Errno::PERM | rustix::io::Errno::ACCESS => Error::new(
            op,
            path,
            ErrorKind::PermissionDenied {
                errno: e,
                needs: NEEDS_OWNER,
            },
        ),
        e => Error::from_errno(op, path, e),
    })?;
    Ok(())
}

/// Whether the subvolume at `path` is read-only.
pub fn is_read_only(path: impl AsRef<Path>) -> Result<bool> {
    const OP: &str = "get read-only";
    let path = path.as_ref();
    let file = open_subvolume(OP, path)?;
    Ok(flags(OP, path, &file)? & RDONLY != 0)
}

/// Makes the subvolume at `path` read-only or writable.
///
/// Making a subvolume with a received uuid writable is refused with
/// [`ErrorKind::ReceivedSubvolume`]: incremental send relies on received subvolumes staying
/// unchanged. Use [`force_read_write`] to do it anyway.
pub fn set_read_only(path: impl AsRef<Path>, read_only: bool) -> Result<()> {
    const OP: &str = "set read-only";
    let path = path.as_ref();
    let file = open_subvolume(OP, path)?;
    let current = flags(OP, path, &file)?;
    if read_only == (current & RDONLY != 0) {
        return Ok(());
    }
    if !read_only {
        if let Some(received_uuid) = subvol_info(OP, path, &file)?.received_uuid {
            return Err(Error::new(
                OP,
                path,
                ErrorKind::ReceivedSubvolume { received_uuid },
            ));
        }
    }
    set_flags(OP, path, &file, current ^ RDONLY)
}

/// Makes the subvolume at `path` writable even if it was received, and then clears its
/// received uuid (as `btrfs property set -f ro false` does), so that it is never mistaken for
/// an unchanged copy of the sent subvolume.
pub fn force_read_write(path: impl AsRef<Path>) -> Result<()> {
    const OP: &str = "force read-write";
    let path = path.as_ref();
    let file = open_subvolume(OP, path)?;
    let current = flags(OP, path, &file)?;
    if current & RDONLY != 0 {
        set_flags(OP, path, &file, current & !RDONLY)?;
    }
    if subvol_info(OP, path, &file)?.received_uuid.is_some() {
        ioctl::set_received_subvol(file.as_fd(), [0; 16], 0)
            .map_err(|e| Error::from_errno(OP, path, e))?;
    }
    Ok(())
}

/// What `btrfs receive` records on a subvolume it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Received {
    /// The uuid of the sent subvolume.
    pub uuid: Uuid,
    /// The transaction id of the sent subvolume at send time.
    pub stransid: u64,
}

/// Records (or with `None` clears) the received uuid of the writable subvolume at `path`
/// (`BTRFS_IOC_SET_RECEIVED_SUBVOL`), as a receiver does before making it read-only.
pub fn set_received(path: impl AsRef<Path>, received: Option<Received>) -> Result<()> {
    const OP: &str = "set received uuid";
    let path = path.as_ref();
    let file = open_subvolume(OP, path)?;
    let (uuid, stransid) = received.map_or(([0; 16], 0), |r| (*r.uuid.as_bytes(), r.stransid));
    ioctl::set_received_subvol(file.as_fd(), uuid, stransid)
        .map_err(|e| Error::from_errno(OP, path, e))?;
    Ok(())
}

impl Filesystem {
    /// The id of the subvolume mounted when no `subvol=`/`subvolid=` option is given: the
    /// "default" entry of the root tree directory (CAP_SYS_ADMIN).
    pub fn default_subvolume(&self) -> Result<u64> {
        type D = sys::btrfs_dir_item;
        let dir = sys::BTRFS_ROOT_TREE_DIR_OBJECTID as u64;
        let range = SearchRange::items(ROOT_TREE, (dir, dir), sys::BTRFS_DIR_ITEM_KEY as u8);
        for item in self.tree_search(range) {
            let item = item?;
            // One item can pack several entries whose names hash alike.
            let mut d = item.data.as_slice();
            while !d.is_empty() {
                let entry = || -> Result<(&[u8], u64, usize), le::ShortRead> {
                    let name_len = le::u16_at(d, offset_of!(D, name_len))? as usize;
                    let data_len = le::u16_at(d, offset_of!(D, data_len))? as usize;
                    let name = le::bytes_at(d, size_of::<D>(), name_len)?;
                    let location = le::u64_at(d, offset_of!(D, location))?;
                    let end = size_of::<D>() + name_len + data_len;
                    le::bytes_at(d, 0, end)?;
                    Ok((name, location, end))
                };
                let (name, location, end) = entry().map_err(|e| {
                    self.decode_err("read default subvolume", format!("root tree DIR_ITEM: {e}"))
                })?;
                if name == b"default" {
                    return Ok(location);
                }
                d = &d[end..];
            }
        }
        Ok(TOP_LEVEL_ID)
    }

    /// Makes subvolume `id` the default one (CAP_SYS_ADMIN).
    pub fn set_default_subvolume(&self, id: u64) -> Result<()> {
        ioctl::default_subvol(self.fd(), id).map_err(|e| match e {
            rustix::io::Errno::NOENT => Error::new(
                "set default subvolume",
                self.path(),
                ErrorKind::SubvolumeNotFound { id },
            ),
            e => self.err("set default subvolume", e),
        })?;
        Ok(())
    }

    /// Info of the subvolume holding this handle's path (no privileges needed); see
    /// [`info`].
    pub fn subvolume_info(&self) -> Result<SubvolumeInfo> {
        let mut info = from_ioctl(
            &ioctl::get_subvol_info(self.fd()).map_err(|e| self.err("subvolume info", e))?,
        );
        if info.path.is_none() {
            info.path = lookup::top_path(self, info.id).ok();
        }
        Ok(info)
    }

    /// The id of the subvolume holding this handle's path.
    pub fn subvolume_id(&self) -> Result<u64> {
        super::paths::id_of("subvolume id", self.path(), &self.fd())
    }
}
