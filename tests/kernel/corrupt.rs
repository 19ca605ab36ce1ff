//! Real damage for the scrub tests: where a file's bytes live on which device (FIEMAP gives the
//! logical address, the chunk map the copies), and writing garbage into a loop device's
//! backing file there while the filesystem is unmounted.

use btrfs_kit::{Chunk, Filesystem, Profile};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use testkit::fixture::MultiScratch;
use testkit::harness::Failed;

/// `BTRFS_STRIPE_LEN`: the unit striped profiles rotate over devices in.
const STRIPE: u64 = 64 << 10;

/// The logical address of byte `offset` of the file at `path` (FIEMAP; btrfs reports logical
/// addresses as "physical"). The file must be synced.
pub fn logical_of(path: &Path, offset: u64) -> Result<u64, Failed> {
    for extent in fiemap::fiemap(path)? {
        let e = extent?;
        if e.fe_logical <= offset && offset < e.fe_logical + e.fe_length {
            return Ok(e.fe_physical + (offset - e.fe_logical));
        }
    }
    Err(format!("{}: no extent at offset {offset}", path.display()).into())
}

/// Every copy of the byte at `logical`: (device id, physical offset). Single, DUP, RAID1*,
/// RAID0 and RAID10 chunks.
pub fn copies(fs: &Filesystem, logical: u64) -> Result<Vec<(u64, u64)>, Failed> {
    let chunk: Chunk = fs
        .chunks()?
        .into_iter()
        .find(|c| c.logical <= logical && logical < c.logical + c.length.bytes())
        .ok_or_else(|| format!("no chunk holds logical {logical}"))?;
    let off = logical - chunk.logical;
    let at = |i: usize, dev_off: u64| (chunk.stripes[i].devid, chunk.stripes[i].offset + dev_off);
    Ok(match chunk.profile {
        Profile::Single | Profile::Dup | Profile::Raid1 | Profile::Raid1c3 | Profile::Raid1c4 => {
            (0..chunk.stripes.len()).map(|i| at(i, off)).collect()
        }
        Profile::Raid0 | Profile::Raid10 => {
            let sub = if chunk.profile == Profile::Raid10 {
                chunk.sub_stripes.max(1) as usize
            } else {
                1
            };
            let data_stripes = (chunk.stripes.len() / sub) as u64;
            let nr = off / STRIPE;
            let first = ((nr % data_stripes) as usize) * sub;
            let dev_off = (nr / data_stripes) * STRIPE + off % STRIPE;
            (first..first + sub).map(|i| at(i, dev_off)).collect()
        }
        Profile::Raid5 | Profile::Raid6 => {
            return Err("parity profiles are not mapped by this helper".into())
        }
    })
}

/// Reads `len` bytes at `offset` of an image file.
pub fn read_image(image: &Path, offset: u64, len: usize) -> Result<Vec<u8>, Failed> {
    let mut buf = vec![0u8; len];
    std::fs::File::open(image)?.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// Replaces `len` bytes at `offset` of an image file by their complement (so they surely
/// differ) and syncs it.
pub fn corrupt(image: &Path, offset: u64, len: usize) -> Result<(), Failed> {
    let garbage: Vec<u8> = read_image(image, offset, len)?.iter().map(|b| !b).collect();
    let file = std::fs::OpenOptions::new().write(true).open(image)?;
    file.write_all_at(&garbage, offset)?;
    file.sync_all()?;
    Ok(())
}

/// Messages a test that corrupts data on purpose expects in the kernel log: the scrub's
/// reports, the error counter updates and failed checksums on reads of the damaged file.
pub fn expected_damage_message(msg: &str) -> bool {
    [
        "fixed up error at logical",
        "unable to fixup (regular) error",
        "checksum error at logical",
        "errs: wr ",
        "csum failed root",
        "read error corrected",
    ]
    .iter()
    .any(|m| msg.contains(m))
}

/// The image file holding device `devid` of the filesystem of `scratch`.
pub fn image_of(scratch: &MultiScratch, fs: &Filesystem, devid: u64) -> Result<PathBuf, Failed> {
    let dev = fs
        .devices()?
        .into_iter()
        .find(|d| d.devid == devid)
        .ok_or(format!("no device {devid}"))?;
    Ok(scratch
        .image_of(&dev.path)
        .ok_or(format!("no image for {}", dev.path.display()))?
        .to_path_buf())
}

/// Corrupts `sectors` sectors at byte `offset` of `file` in its copy number `copy` (see
/// [`copies`]) with the filesystem unmounted, then mounts it again; the logical address.
pub fn damage_copy(
    scratch: &mut MultiScratch,
    file: &Path,
    offset: u64,
    copy: usize,
    sectors: usize,
) -> Result<u64, Failed> {
    let fs = Filesystem::open(scratch.path())?;
    fs.sync()?;
    let logical = logical_of(file, offset)?;
    let (devid, physical) = copies(&fs, logical)?[copy];
    let image = image_of(scratch, &fs, devid)?;
    drop(fs);
    scratch.unmount()?;
    corrupt(&image, physical, sectors * 4096)?;
    scratch.mount()?;
    Ok(logical)
}
