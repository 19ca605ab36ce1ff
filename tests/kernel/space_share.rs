//! Per-subvolume data space (`btrfs_kit::space_share`) on a real kernel, against two
//! independent oracles:
//!
//! * **qgroups** (the kernel's own accounting, after a rescan): on trees kept to one leaf each
//!   (root level 0, checked), a subvolume's tree blocks are exactly one `nodesize` leaf of its
//!   own (a snapshot gets a copy of its source's root), so qgroup `rfer` = our referenced +
//!   nodesize and `excl` = our exclusive + nodesize, to the byte; a level-1 qgroup holding a
//!   group of subvolumes is our group's figures + one nodesize per member. The trees hold
//!   snapshots, reflinks within and across subvolumes, partial overwrites of snapshotted files,
//!   deletions, compressed files (zstd through the inherited `chattr +c` flag), preallocated
//!   and inline extents. The same on raid1 (two devices): the same figures as on one device,
//!   since `disk_num_bytes` is logical.
//! * **`btrfs filesystem du -s --raw`** (oracle tier, FIEMAP-based): per subvolume its Total is
//!   our logical bytes, its Exclusive our exclusive bytes and its Set shared our shared bytes,
//!   and over a directory holding all of them, Exclusive is the sum of the exclusive bytes and
//!   Set shared the group's referenced bytes minus that sum. These hold exactly where every
//!   file extent item references a whole uncompressed disk extent and no disk extent is
//!   referenced twice from within one subvolume (then FIEMAP's SHARED flag means "another
//!   subvolume references it", and its ranges are the disk extents): a Docker-like chain of
//!   snapshots where later layers replace whole files, plus a cross-subvolume reflink.

use crate::data::{write_file, MIB};
use crate::progs::Progs;
use btrfs_kit::format::items::RootItem;
use btrfs_kit::quota::QgroupId;
use btrfs_kit::space_share::{Scope, SpaceShare, SubvolumeSpace};
use btrfs_kit::subvolume::{self, SnapshotOptions};
use btrfs_kit::{Filesystem, Profile, SearchRange};
use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;
use testkit::ensure;
use testkit::fixture::{MultiScratch, Scratch};
use testkit::harness::Failed;

const KIB: u64 = 1024;

