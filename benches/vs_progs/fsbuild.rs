//! Filesystems for the scenarios: each is built once as a template image, then cloned (sparse
//! copy + fresh fsid) so that both contenders start from byte-identical layouts.

use crate::measure::BenchResult;
use btrfs_kit::balance::{Balance, ChunkFilters};
use btrfs_kit::{BlockGroup, BlockGroupKind, Filesystem, Profile};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use testkit::fixture::{BtrfsOptions, FsKind, Scratch, SparseFile};

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

/// An unmounted filesystem image to clone from. Never mounted again once built, so its fsid
/// is never registered twice.
pub struct Template {
    image: SparseFile,
    options: BtrfsOptions,
    /// A one-line description of what the filesystem holds.
    pub description: String,
}

impl Template {
    /// Makes a `size`-byte btrfs on a loop device, runs `populate` on it mounted, syncs,
    /// unmounts and detaches. `populate` returns the description.
    pub fn build(
        size: u64,
        options: BtrfsOptions,
        populate: impl FnOnce(&Scratch, &Filesystem) -> BenchResult<String>,
    ) -> BenchResult<Template> {
        let scratch = Scratch::new(size, FsKind::Btrfs(options.clone()))
            .map_err(|e| format!("make template filesystem: {e}"))?;
        let description = {
            let fs = Filesystem::open(scratch.path())?;
            let description = populate(&scratch, &fs)?;
            fs.sync()?;
            description
        };
        let image = scratch
            .into_image()
            .map_err(|e| format!("unmount template: {e}"))?;
        Ok(Template {
            image,
            options,
            description,
        })
    }

    /// A fresh clone with a new fsid, attached and mounted; released on drop.
    pub fn clone_mounted(&self) -> BenchResult<Scratch> {
        let copy = self
            .image
            .clone_with_new_fsid()
            .map_err(|e| format!("clone template: {e}"))?;
        // Write the copy back now, so the host's writeback of it does not overlap the run.
        File::open(copy.path())?.sync_all()?;
        Ok(
            Scratch::mount_image(copy, FsKind::Btrfs(self.options.clone()))
                .map_err(|e| format!("mount clone: {e}"))?,
        )
    }
}

/// Lets the host finish writing back and freeing a dropped clone (`sync(2)`), so that its
/// cleanup does not overlap the next timed run.
pub fn settle() {
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// Chunk counts per kind and profile: the end state both contenders must reach.
pub type ChunkCounts = BTreeMap<(BlockGroupKind, Profile), usize>;

/// Transaction commits so far and the milliseconds they took, from
/// `/sys/fs/btrfs/<fsid>/commit_stats` (kernel 6.0+).
pub fn commit_stats(fs: &Filesystem) -> BenchResult<(u64, u64)> {
    let path = format!("/sys/fs/btrfs/{}/commit_stats", fs.info()?.fsid);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("read {path}: {e}"))?;
    let field = |name: &str| -> BenchResult<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .ok_or_else(|| format!("{path}: no {name}"))?
            .trim()
            .parse()
            .map_err(|e| format!("{path}: {name}: {e}").into())
    };
    Ok((field("commits ")?, field("total_commit_ms ")?))
}

/// Counts the chunks of the filesystem at `path` per kind and profile.
pub fn chunk_counts(path: &Path) -> BenchResult<ChunkCounts> {
    let fs = Filesystem::open(path)?;
    let mut counts = ChunkCounts::new();
    for chunk in fs.chunks()? {
        *counts.entry((chunk.kind, chunk.profile)).or_default() += 1;
    }
    Ok(counts)
}

