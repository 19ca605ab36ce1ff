//! FIEMAP on a real kernel: our extent maps equal those of the `fiemap` crate and of `filefrag -v`
//! (e2fsprogs) for fragmented, sparse, preallocated, inline, compressed, shared and empty files,
//! including files with more extents than one ioctl call returns.

use crate::data::MIB;
use crate::defrag::write_interleaved;
use btrfs_kit::fiemap::{Extent, ExtentFlags, FiemapReader, FiemapRequest};
use btrfs_kit::ByteSize;
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use testkit::ensure;
use testkit::fixture::Scratch;
use testkit::harness::Failed;

/// Files with every kind of extent, on `scratch`; all flushed.
fn corpus(scratch: &Scratch) -> Result<Vec<PathBuf>, Failed> {
    let root = scratch.path();
    // 300 pieces each: more extents than one FIEMAP call returns (256).
    write_interleaved(&root.join("frag"), &root.join("frag2"), 300, 11)?;
    let mut sparse = std::fs::File::create(root.join("sparse"))?;
    for (offset, len) in [(0, 64 * 1024), (MIB, 64 * 1024), (5 * MIB, 4096)] {
        sparse.seek(SeekFrom::Start(offset))?;
        sparse.write_all(&vec![0x5A; len])?;
    }
    sparse.set_len(8 * MIB)?;
    sparse.sync_all()?;
    let mut prealloc = std::fs::File::create(root.join("prealloc"))?;
    nix::fcntl::fallocate(
        &prealloc,
        nix::fcntl::FallocateFlags::empty(),
        0,
        MIB as i64,
    )?;
    prealloc.seek(SeekFrom::Start(256 * 1024))?;
    prealloc.write_all(&[7u8; 64 * 1024])?;
    prealloc.sync_all()?;
    std::fs::write(
        root.join("inline"),
        b"a few bytes stay inline in the metadata",
    )?;
    std::fs::File::create(root.join("empty"))?;
    let out = Command::new("cp")
        .arg("--reflink=always")
        .arg(root.join("frag"))
        .arg(root.join("reflink"))
        .output()?;
    ensure!(out.status.success(), "cp --reflink=always");
    // Compression through the inode flag (chattr +c, inherited from the directory).
    std::fs::create_dir(root.join("compressed"))?;
    let out = Command::new("chattr")
        .arg("+c")
        .arg(root.join("compressed"))
        .output()?;
    ensure!(
        out.status.success(),
        "chattr +c: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = "compressible text ".repeat(64 * 1024);
    std::fs::write(root.join("compressed/text"), text.as_bytes())?;
    let mut files: Vec<PathBuf> = [
        "frag",
        "frag2",
        "sparse",
        "prealloc",
        "inline",
        "empty",
        "reflink",
        "compressed/text",
    ]
    .iter()
    .map(|n| root.join(n))
    .collect();
    for f in &files {
        std::fs::File::open(f)?.sync_all()?;
    }
    files.sort();
    Ok(files)
}

fn ours(path: &Path) -> Result<Vec<Extent>, Failed> {
    let file = std::fs::File::open(path)?;
    Ok(FiemapReader::new().extents(file.as_fd(), path, &FiemapRequest::default())?)
}

/// Checks that the corpus shows each kind of extent at least once, so the comparisons cover them.
fn check_coverage(all: &[(PathBuf, Vec<Extent>)]) -> Result<(), Failed> {
    let flags = all
        .iter()
        .flat_map(|(_, e)| e.iter().map(|e| e.flags))
        .fold(ExtentFlags::empty(), |a, b| a | b);
    for needed in [
        ExtentFlags::LAST,
        ExtentFlags::SHARED,
        ExtentFlags::UNWRITTEN,
        ExtentFlags::DATA_INLINE,
        ExtentFlags::ENCODED,
    ] {
        ensure!(
            flags.contains(needed),
            "no extent with {needed:?} in the corpus"
        );
    }
    let most = all.iter().map(|(_, e)| e.len()).max().unwrap_or(0);
    ensure!(
        most > 256,
        "the largest map has {most} extents, not more than one call returns"
    );
    Ok(())
}

testkit::register!(root: extents_equal_the_fiemap_crate);
fn extents_equal_the_fiemap_crate() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let mut all = Vec::new();
    for path in corpus(&scratch)? {
        let mine = ours(&path)?;
        let theirs: Vec<Extent> = fiemap::fiemap(&path)?
            .map(|e| {
                e.map(|e| Extent {
                    logical: ByteSize(e.fe_logical),
                    physical: ByteSize(e.fe_physical),
                    length: ByteSize(e.fe_length),
                    flags: ExtentFlags::from_bits_retain(e.fe_flags.bits()),
                })
            })
            .collect::<Result<_, _>>()?;
        ensure!(
            mine == theirs,
            "{}: ours {mine:?}\nfiemap crate {theirs:?}",
            path.display()
        );
        all.push((path, mine));
    }
    check_coverage(&all)?;

    // Unflushed data shows as delayed allocation until a synced request.
    let path = scratch.path().join("dirty");
    std::fs::write(&path, vec![1u8; 128 * 1024])?;
    ensure!(
        ours(&path)?
            .iter()
            .all(|e| e.flags.contains(ExtentFlags::DELALLOC)),
        "unflushed data is DELALLOC",
    );
    let file = std::fs::File::open(&path)?;
    let synced = FiemapReader::new().extents(file.as_fd(), &path, &FiemapRequest::synced())?;
    ensure!(
        !synced.is_empty()
            && synced
                .iter()
                .all(|e| !e.flags.contains(ExtentFlags::DELALLOC) && e.physical.bytes() > 0),
        "a synced request maps the data: {synced:?}",
    );
    Ok(())
}

