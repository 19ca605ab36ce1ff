//! Inodes, their timestamps, inode references and directory entries.

use crate::format::consts::FT_DIR;
use crate::format::key::Key;
use crate::le::{put_bytes, put_u16, put_u32, put_u64, put_u8};
use btrfs_sys as sys;
use core::mem::size_of;

/// Seconds and nanoseconds since the epoch (12 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timespec {
    /// Seconds.
    pub sec: u64,
    /// Nanoseconds.
    pub nsec: u32,
}

impl Timespec {
    /// Encoded size.
    pub const SIZE: usize = 8 + 4;

    pub(crate) fn encode(&self, buf: &mut [u8], off: usize) {
        put_u64(buf, off, self.sec);
        put_u32(buf, off + 8, self.nsec);
    }
}
const _: () = assert!(Timespec::SIZE == size_of::<sys::btrfs_timespec>());

/// An inode (160 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InodeItem {
    /// Transaction that created it.
    pub generation: u64,
    /// Size in bytes.
    pub size: u64,
    /// Bytes allocated.
    pub nbytes: u64,
    /// Link count.
    pub nlink: u32,
    /// Mode bits, file type included.
    pub mode: u32,
    /// atime, ctime and mtime.
    pub time: Timespec,
    /// Creation time.
    pub otime: Timespec,
}

impl InodeItem {
    /// Encoded size.
    pub const SIZE: usize = 5 * 8 + 4 * 4 + 3 * 8 + 4 * 8 + 4 * Timespec::SIZE;

    /// Writes the inode at `off` (uid, gid, rdev, flags, transid and sequence are zero).
    pub fn encode(&self, buf: &mut [u8], off: usize) {
        put_u64(buf, off, self.generation);
        put_u64(buf, off + 16, self.size);
        put_u64(buf, off + 24, self.nbytes);
        put_u32(buf, off + 40, self.nlink);
        put_u32(buf, off + 52, self.mode);
        self.time.encode(buf, off + 112);
        self.time.encode(buf, off + 124);
        self.time.encode(buf, off + 136);
        self.otime.encode(buf, off + 148);
    }

    /// The encoded bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::SIZE];
        self.encode(&mut b, 0);
        b
    }
}
const _: () = assert!(InodeItem::SIZE == 160);
const _: () = assert!(InodeItem::SIZE == size_of::<sys::btrfs_inode_item>());

/// An inode reference: directory index and name.
pub fn inode_ref(index: u64, name: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 10 + name.len()];
    put_u64(&mut b, 0, index);
    put_u16(&mut b, 8, name.len() as u16);
    put_bytes(&mut b, 10, name);
    b
}
const _: () = assert!(10 == size_of::<sys::btrfs_inode_ref>());

/// A directory entry pointing at `location`, of directory type.
pub fn dir_item(location: Key, name: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 30 + name.len()];
    location.encode(&mut b, 0);
    put_u16(&mut b, 27, name.len() as u16);
    put_u8(&mut b, 29, FT_DIR);
    put_bytes(&mut b, 30, name);
    b
}
const _: () = assert!(30 == size_of::<sys::btrfs_dir_item>());