/// `Data/single=3 Metadata/DUP=1 ...`
pub fn show_counts(counts: &ChunkCounts) -> String {
    counts
        .iter()
        .map(|((kind, profile), n)| format!("{kind}/{profile}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fails unless both sides ended with the same chunk counts per kind and profile.
pub fn same_end_state(what: &str, ours: &ChunkCounts, progs: &ChunkCounts) -> BenchResult<()> {
    if ours != progs {
        return Err(format!(
            "{what}: the contenders reached different end states (not a comparison): ours {} vs btrfs-progs {}",
            show_counts(ours),
            show_counts(progs)
        )
        .into());
    }
    Ok(())
}

/// Writes files of incompressible, distinct data (no two 4 KiB blocks alike) without fsync.
pub struct Writer {
    block: Vec<u8>,
    serial: u64,
}

impl Writer {
    /// A writer with one mebibyte of pseudo-random data to vary.
    pub fn new() -> Self {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let block = (0..MIB / 8)
            .flat_map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()
            })
            .collect();
        Writer { block, serial: 0 }
    }

    /// Writes a file of `size` bytes at `path`.
    pub fn file(&mut self, path: &Path, size: u64) -> BenchResult<()> {
        let mut file = File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
        let mut left = size;
        while left > 0 {
            self.serial += 1;
            for (i, page) in self.block.chunks_exact_mut(4096).enumerate() {
                page[..8].copy_from_slice(&self.serial.to_le_bytes());
                page[8..16].copy_from_slice(&(i as u64).to_le_bytes());
            }
            let n = left.min(MIB) as usize;
            file.write_all(&self.block[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Writes `count` files of `size` bytes named `{prefix}{i}` in `dir`.
    pub fn files(
        &mut self,
        dir: &Path,
        prefix: &str,
        count: u64,
        size: u64,
    ) -> BenchResult<Vec<PathBuf>> {
        (0..count)
            .map(|i| {
                let path = dir.join(format!("{prefix}{i:05}"));
                self.file(&path, size).map(|()| path)
            })
            .collect()
    }
}

/// The data block groups.
pub fn data_groups(fs: &Filesystem) -> BenchResult<Vec<BlockGroup>> {
    Ok(fs
        .block_groups()?
        .into_iter()
        .filter(|g| g.kind == BlockGroupKind::Data)
        .collect())
}

/// `usage%` of each data block group, for descriptions.
pub fn show_data_usage(fs: &Filesystem) -> BenchResult<String> {
    Ok(data_groups(fs)?
        .iter()
        .map(|g| format!("{:.0}%", g.usage_percent()))
        .collect::<Vec<_>>()
        .join(" "))
}

/// Data in 8 MiB files, then a `usage=0` balance so no empty data chunk is left: the daily
/// no-op case, also used by the query scenarios.
pub fn no_empty_chunks(data: u64) -> impl FnOnce(&Scratch, &Filesystem) -> BenchResult<String> {
    move |scratch, fs| {
        Writer::new().files(scratch.path(), "f", data / (8 * MIB), 8 * MIB)?;
        fs.sync()?;
        fs.balance(&Balance::new().data(ChunkFilters::usage_below(0)))?;
        fs.sync()?;
        let groups = data_groups(fs)?;
        if groups.iter().any(|g| g.used.bytes() == 0) {
            return Err("setup: an empty data chunk survived usage=0".into());
        }
        Ok(format!(
            "{} MiB of data in 8 MiB files, no empty chunk (data chunks {})",
            data / MIB,
            show_data_usage(fs)?
        ))
    }
}

/// Data in `data` bytes of 8 MiB files, nothing deleted (full balance, status polls).
pub fn packed(data: u64) -> impl FnOnce(&Scratch, &Filesystem) -> BenchResult<String> {
    move |scratch, fs| {
        Writer::new().files(scratch.path(), "f", data / (8 * MIB), 8 * MIB)?;
        fs.sync()?;
        Ok(format!(
            "{} MiB of data in 8 MiB files (data chunks {})",
            data / MIB,
            show_data_usage(fs)?
        ))
    }
}

/// Pairs of files, 4 MiB kept and 6 MiB deleted, so every data chunk ends about 40 % full and
/// `usage=50` relocates `kept` bytes.
pub fn thinned(kept: u64) -> impl FnOnce(&Scratch, &Filesystem) -> BenchResult<String> {
    move |scratch, fs| {
        let pairs = kept / (4 * MIB);
        let mut writer = Writer::new();
        let mut doomed = Vec::new();
        for i in 0..pairs {
            writer.file(&scratch.path().join(format!("keep{i:05}")), 4 * MIB)?;
            let gone = scratch.path().join(format!("gone{i:05}"));
            writer.file(&gone, 6 * MIB)?;
            doomed.push(gone);
        }
        fs.sync()?;
        for path in doomed {
            std::fs::remove_file(path)?;
        }
        fs.sync()?;
        Ok(format!(
            "{} MiB kept in 4 MiB files between deleted 6 MiB ones (data chunks {})",
            pairs * 4,
            show_data_usage(fs)?
        ))
    }
}

/// Data chunks shaped for the daily policy: in the full-size data chunks, one emptied, one
/// thinned below 5 %, one below 10 %, one to 30 %; the rest full. Files are 1 MiB so a chunk's
/// fill can be set finely; FIEMAP maps them to chunks (on btrfs its "physical" address is the
/// logical address that balance works on).
pub fn policy_shaped(data: u64) -> impl FnOnce(&Scratch, &Filesystem) -> BenchResult<String> {
    move |scratch, fs| {
        let paths = Writer::new().files(scratch.path(), "f", data / MIB, MIB)?;
        fs.sync()?;
        let mut placed = Vec::new();
        for path in paths {
            let extents = fiemap::fiemap(&path)?
                .map(|e| e.map(|e| (e.fe_physical, e.fe_length)))
                .collect::<Result<Vec<_>, _>>()?;
            placed.push((path, extents));
        }
        let groups = data_groups(fs)?;
        let largest = groups
            .iter()
            .map(|g| g.length)
            .max()
            .ok_or("no data chunk")?;
        let full_size: Vec<&BlockGroup> = groups.iter().filter(|g| g.length == largest).collect();
        if full_size.len() < 5 {
            return Err(format!("setup: only {} full-size data chunks", full_size.len()).into());
        }
        for (group, target) in full_size.iter().zip([0.0, 0.03, 0.08, 0.30]) {
            let (start, end) = (group.logical, group.logical + group.length.bytes());
            let mut used = group.used.bytes() as f64;
            for (path, extents) in &placed {
                if used <= target * group.length.bytes() as f64 {
                    break;
                }
                let inside: u64 = extents
                    .iter()
                    .filter(|&&(s, l)| s < end && start < s + l)
                    .map(|&(_, l)| l)
                    .sum();
                if inside > 0 && path.exists() {
                    std::fs::remove_file(path)?;
                    used -= inside as f64;
                }
            }
        }
        fs.sync()?;
        Ok(format!(
            "{} MiB written in 1 MiB files, then data chunks thinned to 0, <5, <10 and 30 % (data chunks {})",
            data / MIB,
            show_data_usage(fs)?
        ))
    }
}

/// Many small files (inlined in metadata), so the metadata chunks hold something to convert.
pub fn small_files(count: u64) -> impl FnOnce(&Scratch, &Filesystem) -> BenchResult<String> {
    move |scratch, fs| {
        let body = vec![b'x'; 2000];
        for i in 0..count {
            let dir = scratch.path().join(format!("d{:03}", i % 100));
            if i < 100 {
                std::fs::create_dir(&dir)?;
            }
            std::fs::write(dir.join(format!("s{i:06}")), &body)?;
        }
        fs.sync()?;
        let meta: u64 = fs
            .space_info()?
            .iter()
            .filter(|s| s.kind == BlockGroupKind::Metadata)
            .map(|s| s.used.bytes())
            .sum();
        Ok(format!(
            "{count} files of 2000 bytes (inline), {} MiB of metadata, DUP",
            meta / MIB
        ))
    }
}
