//! Backref ioctls: which inodes reference a logical address (`LOGICAL_INO_V2`) and the paths of
//! an inode (`INO_PATHS`). Both fill a caller-provided `btrfs_data_container`: a 16-byte header
//! (bytes_left, bytes_missing, elem_cnt, elem_missed as u32) followed by u64 values. Same rules
//! as the parent module.

use super::IoctlResult;
use btrfs_sys as sys;
use btrfs_sys::ioctl as req;
use std::os::fd::BorrowedFd;

mod raw {
    use super::{req, sys};
    bad_ioctl!(
        readwrite,
        logical_ino_v2,
        req::BTRFS_IOC_LOGICAL_INO_V2,
        sys::btrfs_ioctl_logical_ino_args
    );
    bad_ioctl!(
        readwrite,
        ino_paths,
        req::BTRFS_IOC_INO_PATHS,
        sys::btrfs_ioctl_ino_path_args
    );
}

/// Words of the `btrfs_data_container` header.
const HEADER_WORDS: usize = std::mem::size_of::<sys::btrfs_data_container>() / 8;

/// A decoded `btrfs_data_container`.
#[derive(Debug)]
pub(crate) struct DataContainer {
    /// Bytes the kernel would have needed beyond the buffer (0 when everything fit).
    pub bytes_missing: u32,
    /// Values the kernel could not store.
    pub elem_missed: u32,
    /// The buffer: header words, then the values.
    words: Vec<u64>,
    elem_cnt: usize,
}

impl DataContainer {
    fn from_words(words: Vec<u64>) -> Self {
        let b = |w: u64| ((w & 0xffff_ffff) as u32, (w >> 32) as u32);
        // The header is two u64s holding four native-endian u32s (x86-64: low half first).
        let (_, bytes_missing) = b(words[0]);
        let (elem_cnt, elem_missed) = b(words[1]);
        let elem_cnt = (elem_cnt as usize).min(words.len() - HEADER_WORDS);
        DataContainer {
            bytes_missing,
            elem_missed,
            words,
            elem_cnt,
        }
    }

    /// The values the kernel stored.
    pub fn values(&self) -> &[u64] {
        &self.words[HEADER_WORDS..HEADER_WORDS + self.elem_cnt]
    }

    /// The NUL-terminated strings that the values point at, as byte offsets from the first
    /// value (how `INO_PATHS` returns paths).
    pub fn strings(&self) -> Vec<Vec<u8>> {
        let bytes: Vec<u8> = self.words[HEADER_WORDS..]
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        self.values()
            .iter()
            .filter_map(|&off| {
                let tail = bytes.get(off as usize..)?;
                let end = tail.iter().position(|&b| b == 0)?;
                Some(tail[..end].to_vec())
            })
            .collect()
    }
}

/// A zeroed container buffer of at least `bytes` bytes (8-byte aligned, as the kernel needs).
fn buffer(bytes: usize) -> Vec<u64> {
    vec![0u64; bytes.div_ceil(8).max(HEADER_WORDS)]
}

/// `BTRFS_IOC_LOGICAL_INO_V2`: the (inode, file offset, root) triples of every file extent that
/// references `logical`, into a container of `bytes` bytes (the kernel caps it at 16 MiB).
/// `ENOENT` when no data extent holds `logical` (also for tree blocks). Needs CAP_SYS_ADMIN.
pub(crate) fn logical_ino_v2(
    fd: BorrowedFd<'_>,
    logical: u64,
    bytes: usize,
) -> IoctlResult<DataContainer> {
    let mut words = buffer(bytes);
    let mut args = sys::btrfs_ioctl_logical_ino_args {
        logical,
        size: (words.len() * 8) as u64,
        inodes: words.as_mut_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: `args.inodes` points at `words`, an owned buffer of exactly `args.size` bytes
    // that outlives the call; the kernel writes at most `args.size` bytes there and keeps no
    // reference after returning. `args` itself is an owned, correctly sized struct.
    unsafe { raw::logical_ino_v2(fd, &mut args) }?;
    Ok(DataContainer::from_words(words))
}

/// `BTRFS_IOC_INO_PATHS`: every path of inode `inum` in the fd's subvolume, relative to its
/// root, into a container of `bytes` bytes. Needs CAP_SYS_ADMIN.
pub(crate) fn ino_paths(fd: BorrowedFd<'_>, inum: u64, bytes: usize) -> IoctlResult<DataContainer> {
    let mut words = buffer(bytes);
    let mut args = sys::btrfs_ioctl_ino_path_args {
        inum,
        size: (words.len() * 8) as u64,
        fspath: words.as_mut_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: `args.fspath` points at `words`, an owned buffer of exactly `args.size` bytes
    // that outlives the call; the kernel writes at most `args.size` bytes there.
    unsafe { raw::ino_paths(fd, &mut args) }?;
    Ok(DataContainer::from_words(words))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_values_and_strings() {
        // Header: bytes_left 0, bytes_missing 7, elem_cnt 2, elem_missed 1; then two offsets
        // pointing at "a/b\0" and "c\0" after the values.
        let mut words = vec![7u64 << 32, 2 | (1u64 << 32), 16, 20, 0, 0];
        let mut tail = [0u8; 16];
        tail[..4].copy_from_slice(b"a/b\0");
        tail[4..6].copy_from_slice(b"c\0");
        words[4] = u64::from_ne_bytes(tail[..8].try_into().unwrap());
        words[5] = u64::from_ne_bytes(tail[8..].try_into().unwrap());
        let c = DataContainer::from_words(words);
        assert_eq!((c.bytes_missing, c.elem_missed), (7, 1));
        assert_eq!(c.values(), &[16, 20]);
        assert_eq!(c.strings(), vec![b"a/b".to_vec(), b"c".to_vec()]);
    }
}
