//! Subvolumes on a real kernel: create/snapshot/delete round trips, recursion, delete by id,
//! refusals, the read-only guard for received subvolumes, the default subvolume, and waiting for
//! the cleaner.

use crate::data::{data_used, hash, write_file, MIB};
use crate::progs::Progs;
use btrfs_kit::subvolume::{self, Received, Recursion, SnapshotOptions};
use btrfs_kit::{ErrorKind, Filesystem};
use std::path::Path;
use testkit::ensure;
use testkit::fixture::Scratch;
use testkit::harness::Failed;

/// The ids `btrfs subvolume list` reports: the same from both oracles.
fn progs_ids(mnt: &Path) -> Result<Vec<u64>, Failed> {
    let [debian, sid] = Progs::BOTH.map(|oracle| -> Result<Vec<u64>, Failed> {
        let text = oracle.run(&["subvolume", "list", "-a"], mnt)?;
        text.lines()
            .map(|l| {
                crate::progs::number_after(l, "ID ").ok_or_else(|| format!("bad line {l:?}").into())
            })
            .collect()
    });
    let (debian, sid) = (debian?, sid?);
    ensure!(debian == sid, "subvolume list: 6.2 {debian:?}, 7.3 {sid:?}");
    Ok(debian)
}

testkit::register!(oracle: create_snapshot_delete_round_trip);
fn create_snapshot_delete_round_trip() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let a = m.join("a");
    subvolume::create(&a)?;
    let sum = write_file(&a.join("file"), 3 * MIB, 1)?;
    std::fs::create_dir(m.join("plain"))?;
    ensure!(subvolume::is_subvolume(&a)?, "a is a subvolume");
    ensure!(
        !subvolume::is_subvolume(m.join("plain"))?,
        "plain dir is not"
    );
    ensure!(
        subvolume::is_subvolume(m)?,
        "the mount point (top level) is"
    );
    ensure!(
        matches!(subvolume::create(&a), Err(e) if matches!(e.kind(), ErrorKind::AlreadyExists)),
        "creating over an existing entry is AlreadyExists",
    );

    let (rw, ro) = (m.join("rw"), m.join("ro"));
    subvolume::snapshot(&a, &rw, &SnapshotOptions::writable())?;
    subvolume::snapshot(&a, &ro, &SnapshotOptions::read_only())?;
    let (ia, irw, iro) = (
        subvolume::info(&a)?,
        subvolume::info(&rw)?,
        subvolume::info(&ro)?,
    );
    ensure!(
        irw.parent_uuid == ia.uuid && iro.parent_uuid == ia.uuid && ia.uuid.is_some(),
        "snapshots' parent uuid is the source's: {ia:?} {irw:?} {iro:?}",
    );
    ensure!(
        !irw.read_only && iro.read_only && !ia.read_only,
        "read-only flags"
    );
    ensure!(
        subvolume::subvolume_id(&rw)? == irw.id && irw.id != ia.id,
        "ids"
    );
    ensure!(
        irw.path.as_deref() == Some(Path::new("rw")),
        "path from top level: {:?}",
        irw.path
    );
    ensure!(
        hash(&rw.join("file"))? == sum && hash(&ro.join("file"))? == sum,
        "snapshot content"
    );
    // A read-only snapshot refuses writes; a writable one takes them.
    let refused =
        std::fs::write(ro.join("new"), b"x").expect_err("write into a read-only snapshot");
    ensure!(
        refused.raw_os_error() == Some(libc_erofs()),
        "read-only snapshot write: {refused}"
    );
    std::fs::write(rw.join("new"), b"x")?;
    ensure!(!a.join("new").exists(), "the source is unaffected");

    let listed = progs_ids(m)?;
    for id in [ia.id, irw.id, iro.id] {
        ensure!(listed.contains(&id), "btrfs-progs lists {id}");
    }
    subvolume::delete(&rw, Recursion::No)?;
    subvolume::delete(&ro, Recursion::No)?;
    ensure!(!rw.exists() && !ro.exists(), "deleted snapshots are gone");
    let listed = progs_ids(m)?;
    ensure!(
        listed == vec![ia.id],
        "after delete btrfs-progs lists {listed:?}"
    );
    Ok(())
}

fn libc_erofs() -> i32 {
    btrfs_kit::Errno::ROFS.raw_os_error()
}

