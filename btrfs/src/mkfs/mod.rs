//! A native `mkfs.btrfs` for one device: [`mkfs`] writes a new, empty filesystem.
//!
//! The formatter writes the final state of a fresh filesystem directly, each tree a single
//! leaf at generation 1, with no transaction machinery: a system, a metadata and a data chunk;
//! the chunk, device, extent, root, fs, checksum, uuid, data-relocation and (optionally)
//! free-space trees; and the superblock with its copies.
//!
//! Limits: one device, metadata `single` or `dup` (data `single`), sector size 4 KiB, no
//! `--rootdir` (the filesystem starts empty), no zoned devices, no mixed block groups.
//!
//! The smallest filesystem ([`minimum_size`]) is the smallest on which, mounted, a file can be
//! created and written: its metadata chunk holds [`MIN_METADATA_NODES`] tree blocks, so the
//! minimum grows with the node size (about 22 MiB with 4 KiB nodes and dup metadata, 36 MiB
//! with 16 KiB, 102.5 MiB with 64 KiB).
//!
//! ```no_run
//! use btrfs_kit::mkfs::{mkfs, MkfsOptions};
//!
//! # fn main() -> Result<(), btrfs_kit::Error> {
//! let mut opts = MkfsOptions::default();
//! opts.label = "docker".into();
//! let made = mkfs("/dev/vg0/docker", &opts)?;
//! println!("fsid {}", made.fsid);
//! # Ok(())
//! # }
//! ```

mod build;
pub(crate) mod device;
mod layout;
mod options;
pub mod verify;

pub use build::{build, BuildError, BuiltImage, Identity, Write, GENERATION};
pub use layout::{minimum_size, plan, Layout, PlannedChunk, TooSmall, MIN_METADATA_NODES};
pub use options::{Features, MetadataProfile, MkfsOptions, UnknownProfileName};

use crate::{Error, ErrorKind};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};
use uuid::Uuid;

const OP: &str = "mkfs";

/// What [`mkfs`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formatted {
    /// The new filesystem's uuid.
    pub fsid: Uuid,
    /// The device's uuid.
    pub device_uuid: Uuid,
    /// Filesystem size.
    pub total_bytes: u64,
    /// Where the chunks went.
    pub layout: Layout,
}

/// Derives a uuid from `parts` (SHA-256, marked as a version 4 uuid), for the uuids that follow
/// from the fixed ones.
fn derived_uuid(parts: &[&[u8]]) -> Uuid {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    let d = h.finalize();
    uuid::Builder::from_random_bytes(d[..16].try_into().expect("16 bytes")).into_uuid()
}

/// The identities of a new filesystem: fixed ones from `opts`, random ones otherwise; the chunk
/// tree and subvolume uuids follow from the fsid and device uuid.
pub fn identity(opts: &MkfsOptions) -> Identity {
    let fsid = opts.fsid.unwrap_or_else(Uuid::new_v4);
    let device_uuid = opts.device_uuid.unwrap_or_else(Uuid::new_v4);
    let time = opts.time.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    Identity {
        fsid,
        device_uuid,
        chunk_tree_uuid: derived_uuid(&[fsid.as_bytes(), device_uuid.as_bytes(), b"chunk tree"]),
        subvol_uuid: derived_uuid(&[fsid.as_bytes(), device_uuid.as_bytes(), b"fs tree"]),
        time,
    }
}

/// Plans and builds the image of a `size`-byte filesystem in memory, without touching a device.
pub fn build_image(opts: &MkfsOptions, size: u64) -> Result<(BuiltImage, Identity, Layout), Error> {
    opts.validate()
        .map_err(|reason| Error::invalid_arguments(OP, reason))?;
    let layout = plan(size, opts).map_err(|t| {
        Error::new(
            OP,
            std::path::PathBuf::from("<image in memory>"),
            ErrorKind::TooSmall {
                size,
                minimum: t.minimum,
            },
        )
    })?;
    let id = identity(opts);
    let image = build(opts, &layout, &id).map_err(|e| Error::invalid_arguments(OP, e.0))?;
    Ok((image, id, layout))
}

