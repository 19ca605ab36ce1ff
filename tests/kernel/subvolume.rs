//! Subvolumes on a real kernel: create/snapshot/delete round trips, recursion, delete by id,
//! refusals, the read-only guard for received subvolumes, the default subvolume, and waiting for
//! the cleaner.

use crate::oracle_test;
use crate::util::{check, data_used, hash, progs, write_file, MIB};
use btrfs_kit::subvolume::{self, Received, Recursion, SnapshotOptions};
use btrfs_kit::{Error, Filesystem};
use libtest_mimic::{Failed, Trial};
use std::path::Path;
use testkit::fixture::Scratch;

pub fn trials() -> Vec<Trial> {
    vec![
        oracle_test(
            "subvolume::oracle::create_snapshot_delete_round_trip",
            round_trip,
        ),
        oracle_test(
            "subvolume::oracle::recursive_snapshot_and_delete_three_levels",
            recursive,
        ),
        oracle_test(
            "subvolume::oracle::delete_by_id_and_refusals",
            delete_refusals,
        ),
        oracle_test(
            "subvolume::oracle::read_only_guard_for_received_subvolumes",
            received_guard,
        ),
        oracle_test(
            "subvolume::oracle::default_subvolume_get_set",
            default_subvolume,
        ),
        oracle_test(
            "subvolume::oracle::waiting_for_the_cleaner_frees_space",
            cleaner_frees_space,
        ),
    ]
}

/// The ids `btrfs subvolume list` reports.
fn progs_ids(mnt: &Path) -> Result<Vec<u64>, Failed> {
    let text = progs(&["subvolume", "list", "-a"], mnt)?;
    text.lines()
        .map(|l| {
            crate::util::number_after(l, "ID ").ok_or_else(|| format!("bad line {l:?}").into())
        })
        .collect()
}

fn round_trip() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let a = m.join("a");
    subvolume::create(&a)?;
    let sum = write_file(&a.join("file"), 3 * MIB, 1)?;
    std::fs::create_dir(m.join("plain"))?;
    check(subvolume::is_subvolume(&a)?, "a is a subvolume")?;
    check(
        !subvolume::is_subvolume(m.join("plain"))?,
        "plain dir is not",
    )?;
    check(
        subvolume::is_subvolume(m)?,
        "the mount point (top level) is",
    )?;
    check(
        matches!(subvolume::create(&a), Err(Error::AlreadyExists { .. })),
        "creating over an existing entry is AlreadyExists",
    )?;

    let (rw, ro) = (m.join("rw"), m.join("ro"));
    subvolume::snapshot(&a, &rw, &SnapshotOptions::writable())?;
    subvolume::snapshot(&a, &ro, &SnapshotOptions::read_only())?;
    let (ia, irw, iro) = (
        subvolume::info(&a)?,
        subvolume::info(&rw)?,
        subvolume::info(&ro)?,
    );
    check(
        irw.parent_uuid == ia.uuid && iro.parent_uuid == ia.uuid && ia.uuid.is_some(),
        format!("snapshots' parent uuid is the source's: {ia:?} {irw:?} {iro:?}"),
    )?;
    check(
        !irw.read_only && iro.read_only && !ia.read_only,
        "read-only flags",
    )?;
    check(
        subvolume::subvolume_id(&rw)? == irw.id && irw.id != ia.id,
        "ids",
    )?;
    check(
        irw.path.as_deref() == Some(Path::new("rw")),
        format!("path from top level: {:?}", irw.path),
    )?;
    check(
        hash(&rw.join("file"))? == sum && hash(&ro.join("file"))? == sum,
        "snapshot content",
    )?;
    // A read-only snapshot refuses writes; a writable one takes them.
    let refused =
        std::fs::write(ro.join("new"), b"x").expect_err("write into a read-only snapshot");
    check(
        refused.raw_os_error() == Some(libc_erofs()),
        format!("read-only snapshot write: {refused}"),
    )?;
    std::fs::write(rw.join("new"), b"x")?;
    check(!a.join("new").exists(), "the source is unaffected")?;

    let listed = progs_ids(m)?;
    for id in [ia.id, irw.id, iro.id] {
        check(listed.contains(&id), format!("btrfs-progs lists {id}"))?;
    }
    subvolume::delete(&rw, Recursion::No)?;
    subvolume::delete(&ro, Recursion::No)?;
    check(!rw.exists() && !ro.exists(), "deleted snapshots are gone")?;
    let listed = progs_ids(m)?;
    check(
        listed == vec![ia.id],
        format!("after delete btrfs-progs lists {listed:?}"),
    )?;
    Ok(())
}