testkit::register!(oracle: recursive_snapshot_and_delete_three_levels);
fn recursive_snapshot_and_delete_three_levels() -> Result<(), Failed> {
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
    ensure!(
        flat.join("x/b").is_dir() && !subvolume::is_subvolume(flat.join("x/b"))?,
        "placeholder in a plain snapshot",
    );

    let deep = m.join("deep");
    subvolume::snapshot(&a, &deep, &SnapshotOptions::read_only().recursive())?;
    for (rel, file, sum, source) in [
        ("", "fa", sums[0], &a),
        ("x/b", "fb", sums[1], &b),
        ("x/b/y/c", "fc", sums[2], &c),
    ] {
        let p = deep.join(rel);
        ensure!(
            subvolume::is_subvolume(&p)?,
            "{} is a subvolume",
            p.display()
        );
        ensure!(subvolume::is_read_only(&p)?, "{} is read-only", p.display());
        ensure!(hash(&p.join(file))? == sum, "{} content", p.display());
        ensure!(
            subvolume::info(&p)?.parent_uuid == subvolume::info(source)?.uuid,
            "{} is a snapshot of {}",
            p.display(),
            source.display(),
        );
    }

    // Non-recursive delete of a subvolume with nested ones is refused, clearly.
    match subvolume::delete(&a, Recursion::No) {
        Err(e) if matches!(e.kind(), ErrorKind::SubvolumeNotEmpty) => {
            ensure!(e.to_string().contains("recursive"), "{e}")
        }
        other => return Err(format!("delete of a non-empty subvolume: {other:?}").into()),
    }
    let before = progs_ids(m)?;
    ensure!(
        before.len() == 7,
        "7 subvolumes before deleting: {before:?}"
    );
    subvolume::delete(&deep, Recursion::Yes)?;
    subvolume::delete(&a, Recursion::Yes)?;
    let after = progs_ids(m)?;
    ensure!(
        after == vec![subvolume::subvolume_id(&flat)?],
        "only the flat snapshot remains: {after:?}",
    );
    ensure!(
        !a.exists() && !deep.exists(),
        "recursively deleted trees are gone"
    );
    Ok(())
}

testkit::register!(oracle: delete_by_id_and_refusals);
fn delete_by_id_and_refusals() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let fs = Filesystem::open(m)?;
    subvolume::create(m.join("a"))?;
    let id = subvolume::subvolume_id(m.join("a"))?;
    fs.delete_subvolume_by_id(id)?;
    ensure!(!m.join("a").exists(), "deleted by id");
    ensure!(
        !progs_ids(m)?.contains(&id),
        "btrfs-progs no longer lists it"
    );
    match fs
        .delete_subvolume_by_id(id)
        .map_err(btrfs_kit::Error::into_kind)
    {
        Err(ErrorKind::SubvolumeNotFound { id: i, .. }) if i == id => {}
        other => return Err(format!("deleting a deleted id: {other:?}").into()),
    }
    match subvolume::delete(m, Recursion::Yes) {
        Err(e) if matches!(e.kind(), ErrorKind::TopLevelSubvolume) => {
            ensure!(e.to_string().contains("top-level"), "{e}")
        }
        other => return Err(format!("deleting the top level by path: {other:?}").into()),
    }
    ensure!(
        matches!(
            fs.delete_subvolume_by_id(5),
            Err(e) if matches!(e.kind(), ErrorKind::TopLevelSubvolume)
        ),
        "deleting the top level by id",
    );
    std::fs::create_dir(m.join("plain"))?;
    match subvolume::delete(m.join("plain"), Recursion::No) {
        Err(e) if matches!(e.kind(), ErrorKind::NotASubvolume) => {
            ensure!(e.to_string().contains("plain"), "{e}")
        }
        other => return Err(format!("deleting a plain directory: {other:?}").into()),
    }
    ensure!(m.join("plain").is_dir(), "the plain directory is untouched");
    Ok(())
}

