//! Filesystem and device info: `BTRFS_IOC_FS_INFO`, `BTRFS_IOC_DEV_INFO`, `BTRFS_IOC_GET_FSLABEL`.

use crate::error::Result;
use crate::fs::Filesystem;
use crate::ioctl;
use crate::size::ByteSize;
use btrfs_sys as sys;
use rustix::io::Errno;
use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The checksum algorithm of a filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum ChecksumType {
    /// CRC32C, the default.
    Crc32c,
    /// xxHash64.
    Xxhash64,
    /// SHA-256.
    Sha256,
    /// BLAKE2b-256.
    Blake2b,
    /// A type this crate does not know.
    Unknown(u16),
}

impl ChecksumType {
    /// Decodes the on-disk checksum type number.
    pub fn from_raw(raw: u16) -> Self {
        match raw as u32 {
            sys::BTRFS_CSUM_TYPE_CRC32 => ChecksumType::Crc32c,
            sys::BTRFS_CSUM_TYPE_XXHASH => ChecksumType::Xxhash64,
            sys::BTRFS_CSUM_TYPE_SHA256 => ChecksumType::Sha256,
            sys::BTRFS_CSUM_TYPE_BLAKE2 => ChecksumType::Blake2b,
            _ => ChecksumType::Unknown(raw),
        }
    }
}

impl std::fmt::Display for ChecksumType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChecksumType::Crc32c => f.write_str("crc32c"),
            ChecksumType::Xxhash64 => f.write_str("xxhash64"),
            ChecksumType::Sha256 => f.write_str("sha256"),
            ChecksumType::Blake2b => f.write_str("blake2b"),
            ChecksumType::Unknown(n) => write!(f, "unknown({n})"),
        }
    }
}

/// Filesystem-wide facts from `BTRFS_IOC_FS_INFO` and the label.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FsInfo {
    /// The filesystem id.
    pub fsid: Uuid,
    /// The label; empty when none is set.
    pub label: String,
    /// Number of devices.
    pub num_devices: u64,
    /// Highest device id.
    pub max_devid: u64,
    /// Tree block size.
    pub nodesize: ByteSize,
    /// Sector size.
    pub sectorsize: ByteSize,
    /// Checksum algorithm.
    pub checksum: ChecksumType,
    /// The current generation (transaction id).
    pub generation: u64,
}

/// One device of a filesystem, from `BTRFS_IOC_DEV_INFO`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DeviceInfo {
    /// The device id.
    pub devid: u64,
    /// The device uuid.
    pub uuid: Uuid,
    /// The device's path, empty when the device is missing.
    #[cfg_attr(
        feature = "serde",
        serde(flatten, serialize_with = "crate::name::path_field")
    )]
    pub path: PathBuf,
    /// Whether the device is missing (e.g. a degraded mount): the kernel knows no path for it.
    pub missing: bool,
    /// The size btrfs may use on this device.
    pub total_bytes: ByteSize,
    /// The bytes allocated to chunks on this device.
    pub used_bytes: ByteSize,
    /// The size of the block device at `path` (`BLKGETSIZE64`), when it could be opened;
    /// `None` for a missing device.
    pub device_size: Option<ByteSize>,
}

impl DeviceInfo {
    /// Device slack: the part of the block device btrfs does not use (`device_size` minus
    /// `total_bytes`, e.g. after growing an LV without resizing the filesystem), as
    /// btrfs-progs' "Device slack". Zero when the device size is unknown.
    pub fn slack(&self) -> ByteSize {
        self.device_size
            .map_or(ByteSize::ZERO, |size| size.saturating_sub(self.total_bytes))
    }
}

/// The size of the block device at `path`, when it can be opened (read-only) and asked.
fn block_device_size(path: &Path) -> Option<ByteSize> {
    let file = std::fs::File::open(path).ok()?;
    ioctl::block_device_size(file.as_fd()).ok().map(ByteSize)
}

/// The UTF-8 text before the first NUL of a C string buffer.
pub(crate) fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Filesystem {
    /// Filesystem info: fsid, label, nodesize, sectorsize, checksum type and generation.
    pub fn info(&self) -> Result<FsInfo> {
        let args = ioctl::fs_info(self.fd()).map_err(|e| self.err("filesystem info", e))?;
        let label = self.label()?;
        Ok(FsInfo {
            fsid: Uuid::from_bytes(args.fsid),
            label,
            num_devices: args.num_devices,
            max_devid: args.max_id,
            nodesize: ByteSize(args.nodesize.into()),
            sectorsize: ByteSize(args.sectorsize.into()),
            checksum: ChecksumType::from_raw(args.csum_type),
            generation: args.generation,
        })
    }

    /// The filesystem label (empty when none is set).
    pub fn label(&self) -> Result<String> {
        let raw = ioctl::get_label(self.fd()).map_err(|e| self.err("read label", e))?;
        Ok(c_string(&raw))
    }

    /// Every device of the filesystem, by ascending device id.
    pub fn devices(&self) -> Result<Vec<DeviceInfo>> {
        self.device_list(true)
    }

    /// The device ids, ascending: [`Filesystem::devices`] without opening each block device for
    /// its size, for the polls that only need the ids (device stats, scrub status).
    pub(crate) fn device_ids(&self) -> Result<Vec<u64>> {
        Ok(self.device_list(false)?.iter().map(|d| d.devid).collect())
    }

    /// FS_INFO, then DEV_INFO for every id up to the largest; with `block_sizes`, each present
    /// device is also opened for its size.
    fn device_list(&self, block_sizes: bool) -> Result<Vec<DeviceInfo>> {
        let fs = ioctl::fs_info(self.fd()).map_err(|e| self.err("filesystem info", e))?;
        let mut devices = Vec::with_capacity(fs.num_devices as usize);
        for devid in 0..=fs.max_id {
            let dev = match ioctl::dev_info(self.fd(), devid) {
                Ok(dev) => dev,
                Err(Errno::NODEV) => continue,
                Err(e) => return Err(self.err("device info", e)),
            };
            let end = dev
                .path
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(dev.path.len());
            let path = PathBuf::from(OsStr::from_bytes(&dev.path[..end]));
            let missing = path.as_os_str().is_empty();
            let device_size = if missing || !block_sizes {
                None
            } else {
                block_device_size(&path)
            };
            devices.push(DeviceInfo {
                devid: dev.devid,
                uuid: Uuid::from_bytes(dev.uuid),
                path,
                missing,
                total_bytes: ByteSize(dev.total_bytes),
                used_bytes: ByteSize(dev.bytes_used),
                device_size,
            });
        }
        Ok(devices)
    }
}
