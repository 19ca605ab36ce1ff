//! Trim on a real kernel: FITRIM on a loop device discards the freed space (the backing file
//! shrinks by it); on a device without discard support the error says so. The device without
//! discard is a loop device over a file on ramfs, which has no fallocate, so the loop driver
//! offers no discard (`queue/discard_max_bytes` is 0).

use crate::data::{write_file, MIB};
use btrfs_kit::trim::TrimOptions;
use btrfs_kit::{ByteSize, ErrorKind, Filesystem};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use testkit::ensure;
use testkit::fixture::{make_btrfs, BtrfsOptions, FsKind, LoopDevice, Mount, Scratch};
use testkit::harness::Failed;

/// Bytes the image file really occupies on its filesystem.
fn allocated(image: &Path) -> Result<u64, Failed> {
    Ok(std::fs::metadata(image)?.blocks() * 512)
}

testkit::register!(root: loop_device_discards_freed_space_and_reports_bytes);
fn loop_device_discards_freed_space_and_reports_bytes() -> Result<(), Failed> {
    // No online discard, so the freed space waits for our trim.
    let options = BtrfsOptions {
        mount_options: "nodiscard".into(),
        ..Default::default()
    };
    let scratch = Scratch::new(512 * MIB, FsKind::Btrfs(options))?;
    let fs = Filesystem::open(scratch.path())?;
    let file = scratch.path().join("data");
    write_file(&file, 128 * MIB, 1)?;
    std::fs::remove_file(&file)?;
    fs.sync()?;
    let before = allocated(scratch.image())?;

    let outcome = fs.trim(&TrimOptions::default())?;
    let after = allocated(scratch.image())?;
    ensure!(
        outcome.trimmed.bytes() >= 128 * MIB && outcome.trimmed.bytes() <= 512 * MIB,
        "trimmed {} bytes after freeing 128 MiB",
        outcome.trimmed,
    );
    ensure!(
        before.saturating_sub(after) >= 120 * MIB,
        "the image occupied {before} bytes before the trim and {after} after",
    );
    ensure!(
        outcome.minimum_extent.bytes() >= 512,
        "the minimum is raised to the discard granularity: {}",
        outcome.minimum_extent,
    );

    // A minimum longer than any free extent skips the block groups' free space (what is left to
    // trim right after a full trim is at most a few blocks the last commit freed).
    let huge = fs.trim(&TrimOptions::default().minimum_extent(ByteSize(1 << 40)))?;
    ensure!(
        huge.trimmed.bytes() < MIB,
        "1 TiB minimum trimmed {}",
        huge.trimmed
    );
    // Too short a length is refused before the kernel.
    match fs
        .trim(&TrimOptions::default().range(ByteSize(0), ByteSize(512)))
        .map_err(btrfs_kit::Error::into_kind)
    {
        Err(ErrorKind::InvalidArguments { reason, .. }) => {
            ensure!(reason.contains("4096"), "{}", reason);
            Ok(())
        }
        other => Err(format!("a 512-byte range: {other:?}").into()),
    }
}

/// A btrfs filesystem on a loop device over a file on ramfs. Field order is drop order.
pub struct RamfsBacked {
    btrfs: Mount,
    _device: LoopDevice,
    _ramfs: Mount,
}

impl RamfsBacked {
    pub fn new(size: u64) -> Result<Self, Failed> {
        let ramfs = Mount::new(Path::new("ramfs"), "ramfs", "")?;
        let image = ramfs.path().join("disk.img");
        std::fs::File::create(&image)?.set_len(size)?;
        let device = LoopDevice::attach(&image)?;
        let sysfs = format!("/sys/block/loop{}/queue/discard_max_bytes", device.number());
        let max = std::fs::read_to_string(&sysfs)?;
        ensure!(
            max.trim() == "0",
            "a loop device over ramfs should offer no discard, {sysfs} says {max}",
        );
        make_btrfs(device.path(), &BtrfsOptions::default())?;
        let btrfs = Mount::new(device.path(), "btrfs", "")?;
        Ok(RamfsBacked {
            btrfs,
            _device: device,
            _ramfs: ramfs,
        })
    }

    /// The btrfs mount point.
    pub fn path(&self) -> &Path {
        self.btrfs.path()
    }
}

testkit::register!(root: device_without_discard_gives_a_clear_error);
fn device_without_discard_gives_a_clear_error() -> Result<(), Failed> {
    let backed = RamfsBacked::new(256 * MIB)?;
    let fs = Filesystem::open(backed.btrfs.path())?;
    match fs.trim(&TrimOptions::default()) {
        Err(e) if matches!(e.kind(), ErrorKind::DiscardUnsupported) => {
            let text = e.to_string();
            {
                ensure!(
                    e.errno() == Some(btrfs_kit::Errno::OPNOTSUPP)
                        && text.contains("discard")
                        && text.contains(&*backed.btrfs.path().to_string_lossy()),
                    "{}",
                    text,
                );
                Ok(())
            }
        }
        other => Err(format!("trim without discard support: {other:?}").into()),
    }
}