fn reflink(src: &Path, dst: &Path) -> Result<(), Failed> {
    let out = Command::new("cp")
        .arg("--reflink=always")
        .arg(src)
        .arg(dst)
        .output()?;
    ensure!(
        out.status.success(),
        "cp --reflink=always {} {}: {}",
        src.display(),
        dst.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn chattr_compress(dir: &Path) -> Result<(), Failed> {
    let out = Command::new("chattr").arg("+c").arg(dir).output()?;
    ensure!(
        out.status.success(),
        "chattr +c {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Overwrites `len` bytes at `at` of an existing file with a pattern, fsynced.
fn overwrite(path: &Path, at: u64, len: usize) -> Result<(), Failed> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.seek(SeekFrom::Start(at))?;
    f.write_all(&vec![0xC3; len])?;
    f.sync_all()?;
    Ok(())
}

/// The qgroup scenario under `m`; returns the subvolumes by name.
fn build_scenario(m: &Path) -> Result<Vec<(&'static str, u64)>, Failed> {
    let base = m.join("base");
    subvolume::create(&base)?;
    write_file(&base.join("random1"), MIB, 1)?;
    write_file(&base.join("random2"), 300 * KIB, 2)?;
    std::fs::write(
        base.join("small"),
        b"a small file stays inline in its leaf\n",
    )?;
    let pre = std::fs::File::create(base.join("pre"))?;
    nix::fcntl::fallocate(
        &pre,
        nix::fcntl::FallocateFlags::empty(),
        0,
        (512 * KIB) as i64,
    )?;
    drop(pre);
    overwrite(&base.join("pre"), 128 * KIB, 64 * 1024)?;
    std::fs::create_dir(base.join("z"))?;
    chattr_compress(&base.join("z"))?;
    std::fs::write(
        base.join("z/text"),
        "compressible text, again and again; ".repeat(30_000),
    )?;
    std::fs::File::open(base.join("z/text"))?.sync_all()?;
    // A reflink within the subvolume: the extent stays exclusive.
    reflink(&base.join("random1"), &base.join("clone"))?;

    let snap1 = m.join("snap1");
    subvolume::snapshot(&base, &snap1, &SnapshotOptions::writable())?;
    // A partial overwrite: snap1 keeps the old extent in part (and whole through `clone`).
    overwrite(&snap1.join("random1"), 256 * KIB, 64 * 1024)?;
    std::fs::remove_file(snap1.join("random2"))?;
    write_file(&snap1.join("new"), 200 * KIB, 3)?;

    let snap2 = m.join("snap2");
    subvolume::snapshot(&snap1, &snap2, &SnapshotOptions::read_only())?;

    let other = m.join("other");
    subvolume::create(&other)?;
    reflink(&base.join("z/text"), &other.join("text"))?;
    write_file(&other.join("own"), 128 * KIB, 4)?;
    std::fs::write(other.join("tiny"), b"x")?;

    Filesystem::open(m)?.sync()?;
    let mut out = Vec::new();
    for (name, path) in [
        ("base", &base),
        ("snap1", &snap1),
        ("snap2", &snap2),
        ("other", &other),
    ] {
        out.push((name, subvolume::subvolume_id(path)?));
    }
    Ok(out)
}

/// The level of subvolume `id`'s root block, from its ROOT_ITEM.
fn root_level(fs: &Filesystem, id: u64) -> Result<u8, Failed> {
    let range = SearchRange::items(1, (id, id), 132);
    let item = fs.tree_search(range).next().ok_or("no ROOT_ITEM")??;
    let (_, level) = RootItem::decode_location(&item.data).ok_or("short ROOT_ITEM")?;
    Ok(level)
}

/// Compares every named subvolume and the group of all of them with qgroups (after a
/// rescan), exactly: each tree is one leaf, so the metadata term is one nodesize per tree.
fn compare_with_qgroups(
    m: &Path,
    subvols: &[(&str, u64)],
    share: &SpaceShare,
) -> Result<(), Failed> {
    let fs = Filesystem::open(m)?;
    let nodesize = fs.info()?.nodesize.bytes();
    for &(name, id) in subvols {
        let level = root_level(&fs, id)?;
        ensure!(
            level == 0,
            "{name}: its tree has level {level}; the exact comparison needs one leaf"
        );
    }
    let group = QgroupId::new(1, 100);
    fs.enable_quota()?;
    fs.wait_quota_rescan()?;
    fs.create_qgroup(group)?;
    for &(_, id) in subvols {
        fs.assign_qgroup(QgroupId::subvolume(id), group)?;
    }
    fs.rescan_quota()?;
    fs.wait_quota_rescan()?;
    let status = fs.quota_status()?.ok_or("quota status")?;
    ensure!(
        !status.inconsistent,
        "qgroups inconsistent after the rescan"
    );
    let qgroups: BTreeMap<QgroupId, (u64, u64)> = fs
        .qgroups()?
        .into_iter()
        .map(|q| (q.id, (q.referenced.bytes(), q.exclusive.bytes())))
        .collect();
    for &(name, id) in subvols {
        let ours = share.subvolume(id).ok_or("not measured")?;
        let (rfer, excl) = qgroups[&QgroupId::subvolume(id)];
        ensure!(
            (rfer, excl) == (ours.referenced.bytes() + nodesize, ours.exclusive.bytes() + nodesize),
            "{name} ({id}): qgroup rfer {rfer} excl {excl}, ours referenced {} exclusive {} (+ one {nodesize}-byte leaf)",
            ours.referenced.bytes(),
            ours.exclusive.bytes(),
        );
    }
    let ids: Vec<u64> = subvols.iter().map(|&(_, id)| id).collect();
    let g = share.group(&ids)?;
    let (rfer, excl) = qgroups[&group];
    let leaves = nodesize * subvols.len() as u64;
    ensure!(
        (rfer, excl) == (g.referenced.bytes() + leaves, g.exclusive.bytes() + leaves),
        "group: qgroup 1/100 rfer {rfer} excl {excl}, ours {g:?} (+ {leaves} of leaves)"
    );
    Ok(())
}

/// Checks what the scenario's construction implies, independently of any oracle.
fn check_scenario_facts(subvols: &[(&str, u64)], share: &SpaceShare) -> Result<(), Failed> {
    let by_name: BTreeMap<&str, &SubvolumeSpace> = subvols
        .iter()
        .map(|&(n, id)| (n, share.subvolume(id).expect("measured")))
        .collect();
    let (base, snap1, snap2, other) = (
        by_name["base"],
        by_name["snap1"],
        by_name["snap2"],
        by_name["other"],
    );
    // snap2 is an unmodified snapshot of snap1: the same references, nothing of its own.
    ensure!(
        snap2.referenced == snap1.referenced,
        "{snap2:?} vs {snap1:?}"
    );
    ensure!(snap2.logical == snap1.logical, "{snap2:?} vs {snap1:?}");
    ensure!(snap2.exclusive.bytes() == 0, "{snap2:?}");
    // random2, deleted in the snapshot, is base's alone (one uncompressed 300 KiB extent);
    // the 64 KiB rewritten in pre's preallocation belongs to its prealloc extent, shared.
    ensure!(base.exclusive.bytes() == 300 * KIB, "{base:?}");
    // snap1's and snap2's own writes (`new` and the 64 KiB overwrite) are shared by both.
    ensure!(snap1.exclusive.bytes() == 0, "{snap1:?}");
    // other's `own`: exclusive; its reflinked text shares base's compressed extents.
    ensure!(other.exclusive.bytes() == 128 * KIB, "{other:?}");
    ensure!(
        other.compressed > btrfs_kit::ByteSize(0) && other.compressed == base.compressed,
        "compressed: other {other:?} base {base:?}"
    );
    ensure!(base.prealloc.bytes() == 448 * KIB, "prealloc: {base:?}");
    ensure!(
        base.inline.items == 1 && other.inline.items == 1,
        "inline: {base:?} {other:?}"
    );
    // The within-subvolume reflink: random1 and clone reference the same extent, once.
    ensure!(base.extent_refs > base.extents, "{base:?}");
    Ok(())
}

testkit::register!(root: matches_qgroups_exactly_with_snapshots_reflinks_compression);
fn matches_qgroups_exactly_with_snapshots_reflinks_compression() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let m = scratch.path();
    let subvols = build_scenario(m)?;
    let fs = Filesystem::open(m)?;
    let share = fs.space_share(&Scope::All)?;
    check_scenario_facts(&subvols, &share)?;
    compare_with_qgroups(m, &subvols, &share)?;
    Ok(())
}

/// Figures by subvolume name, for comparing two filesystems.
fn by_name(subvols: &[(&str, u64)], share: &SpaceShare) -> BTreeMap<String, String> {
    subvols
        .iter()
        .map(|&(n, id)| {
            let s = share.subvolume(id).expect("measured");
            (
                n.to_string(),
                format!(
                    "referenced {} exclusive {} logical {} compressed {} prealloc {} extents {} refs {} inline {:?}",
                    s.referenced.bytes(),
                    s.exclusive.bytes(),
                    s.logical.bytes(),
                    s.compressed.bytes(),
                    s.prealloc.bytes(),
                    s.extents,
                    s.extent_refs,
                    s.inline
                ),
            )
        })
        .collect()
}

testkit::register!(root: raid1_gives_the_same_figures_and_matches_qgroups);
fn raid1_gives_the_same_figures_and_matches_qgroups() -> Result<(), Failed> {
    let single = Scratch::btrfs(1024 * MIB)?;
    let single_subvols = build_scenario(single.path())?;
    let single_share = Filesystem::open(single.path())?.space_share(&Scope::All)?;

    let raid1 = MultiScratch::new(2, 1024 * MIB, Profile::Raid1, Profile::Raid1)?;
    let m = raid1.path();
    let data = Filesystem::open(m)?
        .space_info()?
        .into_iter()
        .find(|s| s.kind == btrfs_kit::BlockGroupKind::Data)
        .ok_or("no data space info")?;
    ensure!(
        data.profile == Profile::Raid1,
        "data profile {}",
        data.profile
    );
    let subvols = build_scenario(m)?;
    let share = Filesystem::open(m)?.space_share(&Scope::All)?;
    let (a, b) = (
        by_name(&single_subvols, &single_share),
        by_name(&subvols, &share),
    );
    ensure!(a == b, "single {a:#?}\nraid1 {b:#?}");
    check_scenario_facts(&subvols, &share)?;
    compare_with_qgroups(m, &subvols, &share)?;
    Ok(())
}

testkit::register!(root: scope_subset_counts_outside_sharing);
fn scope_subset_counts_outside_sharing() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let m = scratch.path();
    let subvols = build_scenario(m)?;
    let fs = Filesystem::open(m)?;
    let all = fs.space_share(&Scope::All)?;
    let id = |n: &str| subvols.iter().find(|s| s.0 == n).map(|s| s.1).unwrap();
    let some = fs.space_share(&Scope::Subvolumes(vec![id("base"), id("other")]))?;
    ensure!(
        some.subvolumes().len() == 2 && some.outside_scope() == all.subvolumes().len() - 2,
        "{} measured, {} outside",
        some.subvolumes().len(),
        some.outside_scope()
    );
    for n in ["base", "other"] {
        ensure!(
            some.subvolume(id(n)) == all.subvolume(id(n)),
            "{n}: subset {:?} all {:?}",
            some.subvolume(id(n)),
            all.subvolume(id(n))
        );
    }
    let g_some = some.group(&[id("base"), id("other")])?;
    let g_all = all.group(&[id("base"), id("other")])?;
    ensure!(g_some == g_all, "group: subset {g_some:?} all {g_all:?}");
    ensure!(
        some.group(&[id("snap1")]).is_err(),
        "a group of an unmeasured subvolume is refused"
    );
    ensure!(
        fs.space_share(&Scope::Subvolumes(vec![999_999])).is_err(),
        "a missing subvolume is refused"
    );
    // The image-like group: deleting base and both snapshots frees what only they hold.
    let chain = all.group(&[id("base"), id("snap1"), id("snap2")])?;
    let singles: u64 = ["base", "snap1", "snap2"]
        .iter()
        .map(|n| all.subvolume(id(n)).unwrap().exclusive.bytes())
        .sum();
    ensure!(
        chain.exclusive.bytes() > singles,
        "the chain frees more together ({chain:?}) than each alone ({singles})"
    );
    Ok(())
}

/// A Docker-like chain: layers that replace whole files, no compression, no reflink within a
/// subvolume; and a subvolume holding a reflink from the first layer.
fn build_chain(m: &Path) -> Result<Vec<(String, u64)>, Failed> {
    let l1 = m.join("l1");
    subvolume::create(&l1)?;
    write_file(&l1.join("a"), 700 * KIB, 11)?;
    write_file(&l1.join("b"), 2 * MIB, 12)?;
    write_file(&l1.join("c"), 64 * KIB, 13)?;
    std::fs::write(l1.join("s"), b"inline")?;
    let l2 = m.join("l2");
    subvolume::snapshot(&l1, &l2, &SnapshotOptions::writable())?;
    std::fs::remove_file(l2.join("b"))?;
    write_file(&l2.join("b"), 3 * MIB, 22)?;
    write_file(&l2.join("d"), 100 * KIB, 23)?;
    let l3 = m.join("l3");
    subvolume::snapshot(&l2, &l3, &SnapshotOptions::writable())?;
    std::fs::remove_file(l3.join("a"))?;
    write_file(&l3.join("e"), 5 * MIB, 33)?;
    let x = m.join("x");
    subvolume::create(&x)?;
    reflink(&l1.join("a"), &x.join("a-copy"))?;
    write_file(&x.join("f"), 40 * KIB, 44)?;
    Filesystem::open(m)?.sync()?;
    let mut out = Vec::new();
    for n in ["l1", "l2", "l3", "x"] {
        out.push((n.to_string(), subvolume::subvolume_id(m.join(n))?));
    }
    Ok(out)
}

/// `btrfs filesystem du -s --raw PATH`: (Total, Exclusive, Set shared).
fn progs_du(oracle: Progs, path: &Path) -> Result<(u64, u64, u64), Failed> {
    let text = oracle.run(&["filesystem", "du", "-s", "--raw"], path)?;
    let line = text.lines().nth(1).ok_or("no du line")?;
    let w: Vec<&str> = line.split_whitespace().collect();
    ensure!(w.len() >= 4, "du line {line:?}");
    Ok((w[0].parse()?, w[1].parse()?, w[2].parse()?))
}

testkit::register!(oracle: matches_btrfs_filesystem_du);
fn matches_btrfs_filesystem_du() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let m = scratch.path();
    std::fs::create_dir(m.join("layers"))?;
    let subvols = build_chain(&m.join("layers"))?;
    let fs = Filesystem::open(m)?;
    let share = fs.space_share(&Scope::All)?;
    for oracle in Progs::BOTH {
        compare_du(oracle, m, &subvols, &share)?;
    }
    Ok(())
}

