//! Usage, limit and convert filters on real data chunks with known fill.
//!
//! Files are written sequentially, mapped to chunks with FIEMAP (on btrfs the "physical"
//! address is the logical address balance works on), and deleted to shape chunk usage. Every
//! expectation is computed from the block groups just before the balance, never hard-coded.

use crate::data::{data_groups, write_file, MIB};
use btrfs_kit::balance::{Balance, ChunkFilters};
use btrfs_kit::{BlockGroup, BlockGroupKind, ErrorKind, Filesystem, Profile};
use std::collections::BTreeSet;
use std::path::PathBuf;
use testkit::ensure;
use testkit::fixture::Scratch;
use testkit::harness::Failed;

/// A file and the logical ranges of its extents.
struct Placed {
    path: PathBuf,
    extents: Vec<(u64, u64)>,
}

/// Writes a file of `size` bytes and maps it to logical addresses.
fn write_placed(path: PathBuf, size: u64, seed: u64) -> Result<Placed, Failed> {
    write_file(&path, size, seed)?;
    let extents = fiemap::fiemap(&path)?
        .map(|e| e.map(|e| (e.fe_physical, e.fe_length)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Placed { path, extents })
}

/// Writes `count` files of `size` bytes and maps them to logical addresses.
fn write_files(scratch: &Scratch, count: u64, size: u64) -> Result<Vec<Placed>, Failed> {
    let placed = (0..count)
        .map(|i| write_placed(scratch.path().join(format!("file{i:03}")), size, i))
        .collect::<Result<Vec<_>, _>>()?;
    Filesystem::open(scratch.path())?.sync()?;
    Ok(placed)
}

fn within(group: &BlockGroup, (start, len): (u64, u64)) -> bool {
    start >= group.logical && start + len <= group.logical + group.length.bytes()
}

fn touches(group: &BlockGroup, (start, len): (u64, u64)) -> bool {
    start < group.logical + group.length.bytes() && group.logical < start + len
}

/// The large data chunks (not mkfs's small first one) holding whole files, lowest first.
fn full_sized_groups(fs: &Filesystem) -> Result<Vec<BlockGroup>, Failed> {
    let groups = data_groups(fs)?;
    let largest = groups
        .iter()
        .map(|g| g.length)
        .max()
        .ok_or("no data chunks")?;
    Ok(groups.into_iter().filter(|g| g.length == largest).collect())
}

/// Deletes files lying wholly inside `group` until its usage is at most `max_percent`.
fn thin_out(
    fs: &Filesystem,
    files: &mut Vec<Placed>,
    group: &BlockGroup,
    max_percent: f64,
) -> Result<(), Failed> {
    let mut kept = Vec::new();
    for file in files.drain(..) {
        let usage = fs
            .block_groups()?
            .into_iter()
            .find(|g| g.logical == group.logical)
            .map(|g| g.usage_percent());
        if usage.is_some_and(|u| u > max_percent) && file.extents.iter().all(|&e| within(group, e))
        {
            std::fs::remove_file(&file.path)?;
            fs.sync()?;
        } else {
            kept.push(file);
        }
    }
    *files = kept;
    Ok(())
}

fn logicals(groups: &[BlockGroup]) -> BTreeSet<u64> {
    groups.iter().map(|g| g.logical).collect()
}

testkit::register!(root: usage_zero_reclaims_exactly_the_empty_chunks);
fn usage_zero_reclaims_exactly_the_empty_chunks() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(2048 * MIB)?;
    let fs = Filesystem::open(scratch.path())?;
    let files = write_files(&scratch, 40, 16 * MIB)?;
    let target = full_sized_groups(&fs)?
        .get(1)
        .copied()
        .ok_or("fewer than two full-size data chunks")?;
    for file in files
        .iter()
        .filter(|f| f.extents.iter().any(|&e| touches(&target, e)))
    {
        std::fs::remove_file(&file.path)?;
    }
    fs.sync()?;
    let before = data_groups(&fs)?;
    let empty: Vec<BlockGroup> = before
        .iter()
        .filter(|g| g.used.bytes() == 0)
        .copied()
        .collect();
    ensure!(
        !empty.is_empty(),
        "setup: no empty data chunk right before the balance (cleaner removed it?)",
    );
    let request = Balance::new().data(ChunkFilters::usage_below(0));
    let predicted = fs.balance_candidates(&request)?;
    ensure!(
        predicted == Some(empty.len() as u64),
        "predicted {predicted:?} candidates, {} empty",
        empty.len(),
    );
    let outcome = fs.balance(&request)?;
    let after = data_groups(&fs)?;
    ensure!(
        outcome.relocated() == empty.len() as u64,
        "relocated {} chunks, {} were empty: {outcome:?}",
        outcome.relocated(),
        empty.len(),
    );
    let non_empty: BTreeSet<u64> = logicals(&before)
        .difference(&logicals(&empty))
        .copied()
        .collect();
    ensure!(
        non_empty.is_subset(&logicals(&after)),
        "a non-empty chunk was relocated"
    );
    // (A relocated chunk's address can come back: the kernel gives a new chunk the start of
    // the highest one removed. So check what remains, not which addresses vanished.)
    ensure!(
        after.iter().all(|g| g.used.bytes() > 0),
        "an empty data chunk survived usage=0"
    );
    Ok(())
}