testkit::register!(oracle: read_only_guard_for_received_subvolumes);
fn read_only_guard_for_received_subvolumes() -> Result<(), Failed> {
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
    ensure!(
        info.received_uuid == Some(sent) && info.stransid == Some(42) && info.read_only,
        "received subvolume: {info:?}",
    );
    for oracle in Progs::BOTH {
        let shown = oracle.run(&["subvolume", "show"], &a)?;
        ensure!(
            shown.contains(&sent.to_string())
                && shown
                    .lines()
                    .any(|l| l.split_whitespace().eq(["Send", "transid:", "42"])),
            "{}: btrfs subvolume show names the received uuid and send transid:\n{shown}",
            oracle.name(),
        );
    }
    match subvolume::set_read_only(&a, false) {
        Err(e) if matches!(e.kind(), ErrorKind::ReceivedSubvolume { .. }) => {
            ensure!(e.to_string().contains(&sent.to_string()), "{e}")
        }
        other => return Err(format!("ro->rw on a received subvolume: {other:?}").into()),
    }
    ensure!(
        subvolume::is_read_only(&a)?,
        "still read-only after the refusal"
    );
    // The kernel only changes the received uuid of a writable subvolume: hence
    // force_read_write flips the flag first.
    ensure!(
        matches!(
            subvolume::set_received(&a, None),
            Err(e) if matches!(e.kind(), ErrorKind::ReadOnly)
        ),
        "clearing the received uuid of a read-only subvolume is refused",
    );
    subvolume::force_read_write(&a)?;
    let info = subvolume::info(&a)?;
    ensure!(
        !info.read_only && info.received_uuid.is_none() && !subvolume::is_read_only(&a)?,
        "forced: {info:?}",
    );
    // Without a received uuid, the flag flips both ways freely.
    subvolume::set_read_only(&other, true)?;
    ensure!(subvolume::is_read_only(&other)?, "other ro");
    subvolume::set_read_only(&other, false)?;
    ensure!(!subvolume::is_read_only(&other)?, "other rw again");
    Ok(())
}

testkit::register!(oracle: default_subvolume_get_set);
fn default_subvolume_get_set() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let fs = Filesystem::open(m)?;
    ensure!(
        fs.default_subvolume()? == 5,
        "the default is the top level at first"
    );
    subvolume::create(m.join("a"))?;
    let id = subvolume::subvolume_id(m.join("a"))?;
    fs.set_default_subvolume(id)?;
    ensure!(fs.default_subvolume()? == id, "default set");
    for oracle in Progs::BOTH {
        let text = oracle.run(&["subvolume", "get-default"], m)?;
        ensure!(
            text.starts_with(&format!("ID {id} ")),
            "{}: btrfs subvolume get-default: {text}",
            oracle.name(),
        );
    }
    // Refused before the kernel is asked (it would say EPERM).
    match subvolume::delete(m.join("a"), Recursion::No) {
        Err(e) if matches!(e.kind(), ErrorKind::DeleteRefused { .. }) => {
            ensure!(e.to_string().contains("is the default subvolume"), "{e}")
        }
        other => return Err(format!("deleting the default subvolume: {other:?}").into()),
    }
    match fs.delete_subvolume_by_id(id) {
        Err(e) if matches!(e.kind(), ErrorKind::DefaultSubvolume { .. }) => {
            ensure!(e.to_string().contains("default"), "{e}")
        }
        other => return Err(format!("deleting the default subvolume by id: {other:?}").into()),
    }
    fs.set_default_subvolume(5)?;
    subvolume::delete(m.join("a"), Recursion::No)?;
    Ok(())
}

testkit::register!(oracle: waiting_for_the_cleaner_frees_space);
fn waiting_for_the_cleaner_frees_space() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let m = scratch.path();
    let fs = Filesystem::open(m)?;
    subvolume::create(m.join("a"))?;
    write_file(&m.join("a/data"), 200 * MIB, 7)?;
    fs.sync()?;
    let before = data_used(&fs)?;
    ensure!(before >= 200 * MIB, "data used before: {before}");
    let id = subvolume::subvolume_id(m.join("a"))?;
    subvolume::delete(m.join("a"), Recursion::No)?;
    // Deleted but not cleaned: listed, unless the cleaner was already done with it.
    let pending = fs.deleted_subvolumes()?;
    ensure!(
        pending.iter().all(|p| *p == id),
        "deleted subvolumes: {pending:?}"
    );
    fs.wait_for_subvolumes_cleaned(&[id])?;
    ensure!(fs.deleted_subvolumes()?.is_empty(), "nothing left to clean");
    ensure!(
        matches!(
            fs.subvolume_info_by_id(id),
            Err(e) if matches!(e.kind(), ErrorKind::SubvolumeNotFound { .. })
        ),
        "the root item is gone",
    );
    let after = data_used(&fs)?;
    ensure!(
        after + 190 * MIB <= before,
        "data used {before} -> {after}: the 200 MiB are free"
    );
    for oracle in Progs::BOTH {
        let dead = oracle.run(&["subvolume", "list", "-d"], m)?;
        ensure!(
            dead.trim().is_empty(),
            "{} sees no deleted subvolume: {dead}",
            oracle.name(),
        );
    }
    Ok(())
}