/// One btrfs-progs version's `filesystem du` against our figures (6.2 and 7.3 agree).
fn compare_du(
    oracle: Progs,
    m: &Path,
    subvols: &[(String, u64)],
    share: &btrfs_kit::space_share::SpaceShare,
) -> Result<(), Failed> {
    let mut exclusive_sum = 0;
    for (name, id) in subvols {
        let s = share.subvolume(*id).ok_or("not measured")?;
        let theirs = progs_du(oracle, &m.join("layers").join(name))?;
        let ours = (s.logical.bytes(), s.exclusive.bytes(), s.shared().bytes());
        ensure!(
            ours == theirs,
            "{name}: ours (logical, exclusive, shared) {ours:?}, {} fi du (Total, Exclusive, Set shared) {theirs:?}",
            oracle.name()
        );
        ensure!(
            s.logical == s.referenced,
            "{name}: whole extents only: {s:?}"
        );
        exclusive_sum += s.exclusive.bytes();
    }
    let ids: Vec<u64> = subvols.iter().map(|(_, id)| *id).collect();
    let g = share.group(&ids)?;
    let (total, excl, set_shared) = progs_du(oracle, &m.join("layers"))?;
    ensure!(
        (total, excl, set_shared)
            == (
                g.logical.bytes(),
                exclusive_sum,
                g.referenced.bytes() - exclusive_sum
            ),
        "all layers: btrfs fi du ({total}, {excl}, {set_shared}); ours logical {}, Σ exclusive {exclusive_sum}, referenced {}",
        g.logical.bytes(),
        g.referenced.bytes()
    );
    Ok(())
}