fn in_usage_range(g: &BlockGroup) -> bool {
    g.usage_percent() >= 1.0 && g.usage_percent() < 50.0
}

testkit::register!(root: usage_range_relocates_exactly_the_chunks_in_range);
fn usage_range_relocates_exactly_the_chunks_in_range() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(2048 * MIB)?;
    let fs = Filesystem::open(scratch.path())?;
    let mut files = write_files(&scratch, 48, 16 * MIB)?;
    let full = full_sized_groups(&fs)?;
    ensure!(
        full.len() >= 3,
        "setup: {} full-size data chunks",
        full.len()
    );
    // Two chunks thinned to at most 10 %, and so is any other chunk that happens to be in
    // range (usually the last one written), so the data of all chunks in range together stays
    // below 50 % of one chunk: wherever relocation puts it, the set of chunks in range cannot
    // change during the balance.
    for group in [full[0], full[2]] {
        thin_out(&fs, &mut files, &group, 10.0)?;
    }
    for group in data_groups(&fs)?.iter().filter(|g| in_usage_range(g)) {
        thin_out(&fs, &mut files, group, 10.0)?;
    }
    // Setup: no empty chunk may exist to receive relocated data and enter the range mid-way.
    fs.balance(&Balance::new().data(ChunkFilters::usage_below(0)))?;
    let before = data_groups(&fs)?;
    let in_range: Vec<BlockGroup> = before
        .iter()
        .filter(|g| in_usage_range(g))
        .copied()
        .collect();
    let moved: u64 = in_range.iter().map(|g| g.used.bytes()).sum();
    let smallest = in_range.iter().map(|g| g.length.bytes()).min().unwrap_or(0);
    ensure!(
        in_range.len() >= 2,
        "setup: {} chunks in 1..50 %: {before:?}",
        in_range.len()
    );
    ensure!(
        moved * 2 < smallest,
        "setup: chunks in range hold {moved} bytes, too much to stay in range: {before:?}",
    );
    ensure!(
        before.iter().all(|g| g.used.bytes() > 0),
        "setup: an empty chunk exists"
    );
    let request = Balance::new().data("usage=1..50".parse()?);
    let predicted = fs.balance_candidates(&request)?;
    ensure!(
        predicted == Some(in_range.len() as u64),
        "predicted {predicted:?} candidates, {} in range",
        in_range.len(),
    );
    let outcome = fs.balance(&request)?;
    let after = logicals(&data_groups(&fs)?);
    ensure!(
        outcome.relocated() == in_range.len() as u64,
        "relocated {}, {} were in range: {outcome:?}",
        outcome.relocated(),
        in_range.len(),
    );
    let others: BTreeSet<u64> = logicals(&before)
        .difference(&logicals(&in_range))
        .copied()
        .collect();
    ensure!(
        others.is_subset(&after),
        "a chunk outside the range was relocated"
    );
    Ok(())
}

