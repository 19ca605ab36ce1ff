//! The target device or file: opening it safely, refusing what must not be overwritten, wiping
//! stale signatures and writing the image.

use crate::format::consts::{super_mirror_offset, SUPER_MIRRORS, SUPER_SIZE};
use crate::{Error, ErrorKind};
use rustix::io::Errno;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const MIB: u64 = 1024 * 1024;
const OP: &str = "mkfs";

/// An opened target.
#[derive(Debug)]
pub(crate) struct Target {
    pub file: File,
    pub path: PathBuf,
    /// Size of the device or file.
    pub size: u64,
    /// The operation errors name (`mkfs`, `add device`).
    pub op: &'static str,
}

/// What formatting needs when the kernel answers EACCES or EPERM: file permissions, not a
/// capability (any user may format a device or file they can write).
const NEEDS_ACCESS: &str = "read and write access to the device or file (a block device is \
usually writable by root and the disk group only), search access to its directories, and write \
access to its directory to create a new file: check their permissions and ownership, or run as \
a user who has them";

fn io_err(op: &'static str, path: &Path, e: std::io::Error) -> Error {
    match Errno::from_raw_os_error(e.raw_os_error().unwrap_or(libc_eio())) {
        errno @ (Errno::ACCESS | Errno::PERM) => Error::new(
            op,
            path.to_path_buf(),
            ErrorKind::PermissionDenied {
                errno,
                needs: NEEDS_ACCESS,
            },
        ),
        errno => Error::from_errno(op, path, errno),
    }
}

fn libc_eio() -> i32 {
    Errno::IO.raw_os_error()
}

/// Splits a `dev_t` into major and minor numbers (glibc's encoding).
fn major_minor(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

/// Where the block device `dev` is mounted, from the mount table: a mount whose device
/// number is `dev`, or whose source is a block device node of that number (btrfs reports an
/// anonymous device number, so the source is what names its device).
fn mount_point_of(dev: u64) -> Option<String> {
    let table = crate::mounts::MountTable::current().ok()?;
    table
        .iter()
        .find(|m| {
            let same_source = m.source.is_absolute()
                && std::fs::metadata(&m.source)
                    .is_ok_and(|md| md.file_type().is_block_device() && md.rdev() == dev);
            (u64::from(m.device.0), u64::from(m.device.1)) == major_minor(dev) || same_source
        })
        .map(|m| m.mount_point.display().to_string())
}

/// Whether the block device node `path` is held exclusively (mounted, or opened with `O_EXCL`
/// by another program).
fn held_exclusively(path: &Path) -> bool {
    OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::EXCL.bits() as i32)
        .open(path)
        .is_err_and(|e| e.raw_os_error() == Some(Errno::BUSY.raw_os_error()))
}

/// Loop devices whose backing file is `path`, as (device name, dev_t).
fn loop_devices_backed_by(path: &Path) -> Vec<(String, u64)> {
    let Ok(canon) = path.canonicalize() else {
        return Vec::new();
    };
    let Ok(dir) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let backing = std::fs::read_to_string(e.path().join("loop/backing_file")).ok()?;
            if Path::new(backing.trim_end()) != canon {
                return None;
            }
            let dev = std::fs::read_to_string(e.path().join("dev")).ok()?;
            let (ma, mi) = dev.trim().split_once(':')?;
            let (ma, mi): (u64, u64) = (ma.parse().ok()?, mi.parse().ok()?);
            let dev_t =
                ((ma & 0xfff) << 8) | ((ma & !0xfff) << 32) | (mi & 0xff) | ((mi & !0xff) << 12);
            Some((name, dev_t))
        })
        .collect()
}

/// Opens `path` for formatting: a block device exclusively (`O_EXCL`, which fails while it is
/// mounted or held by another program), or a regular file, created when `size` is given.
/// Refuses anything mounted, directly or through a loop device.
pub(crate) fn open(path: &Path, size: Option<u64>) -> Result<Target, Error> {
    open_for(OP, path, size)
}