/// `filefrag -v -b1 PATH` as extents (byte units; filefrag's own `eof` marker dropped).
fn filefrag(path: &Path) -> Result<Vec<Extent>, Failed> {
    let out = Command::new("filefrag")
        .args(["-v", "-b1"])
        .arg(path)
        .output()
        .map_err(|e| format!("run filefrag (e2fsprogs): {e}"))?;
    ensure!(
        out.status.success(),
        "filefrag: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut extents = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        // "   N: a.. b: c.. d: len: [expected]: flags" (the expected column may be empty).
        if fields.len() < 5 || fields[0].trim().parse::<u64>().is_err() {
            continue;
        }
        let start = |f: &str| -> Result<u64, Failed> {
            let s = f.split("..").next().unwrap_or("").trim();
            s.parse()
                .map_err(|_| format!("bad field {f:?} in {line:?}").into())
        };
        let mut flags = ExtentFlags::empty();
        for name in fields[fields.len() - 1]
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            flags |= match name {
                "last" => ExtentFlags::LAST,
                "unknown_loc" => ExtentFlags::UNKNOWN,
                "delalloc" => ExtentFlags::DELALLOC,
                "encoded" => ExtentFlags::ENCODED,
                "encrypted" => ExtentFlags::DATA_ENCRYPTED,
                "not_aligned" => ExtentFlags::NOT_ALIGNED,
                "inline" => ExtentFlags::DATA_INLINE,
                "tail_packed" => ExtentFlags::DATA_TAIL,
                "unwritten" => ExtentFlags::UNWRITTEN,
                "merged" => ExtentFlags::MERGED,
                "shared" => ExtentFlags::SHARED,
                "eof" => ExtentFlags::empty(),
                other => return Err(format!("unknown filefrag flag {other:?}").into()),
            };
        }
        extents.push(Extent {
            logical: ByteSize(start(fields[1])?),
            physical: ByteSize(start(fields[2])?),
            length: ByteSize(start(fields[3])?),
            flags,
        });
    }
    Ok(extents)
}

testkit::register!(root: extents_equal_filefrag);
fn extents_equal_filefrag() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let mut all = Vec::new();
    for path in corpus(&scratch)? {
        let mine = ours(&path)?;
        let theirs = filefrag(&path)?;
        ensure!(
            mine == theirs,
            "{}: ours {mine:?}\nfilefrag {theirs:?}",
            path.display()
        );
        all.push((path, mine));
    }
    check_coverage(&all)
}
