//! A multi-device btrfs filesystem built without btrfs-progs: the native mkfs on the first
//! loop device, mounted, the other devices added with `Filesystem::add_device`
//! (`BTRFS_IOC_ADD_DEV`), then data and metadata converted to the wanted profiles with our own
//! balance. Every loop device and image is released on drop, also after a panic.

use crate::fixture::{make_btrfs, BtrfsOptions, LoopDevice, Mount, SparseFile};
use btrfs_kit::balance::{Balance, ChunkFilters};
use btrfs_kit::{Filesystem, Profile};
use std::io;
use std::path::{Path, PathBuf};

/// A mounted btrfs filesystem over several loop devices.
#[derive(Debug)]
pub struct MultiScratch {
    // Field order is drop order: unmount, then detach, then delete the images.
    mount: Mount,
    devices: Vec<LoopDevice>,
    images: Vec<SparseFile>,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl MultiScratch {
    /// `devices` loop devices of `size` bytes each, data and metadata (and system) in the
    /// given profiles. With one device and the native mkfs' own profiles (single data, dup
    /// metadata) no balance runs.
    pub fn new(devices: usize, size: u64, data: Profile, metadata: Profile) -> io::Result<Self> {
        if devices == 0 {
            return Err(io::Error::other("a filesystem needs at least one device"));
        }
        let mut images = Vec::with_capacity(devices);
        let mut loops = Vec::with_capacity(devices);
        for _ in 0..devices {
            let image = SparseFile::new(size)?;
            loops.push(LoopDevice::attach(image.path())?);
            images.push(image);
        }
        make_btrfs(loops[0].path(), &BtrfsOptions::default())?;
        let mount = Mount::new(loops[0].path(), "btrfs", "")?;
        let scratch = MultiScratch {
            mount,
            devices: loops,
            images,
        };
        {
            let fs = Filesystem::open(scratch.path()).map_err(other)?;
            for dev in &scratch.devices[1..] {
                fs.add_device(dev.path()).map_err(other)?;
            }
            if (data, metadata) != (Profile::Single, Profile::Dup) {
                let convert = Balance::new()
                    .data(ChunkFilters::convert(data, false))
                    .metadata(ChunkFilters::convert(metadata, false))
                    .force(true);
                fs.balance(&convert).map_err(other)?;
            }
        }
        Ok(scratch)
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.mount.path()
    }

    /// How many devices.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether there are no devices (never: construction needs one).
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The `i`-th loop device (in the order they were added; device id `i + 1`).
    pub fn device(&self, i: usize) -> &Path {
        self.devices[i].path()
    }

    /// The `i`-th backing image.
    pub fn image(&self, i: usize) -> &Path {
        self.images[i].path()
    }

    /// The backing image of the loop device at `device` (as the kernel names it).
    pub fn image_of(&self, device: &Path) -> Option<&Path> {
        let real = device.canonicalize().ok()?;
        self.devices
            .iter()
            .position(|d| d.path().canonicalize().ok().as_deref() == Some(real.as_path()))
            .map(|i| self.images[i].path())
    }

    /// Unmounts (e.g. to write to the images underneath).
    pub fn unmount(&mut self) -> io::Result<()> {
        self.mount.unmount()
    }

    /// Mounts again on the same mount point (paths below it stay valid), naming every device
    /// (`device=` options) so the kernel need not have them registered.
    pub fn mount(&mut self) -> io::Result<()> {
        let options: Vec<String> = self.devices[1..]
            .iter()
            .map(|d| format!("device={}", d.path().display()))
            .collect();
        self.mount
            .mount_again(self.devices[0].path(), "btrfs", &options.join(","))
    }

    /// Every device path.
    pub fn device_paths(&self) -> Vec<PathBuf> {
        self.devices
            .iter()
            .map(|d| d.path().to_path_buf())
            .collect()
    }
}