/// [`open`] for operation `op` (which the errors name).
pub(crate) fn open_for(op: &'static str, path: &Path, size: Option<u64>) -> Result<Target, Error> {
    let io_err = |path: &Path, e| io_err(op, path, e);
    let meta = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && size.is_some() => None,
        Err(e) => return Err(io_err(path, e)),
    };
    let busy =
        |detail: String| Error::new(op, path.to_path_buf(), ErrorKind::DeviceBusy { detail });
    let is_block = meta
        .as_ref()
        .is_some_and(|m| m.file_type().is_block_device());
    if let Some(m) = &meta {
        if is_block {
            if let Some(mnt) = mount_point_of(m.rdev()) {
                return Err(busy(format!("it is mounted on {mnt}")));
            }
        } else if m.file_type().is_file() {
            for (name, dev) in loop_devices_backed_by(path) {
                if let Some(mnt) = mount_point_of(dev) {
                    return Err(busy(format!("it backs /dev/{name}, mounted on {mnt}")));
                }
                if held_exclusively(&Path::new("/dev").join(&name)) {
                    return Err(busy(format!("it backs /dev/{name}, which is in use")));
                }
            }
        } else {
            return Err(Error::invalid_arguments(
                op,
                format!(
                    "{} is neither a block device nor a regular file",
                    path.display()
                ),
            ));
        }
    }
    let mut oo = OpenOptions::new();
    oo.read(true).write(true);
    if is_block {
        oo.custom_flags(rustix::fs::OFlags::EXCL.bits() as i32);
    } else {
        oo.create(true);
    }
    let file = oo.open(path).map_err(|e| match e.raw_os_error() {
        Some(code) if code == Errno::BUSY.raw_os_error() => {
            busy("it is mounted or open exclusively by another program (O_EXCL failed)".into())
        }
        _ => io_err(path, e),
    })?;
    let mut file = file;
    let mut dev_size = file.seek(SeekFrom::End(0)).map_err(|e| io_err(path, e))?;
    if let Some(want) = size {
        if want > dev_size {
            if is_block {
                return Err(Error::invalid_arguments(
                    op,
                    format!("size {want} exceeds the device's {dev_size} bytes"),
                ));
            }
            file.set_len(want).map_err(|e| io_err(path, e))?;
            dev_size = want;
        }
    }
    Ok(Target {
        file,
        path: path.to_path_buf(),
        size: dev_size,
        op,
    })
}

/// A known signature in `head` (the first bytes of a device), by name.
pub(crate) fn signature_in(head: &[u8]) -> Option<&'static str> {
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    let checks: [(&str, bool); 14] = [
        ("btrfs", at(0x10040, b"_BHRfS_M")),
        ("ext2/ext3/ext4", at(0x438, &[0x53, 0xEF])),
        ("xfs", at(0, b"XFSB")),
        (
            "LVM2 physical volume",
            at(0x218, b"LVM2 001") || at(0x18, b"LVM2 001"),
        ),
        ("LUKS", at(0, b"LUKS\xba\xbe")),
        ("swap", at(4086, b"SWAPSPACE2") || at(4086, b"SWAP-SPACE")),
        ("GPT partition table", at(512, b"EFI PART")),
        ("vfat", at(0x36, b"FAT") || at(0x52, b"FAT32")),
        ("ntfs", at(3, b"NTFS    ")),
        ("iso9660", at(0x8001, b"CD001")),
        ("squashfs", at(0, b"hsqs")),
        ("f2fs", at(0x400, &[0x10, 0x20, 0xF5, 0xF2])),
        (
            "Linux RAID (md 1.1/1.2)",
            at(0, &[0xfc, 0x4e, 0x2b, 0xa9]) || at(4096, &[0xfc, 0x4e, 0x2b, 0xa9]),
        ),
        (
            "bcachefs",
            at(0x1018, &[0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca]),
        ),
    ];
    if let Some((name, _)) = checks.iter().find(|(_, hit)| *hit) {
        return Some(name);
    }
    // An MBR partition table: boot signature and a non-empty partition entry.
    if at(510, &[0x55, 0xAA])
        && head
            .get(446..510)
            .is_some_and(|p| p.iter().any(|&b| b != 0))
    {
        return Some("MBR partition table");
    }
    None
}