fn libc_erofs() -> i32 {
    btrfs_kit::Errno::EROFS as i32
}

fn recursive() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let (a, b, c) = (m.join("a"), m.join("a/x/b"), m.join("a/x/b/y/c"));
    subvolume::create(&a)?;
    std::fs::create_dir(a.join("x"))?;
    subvolume::create(&b)?;
    std::fs::create_dir(b.join("y"))?;
    subvolume::create(&c)?;
    let sums = [
        write_file(&a.join("fa"), MIB, 1)?,
        write_file(&b.join("fb"), MIB, 2)?,
        write_file(&c.join("fc"), MIB, 3)?,
    ];

    // A plain snapshot holds an empty directory where each nested subvolume was.
    let flat = m.join("flat");
    subvolume::snapshot(&a, &flat, &SnapshotOptions::writable())?;
    check(
        flat.join("x/b").is_dir() && !subvolume::is_subvolume(flat.join("x/b"))?,
        "placeholder in a plain snapshot",
    )?;

    let deep = m.join("deep");
    subvolume::snapshot(&a, &deep, &SnapshotOptions::read_only().recursive())?;
    for (rel, file, sum, source) in [
        ("", "fa", sums[0], &a),
        ("x/b", "fb", sums[1], &b),
        ("x/b/y/c", "fc", sums[2], &c),
    ] {
        let p = deep.join(rel);
        check(
            subvolume::is_subvolume(&p)?,
            format!("{} is a subvolume", p.display()),
        )?;
        check(
            subvolume::is_read_only(&p)?,
            format!("{} is read-only", p.display()),
        )?;
        check(
            hash(&p.join(file))? == sum,
            format!("{} content", p.display()),
        )?;
        check(
            subvolume::info(&p)?.parent_uuid == subvolume::info(source)?.uuid,
            format!("{} is a snapshot of {}", p.display(), source.display()),
        )?;
    }

    // Non-recursive delete of a subvolume with nested ones is refused, clearly.
    match subvolume::delete(&a, Recursion::No) {
        Err(e @ Error::SubvolumeNotEmpty { .. }) => {
            check(e.to_string().contains("recursive"), e.to_string())?
        }
        other => return Err(format!("delete of a non-empty subvolume: {other:?}").into()),
    }
    let before = progs_ids(m)?;
    check(
        before.len() == 7,
        format!("7 subvolumes before deleting: {before:?}"),
    )?;
    subvolume::delete(&deep, Recursion::Yes)?;
    subvolume::delete(&a, Recursion::Yes)?;
    let after = progs_ids(m)?;
    check(
        after == vec![subvolume::subvolume_id(&flat)?],
        format!("only the flat snapshot remains: {after:?}"),
    )?;
    check(
        !a.exists() && !deep.exists(),
        "recursively deleted trees are gone",
    )?;
    Ok(())
}

fn delete_refusals() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let fs = Filesystem::open(m)?;
    subvolume::create(m.join("a"))?;
    let id = subvolume::subvolume_id(m.join("a"))?;
    fs.delete_subvolume_by_id(id)?;
    check(!m.join("a").exists(), "deleted by id")?;
    check(
        !progs_ids(m)?.contains(&id),
        "btrfs-progs no longer lists it",
    )?;
    match fs.delete_subvolume_by_id(id) {
        Err(Error::SubvolumeNotFound { id: i, .. }) if i == id => {}
        other => return Err(format!("deleting a deleted id: {other:?}").into()),
    }
    match subvolume::delete(m, Recursion::Yes) {
        Err(e @ Error::TopLevelSubvolume { .. }) => {
            check(e.to_string().contains("top-level"), e.to_string())?
        }
        other => return Err(format!("deleting the top level by path: {other:?}").into()),
    }
    check(
        matches!(
            fs.delete_subvolume_by_id(5),
            Err(Error::TopLevelSubvolume { .. })
        ),
        "deleting the top level by id",
    )?;
    std::fs::create_dir(m.join("plain"))?;
    match subvolume::delete(m.join("plain"), Recursion::No) {
        Err(e @ Error::NotASubvolume { .. }) => {
            check(e.to_string().contains("plain"), e.to_string())?
        }
        other => return Err(format!("deleting a plain directory: {other:?}").into()),
    }
    check(m.join("plain").is_dir(), "the plain directory is untouched")?;
    Ok(())
}

