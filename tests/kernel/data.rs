//! Test data for the kernel tests: seeded files and their hashes, filling a filesystem, and
//! the figures of the data written.

use btrfs_kit::{BlockGroup, BlockGroupKind, Filesystem};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use testkit::harness::Failed;

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

/// Writes `size` bytes of seeded pseudo-random data to `path`, fsyncs, returns its SHA-256.
pub fn write_file(path: &Path, size: u64, seed: u64) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::create(path)?;
    let mut hasher = Sha256::new();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        file.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    file.sync_all()?;
    Ok(hasher.finalize().into())
}

/// Writes 1 MiB blocks to a new file at `path` until ENOSPC, fsyncs (tolerating ENOSPC there
/// too), and returns the bytes written. Any other error fails.
pub fn write_until_full(path: &Path) -> Result<u64, Failed> {
    let mut file = std::fs::File::create(path)?;
    let block = vec![0xA5u8; MIB as usize];
    let mut written = 0u64;
    loop {
        match file.write(&block) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
            Err(e) => return Err(format!("write until full: {e} (expected ENOSPC)").into()),
        }
    }
    match file.sync_all() {
        Err(e) if e.raw_os_error() != Some(nix::libc::ENOSPC) => {
            Err(format!("fsync after filling: {e}").into())
        }
        _ => Ok(written),
    }
}

/// SHA-256 of a file's content, read through an open handle.
pub fn sha256_of(mut reader: impl Read) -> std::io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
    }
}

/// The data block groups, by logical address.
pub fn data_groups(fs: &Filesystem) -> Result<Vec<BlockGroup>, Failed> {
    Ok(fs
        .block_groups()?
        .into_iter()
        .filter(|g| g.kind == BlockGroupKind::Data)
        .collect())
}

/// SHA-256 of the file at `path`.
pub fn hash(path: &Path) -> Result<[u8; 32], Failed> {
    Ok(sha256_of(std::fs::File::open(path)?)?)
}

/// Bytes used in data block groups, as SPACE_INFO reports them.
pub fn data_used(fs: &Filesystem) -> Result<u64, Failed> {
    Ok(fs
        .space_info()?
        .iter()
        .filter(|s| s.kind == BlockGroupKind::Data)
        .map(|s| s.used.bytes())
        .sum())
}