testkit::register!(root: limit_one_relocates_one_chunk);
fn limit_one_relocates_one_chunk() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(2048 * MIB)?;
    let fs = Filesystem::open(scratch.path())?;
    write_files(&scratch, 20, 16 * MIB)?;
    let before = data_groups(&fs)?;
    ensure!(before.len() >= 2, "setup: fewer than two data chunks");
    let outcome = fs.balance(&Balance::new().data("limit=1".parse()?))?;
    ensure!(
        outcome.relocated() == 1,
        "limit=1 relocated {}: {outcome:?}",
        outcome.relocated()
    );
    let after = logicals(&data_groups(&fs)?);
    ensure!(
        logicals(&before).difference(&after).count() == 1,
        "not exactly one chunk disappeared"
    );
    Ok(())
}

fn metadata_profiles(fs: &Filesystem) -> Result<BTreeSet<Profile>, Failed> {
    Ok(fs
        .space_info()?
        .into_iter()
        .filter(|s| matches!(s.kind, BlockGroupKind::Metadata | BlockGroupKind::System))
        .map(|s| s.profile)
        .collect())
}

testkit::register!(root: convert_metadata_dup_single_dup);
fn convert_metadata_dup_single_dup() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let fs = Filesystem::open(scratch.path())?;
    write_files(&scratch, 4, 8 * MIB)?;
    ensure!(
        metadata_profiles(&fs)? == BTreeSet::from([Profile::Dup]),
        "setup: metadata is not dup",
    );
    // Reducing redundancy without force: the kernel refuses (EINVAL), and we say why.
    let to_single = Balance::new().metadata(ChunkFilters::convert(Profile::Single, false));
    match fs.balance(&to_single).map_err(btrfs_kit::Error::into_kind) {
        Err(ErrorKind::KernelRejected {
            hint: Some(hint), ..
        }) => ensure!(hint.contains("force"), "{hint}"),
        other => return Err(format!("dup→single without force: {other:?}").into()),
    }
    fs.balance(&to_single.force(true))?;
    ensure!(
        metadata_profiles(&fs)? == BTreeSet::from([Profile::Single]),
        "metadata is not single after convert",
    );
    let back = Balance::new().metadata(ChunkFilters::convert(Profile::Dup, true));
    let outcome = fs.balance(&back)?;
    ensure!(
        outcome.relocated() > 0,
        "convert back to dup relocated nothing"
    );
    ensure!(
        metadata_profiles(&fs)? == BTreeSet::from([Profile::Dup]),
        "metadata is not dup after converting back",
    );
    Ok(())
}

testkit::register!(root: typos_never_become_a_full_balance);
/// Filter strings that name no filter, or an unbounded one, are refused by the example before
/// any balance starts, and no chunk moves; harmless btrfs-progs spellings (`profiles=single|`)
/// are accepted and run as written. (Issue 15 item 10: `-d' '` ran a full data balance.)
fn typos_never_become_a_full_balance() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let fs = Filesystem::open(scratch.path())?;
    write_files(&scratch, 8, 16 * MIB)?;
    let path = scratch.path().to_str().ok_or("path")?;
    let chunks = || -> Result<BTreeSet<u64>, Failed> { Ok(logicals(&fs.block_groups()?)) };
    let before = chunks()?;
    for arg in [
        "-d ",
        "-d  ,  ",
        "-d,",
        "-d\u{a0}",
        "-dusage=..",
        "-dlimit=..",
        "-dusage=5, limit=2",
        "-dvrange=..",
        "-ddevid=0",
        "-m ",
        "-m,,",
    ] {
        let out = crate::example_bin::run("balance", &[path, "--json", arg])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.code() == Some(2) && stderr.contains("bad balance filter"),
            "balance {arg:?}: exit {:?}, stderr {stderr}, stdout {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
        );
        ensure!(
            fs.balance_status()?.is_none() && chunks()? == before,
            "balance {arg:?} moved chunks",
        );
    }
    for (accepted, request) in [
        ("-dprofiles=single|", "-dprofiles=single"),
        ("-dprofiles=|single,limit=1", "-dprofiles=single,limit=1"),
        ("-dusage=0 ", "-dusage=0"),
    ] {
        let out = crate::example_bin::run("balance", &[path, "--json", accepted])?;
        ensure!(
            out.status.code() == Some(0),
            "balance {accepted:?}: exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        ensure!(
            report["steps"][0]["request"] == request,
            "balance {accepted:?} ran {report}"
        );
    }
    Ok(())
}