fn received_guard() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let (a, other) = (m.join("a"), m.join("other"));
    subvolume::create(&a)?;
    subvolume::create(&other)?;
    // Any real uuid will do as the "sent" one: take another subvolume's.
    let sent = subvolume::info(&other)?.uuid.ok_or("other has no uuid")?;
    subvolume::set_received(
        &a,
        Some(Received {
            uuid: sent,
            stransid: 42,
        }),
    )?;
    subvolume::set_read_only(&a, true)?;
    let info = subvolume::info(&a)?;
    check(
        info.received_uuid == Some(sent) && info.stransid == Some(42) && info.read_only,
        format!("received subvolume: {info:?}"),
    )?;
    let shown = progs(&["subvolume", "show"], &a)?;
    check(
        shown.contains(&sent.to_string()),
        format!("btrfs subvolume show names the received uuid:\n{shown}"),
    )?;
    match subvolume::set_read_only(&a, false) {
        Err(e @ Error::ReceivedSubvolume { .. }) => {
            check(e.to_string().contains(&sent.to_string()), e.to_string())?
        }
        other => return Err(format!("ro->rw on a received subvolume: {other:?}").into()),
    }
    check(
        subvolume::is_read_only(&a)?,
        "still read-only after the refusal",
    )?;
    // The kernel only changes the received uuid of a writable subvolume: hence
    // force_read_write flips the flag first.
    check(
        matches!(
            subvolume::set_received(&a, None),
            Err(Error::ReadOnly { .. })
        ),
        "clearing the received uuid of a read-only subvolume is refused",
    )?;
    subvolume::force_read_write(&a)?;
    let info = subvolume::info(&a)?;
    check(
        !info.read_only && info.received_uuid.is_none() && !subvolume::is_read_only(&a)?,
        format!("forced: {info:?}"),
    )?;
    // Without a received uuid, the flag flips both ways freely.
    subvolume::set_read_only(&other, true)?;
    check(subvolume::is_read_only(&other)?, "other ro")?;
    subvolume::set_read_only(&other, false)?;
    check(!subvolume::is_read_only(&other)?, "other rw again")?;
    Ok(())
}

fn default_subvolume() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let fs = Filesystem::open(m)?;
    check(
        fs.default_subvolume()? == 5,
        "the default is the top level at first",
    )?;
    subvolume::create(m.join("a"))?;
    let id = subvolume::subvolume_id(m.join("a"))?;
    fs.set_default_subvolume(id)?;
    check(fs.default_subvolume()? == id, "default set")?;
    let text = progs(&["subvolume", "get-default"], m)?;
    check(
        text.starts_with(&format!("ID {id} ")),
        format!("btrfs subvolume get-default: {text}"),
    )?;
    match subvolume::delete(m.join("a"), Recursion::No) {
        Err(e @ Error::DefaultSubvolume { .. }) => {
            check(e.to_string().contains("default"), e.to_string())?
        }
        other => return Err(format!("deleting the default subvolume: {other:?}").into()),
    }
    fs.set_default_subvolume(5)?;
    subvolume::delete(m.join("a"), Recursion::No)?;
    Ok(())
}

fn cleaner_frees_space() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let m = scratch.path();
    let fs = Filesystem::open(m)?;
    subvolume::create(m.join("a"))?;
    write_file(&m.join("a/data"), 200 * MIB, 7)?;
    fs.sync()?;
    let before = data_used(&fs)?;
    check(before >= 200 * MIB, format!("data used before: {before}"))?;
    let id = subvolume::subvolume_id(m.join("a"))?;
    subvolume::delete(m.join("a"), Recursion::No)?;
    // Deleted but not cleaned: listed, unless the cleaner was already done with it.
    let pending = fs.deleted_subvolumes()?;
    check(
        pending.iter().all(|p| *p == id),
        format!("deleted subvolumes: {pending:?}"),
    )?;
    fs.wait_for_subvolumes_cleaned(&[id])?;
    check(fs.deleted_subvolumes()?.is_empty(), "nothing left to clean")?;
    check(
        matches!(
            fs.subvolume_info_by_id(id),
            Err(Error::SubvolumeNotFound { .. })
        ),
        "the root item is gone",
    )?;
    let after = data_used(&fs)?;
    check(
        after + 190 * MIB <= before,
        format!("data used {before} -> {after}: the 200 MiB are free"),
    )?;
    let dead = progs(&["subvolume", "list", "-d"], m)?;
    check(
        dead.trim().is_empty(),
        format!("btrfs-progs sees no deleted subvolume: {dead}"),
    )?;
    Ok(())
}