fn read_up_to(file: &mut File, off: u64, len: usize) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(off))?;
    let mut buf = Vec::with_capacity(len);
    file.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The first MiB of `file` (of `size` bytes) and the name of a known signature in it or in a
/// btrfs superblock copy, if any.
pub(crate) fn find_signature(
    file: &mut File,
    size: u64,
) -> std::io::Result<(Vec<u8>, Option<&'static str>)> {
    let head = read_up_to(file, 0, MIB as usize)?;
    let mut found = signature_in(&head);
    for mirror in 1..SUPER_MIRRORS {
        let off = super_mirror_offset(mirror);
        if found.is_none() && off + SUPER_SIZE as u64 <= size {
            let b = read_up_to(file, off, SUPER_SIZE)?;
            if crate::format::Superblock::has_magic(&b) {
                found = Some("btrfs (superblock copy)");
            }
        }
    }
    Ok((head, found))
}

impl Target {
    /// Refuses a target holding a known signature, in its first MiB or a btrfs superblock copy.
    pub fn refuse_signatures(&mut self) -> Result<(), Error> {
        let (_, found) = find_signature(&mut self.file, self.size)
            .map_err(|e| io_err(self.op, &self.path, e))?;
        match found {
            Some(found) => Err(Error::new(
                self.op,
                self.path.clone(),
                ErrorKind::ExistingFilesystem {
                    found: found.into(),
                },
            )),
            None => Ok(()),
        }
    }

    /// Zeroes the first MiB, the last MiB, and every btrfs superblock copy on the device.
    pub fn wipe(&mut self) -> Result<(), Error> {
        let mut ranges = vec![(0, MIB.min(self.size))];
        ranges.push((self.size.saturating_sub(MIB), self.size));
        for mirror in 1..SUPER_MIRRORS {
            let off = super_mirror_offset(mirror);
            if off + SUPER_SIZE as u64 <= self.size {
                ranges.push((off, off + SUPER_SIZE as u64));
            }
        }
        let zeros = vec![0u8; MIB as usize];
        for (start, end) in ranges {
            self.write_at(start, &zeros[..(end - start) as usize])?;
        }
        Ok(())
    }

    /// Writes `bytes` at `off`.
    pub fn write_at(&mut self, off: u64, bytes: &[u8]) -> Result<(), Error> {
        self.file
            .seek(SeekFrom::Start(off))
            .map_err(|e| io_err(self.op, &self.path, e))?;
        self.file
            .write_all(bytes)
            .map_err(|e| io_err(self.op, &self.path, e))
    }

    /// Flushes everything written to stable storage.
    pub fn sync(&mut self) -> Result<(), Error> {
        self.file
            .sync_all()
            .map_err(|e| io_err(self.op, &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_signatures() {
        let mut head = vec![0u8; MIB as usize];
        assert_eq!(signature_in(&head), None);
        head[0x438] = 0x53;
        head[0x439] = 0xEF;
        assert_eq!(signature_in(&head), Some("ext2/ext3/ext4"));
        let mut head = vec![0u8; MIB as usize];
        head[0x10040..0x10048].copy_from_slice(b"_BHRfS_M");
        assert_eq!(signature_in(&head), Some("btrfs"));
        let mut head = vec![0u8; 1024];
        head[0x218..0x220].copy_from_slice(b"LVM2 001");
        assert_eq!(signature_in(&head), Some("LVM2 physical volume"));
    }

    #[test]
    fn splits_device_numbers() {
        // 7:3 (loop3) and 259:65536 encode as glibc's makedev does.
        assert_eq!(major_minor(0x0703), (7, 3));
        let dev = ((259u64 & 0xfff) << 8) | ((65536u64 & !0xff) << 12);
        assert_eq!(major_minor(dev), (259, 65536));
    }
}