/// Formats `target`, a block device or a regular file, as a new btrfs filesystem and returns
/// its fsid and layout.
///
/// Refuses a mounted device, one open exclusively elsewhere, and one holding a known
/// filesystem or partition signature unless `opts.force` is set. Wipes the first and last MiB
/// and old btrfs superblock copies before writing. A regular file that does not exist is
/// created when `opts.size` is given.
pub fn mkfs(target: impl AsRef<Path>, opts: &MkfsOptions) -> Result<Formatted, Error> {
    let path = target.as_ref();
    opts.validate()
        .map_err(|reason| Error::invalid_arguments(OP, reason))?;
    let mut dev = device::open(path, opts.size)?;
    let size = opts.size.unwrap_or(dev.size);
    let (image, id, layout) = build_image(opts, size).map_err(|e| match e.kind() {
        ErrorKind::TooSmall { .. } => Error::new(e.op(), path, e.into_kind()),
        _ => e,
    })?;
    if !opts.force {
        dev.refuse_signatures()?;
    }
    dev.wipe()?;
    let (supers, blocks): (Vec<_>, Vec<_>) = image.writes.iter().partition(|w| {
        w.bytes.len() == crate::format::consts::SUPER_SIZE && is_super_offset(w.offset)
    });
    for w in blocks {
        dev.write_at(w.offset, &w.bytes)?;
    }
    dev.sync()?;
    // Superblocks last, the primary after its copies, so a crash leaves no valid primary
    // pointing at unwritten trees.
    for w in supers {
        dev.write_at(w.offset, &w.bytes)?;
    }
    dev.sync()?;
    Ok(Formatted {
        fsid: id.fsid,
        device_uuid: id.device_uuid,
        total_bytes: layout.total_bytes,
        layout,
    })
}

/// What a device or file holds, judged as [`mkfs`] judges it before refusing to overwrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// No known signature in the first MiB.
    Empty,
    /// A btrfs filesystem with a valid primary superblock.
    Btrfs {
        /// Its uuid.
        fsid: Uuid,
        /// Its label.
        label: String,
        /// Its size.
        total_bytes: u64,
    },
    /// Another filesystem, volume or partition signature (or a damaged btrfs superblock),
    /// by name, e.g. `ext2/ext3/ext4`.
    Other(String),
}

/// Reads the first MiB of `path` and its btrfs superblock copies (read-only; it may be
/// mounted) and names what it holds, as [`mkfs`] would judge it.
pub fn probe(path: impl AsRef<Path>) -> Result<Probe, Error> {
    use crate::format::consts::{SUPER_OFFSET, SUPER_SIZE};
    use std::io::{Seek, SeekFrom};
    let path = path.as_ref();
    let io_err = |e: std::io::Error| {
        Error::from_errno(
            "probe",
            path,
            rustix::io::Errno::from_raw_os_error(
                e.raw_os_error()
                    .unwrap_or(rustix::io::Errno::IO.raw_os_error()),
            ),
        )
    };
    let mut file = std::fs::File::open(path).map_err(io_err)?;
    let size = file.seek(SeekFrom::End(0)).map_err(io_err)?;
    let (head, found) = device::find_signature(&mut file, size).map_err(io_err)?;
    match found {
        None => return Ok(Probe::Empty),
        Some("btrfs") => {}
        Some(other) => return Ok(Probe::Other(other.to_string())),
    }
    let start = SUPER_OFFSET as usize;
    Ok(
        match head
            .get(start..start + SUPER_SIZE)
            .map(crate::format::Superblock::decode)
        {
            Some(Ok(sb)) => Probe::Btrfs {
                fsid: sb.fsid,
                label: sb.label,
                total_bytes: sb.total_bytes,
            },
            Some(Err(e)) => Probe::Other(format!("btrfs with a bad superblock ({e})")),
            None => Probe::Other("btrfs (truncated superblock)".into()),
        },
    )
}

fn is_super_offset(off: u64) -> bool {
    (0..crate::format::consts::SUPER_MIRRORS)
        .any(|m| crate::format::consts::super_mirror_offset(m) == off)
}
