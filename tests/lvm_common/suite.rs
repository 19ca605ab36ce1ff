//! The loop-device suite, run unchanged against every backend. Metadata-only operations
//! (`LvCreate::inactive`), so no device-mapper is needed.

use super::fixture::Sandbox;
use lvm_kit::{Bytes, Error, LvCreate, LvmBackend, NewSize, ObjectKind, MIB};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use testkit::harness::{self, ctx, Failed, Trial};
use testkit::{ensure, named};

/// Makes a backend confined to the given devices; the second value keeps whatever the backend
/// needs alive (e.g. a private lvmdbusd) and is dropped after it.
pub type Factory =
    Arc<dyn Fn(&[PathBuf]) -> Result<(Box<dyn LvmBackend>, Box<dyn Send>), Failed> + Send + Sync>;

/// One test of the suite.
type Case = fn(&Sandbox, &dyn LvmBackend, &Factory) -> Result<(), Failed>;

const DISK: u64 = 256 * MIB;

/// The suite's trials for one backend, named `PREFIX::case`.
pub fn trials(prefix: &str, factory: Factory) -> Vec<Trial> {
    // (name and function, disks)
    let cases: [((&str, Case), usize); 11] = [
        (named!(lifecycle), 2),
        (named!(sizes_round_up_to_extents), 1),
        (named!(same_size_resize_is_a_no_op), 1),
        (named!(invalid_names_are_rejected), 1),
        (named!(missing_vg_is_not_found), 1),
        (named!(insufficient_space), 1),
        (named!(already_exists), 1),
        (named!(concurrent_lvcreate), 1),
        (named!(confinement_hides_other_devices), 2),
        (named!(missing_pv), 2),
        (named!(extend_beyond_lvm2s_extent_count), 1),
    ];
    cases
        .into_iter()
        .map(|((name, case), disks)| {
            let factory = factory.clone();
            harness::root(format!("{prefix}::{name}"), move || {
                let sandbox = Sandbox::new(disks, DISK)?;
                let (backend, guard) = factory(&sandbox.paths())?;
                let result = case(&sandbox, backend.as_ref(), &factory);
                drop(backend);
                drop(guard);
                result
            })
        })
        .collect()
}

/// pvcreate, vgcreate, vgextend, lvcreate, report, extend, remove, vgremove, pvremove.
fn lifecycle(sb: &Sandbox, lvm: &dyn LvmBackend, _: &Factory) -> Result<(), Failed> {
    let (a, b) = (sb.disk(0), sb.disk(1));
    let vg = sb.vg_name("life");
    let pv = ctx("pv_create", lvm.pv_create(a))?;
    ensure!(pv.vg_name.is_none(), "new PV in a VG: {pv:?}");
    ensure!(pv.dev_size == Bytes(DISK), "dev_size {}", pv.dev_size);
    ctx("pv_create b", lvm.pv_create(b))?;
    let created = ctx("vg_create", lvm.vg_create(&vg, &[a], Some(Bytes::mib(4))))?;
    ensure!(
        created.extent_size == Bytes::mib(4),
        "extent {}",
        created.extent_size
    );
    ensure!(created.pv_count == 1, "pv_count {}", created.pv_count);
    ensure!(
        created.size.get() == sb.lvm_bytes("vgs", "vg_size", &vg)?,
        "vg size {} differs from vgs",
        created.size
    );
    let extended = ctx("vg_extend", lvm.vg_extend(&vg, &[b]))?;
    ensure!(
        extended.pv_count == 2,
        "pv_count after extend {}",
        extended.pv_count
    );
    ensure!(
        extended.size > created.size,
        "VG did not grow: {:?}",
        extended.size
    );

    let lv = ctx(
        "lv_create",
        lvm.lv_create(&vg, "docker", LvCreate::size(Bytes::mib(40)).inactive()),
    )?;
    ensure!(lv.size == Bytes::mib(40), "lv size {}", lv.size);
    ensure!(!lv.active, "metadata-only LV reported active");
    ensure!(
        lv.path == Path::new(&format!("/dev/{vg}/docker")),
        "path {:?}",
        lv.path
    );
    ensure!(
        lv.segments.len() == 1 && lv.segments[0].segtype == "linear",
        "segments {:?}",
        lv.segments
    );

    let report = ctx("report", lvm.report())?;
    let rvg = report.vg(&vg).ok_or("VG missing from report")?;
    ensure!(
        rvg.free.get() == sb.lvm_bytes("vgs", "vg_free", &vg)?,
        "vg_free {} differs from vgs",
        rvg.free
    );
    ensure!(
        ctx("vg_free", lvm.vg_free(&vg))? == rvg.free,
        "vg_free query differs from report"
    );
    ensure!(
        report.lv(&vg, "docker").map(|l| l.size.get())
            == Some(sb.lvm_bytes("lvs", "lv_size", &format!("{vg}/docker"))?),
        "lv size differs from lvs"
    );
    ensure!(
        report
            .pvs
            .iter()
            .filter(|p| p.vg_name.as_deref() == Some(vg.as_str()))
            .count()
            == 2,
        "PVs of VG: {:?}",
        report.pvs
    );
    ensure!(
        !ctx("lv_is_active", lvm.lv_is_active(&vg, "docker"))?,
        "inactive LV reported active"
    );
    ensure!(
        ctx("lv_path", lvm.lv_path(&vg, "docker"))? == lv.path,
        "lv_path differs"
    );

    let grown = ctx(
        "lv_extend",
        lvm.lv_extend(&vg, "docker", NewSize::Add(Bytes::mib(8))),
    )?;
    ensure!(grown.size == Bytes::mib(48), "extended size {}", grown.size);
    ensure!(
        grown.size.get() == sb.lvm_bytes("lvs", "lv_size", &format!("{vg}/docker"))?,
        "differs from lvs"
    );
    let shrunk = ctx(
        "lv_resize",
        lvm.lv_resize(&vg, "docker", NewSize::To(Bytes::mib(20))),
    )?;
    ensure!(
        shrunk.size == Bytes::mib(20),
        "resized size {}",
        shrunk.size
    );

    ctx("lv_remove", lvm.lv_remove(&vg, "docker"))?;
    ensure!(
        matches!(
            lvm.lv(&vg, "docker"),
            Err(Error::NotFound {
                object: ObjectKind::LogicalVolume,
                ..
            })
        ),
        "LV still there after lv_remove"
    );
    ctx("vg_remove", lvm.vg_remove(&vg))?;
    ensure!(
        matches!(lvm.vg(&vg), Err(Error::NotFound { .. })),
        "VG still there"
    );
    ctx("pv_remove a", lvm.pv_remove(a))?;
    ctx("pv_remove b", lvm.pv_remove(b))?;
    let left = ctx("report", lvm.report())?;
    ensure!(
        left.pvs.is_empty() && left.vgs.is_empty(),
        "leftovers: {left:?}"
    );
    Ok(())
}

fn new_vg(sb: &Sandbox, lvm: &dyn LvmBackend, tag: &str) -> Result<String, Failed> {
    let vg = sb.vg_name(tag);
    ctx("pv_create", lvm.pv_create(sb.disk(0)))?;
    ctx(
        "vg_create",
        lvm.vg_create(&vg, &[sb.disk(0)], Some(Bytes::mib(4))),
    )?;
    Ok(vg)
}

/// Sizes come back rounded up to whole extents, by bytes, extents and percent of free space.
fn sizes_round_up_to_extents(
    sb: &Sandbox,
    lvm: &dyn LvmBackend,
    _: &Factory,
) -> Result<(), Failed> {
    let vg = new_vg(sb, lvm, "round")?;
    let a = ctx(
        "lv a",
        lvm.lv_create(&vg, "a", LvCreate::size(Bytes::mib(10)).inactive()),
    )?;
    ensure!(
        a.size == Bytes::mib(12),
        "10 MiB with 4 MiB extents gave {}",
        a.size
    );
    let b = ctx(
        "lv b",
        lvm.lv_create(&vg, "b", LvCreate::size(Bytes(1)).inactive()),
    )?;
    ensure!(b.size == Bytes::mib(4), "1 byte gave {}", b.size);
    let c = ctx(
        "lv c",
        lvm.lv_create(&vg, "c", LvCreate::extents(3).inactive()),
    )?;
    ensure!(c.size == Bytes::mib(12), "3 extents gave {}", c.size);
    let vgnow = ctx("vg", lvm.vg(&vg))?;
    let d = ctx(
        "lv d",
        lvm.lv_create(&vg, "d", LvCreate::percent_free(50).inactive()),
    )?;
    let expect = vgnow.free_extent_count / 2 * vgnow.extent_size.get();
    ensure!(
        d.size.get() == expect,
        "50%FREE of {} extents gave {} (expected {expect})",
        vgnow.free_extent_count,
        d.size
    );
    for lv in [&a, &b, &c, &d] {
        ensure!(
            lv.size.get() == sb.lvm_bytes("lvs", "lv_size", &lv.full_name())?,
            "{} differs from lvs",
            lv.full_name()
        );
    }
    let e = ctx(
        "extend",
        lvm.lv_extend(&vg, "a", NewSize::To(Bytes::mib(13))),
    )?;
    ensure!(e.size == Bytes::mib(16), "extend to 13 MiB gave {}", e.size);
    Ok(())
}

/// Resizing to the current size (or to a size that rounds to it) succeeds without change.
fn same_size_resize_is_a_no_op(
    sb: &Sandbox,
    lvm: &dyn LvmBackend,
    _: &Factory,
) -> Result<(), Failed> {
    let vg = new_vg(sb, lvm, "same")?;
    ctx(
        "lv",
        lvm.lv_create(&vg, "lv", LvCreate::size(Bytes::mib(12)).inactive()),
    )?;
    let seqno = ctx("vg", lvm.vg(&vg))?.seqno;
    for size in [
        NewSize::To(Bytes::mib(12)),
        NewSize::To(Bytes::mib(9)),
        NewSize::Add(Bytes(0)),
    ] {
        let lv = ctx("lv_extend same", lvm.lv_extend(&vg, "lv", size))?;
        ensure!(
            lv.size == Bytes::mib(12),
            "{size:?} changed size to {}",
            lv.size
        );
        let lv = ctx("lv_resize same", lvm.lv_resize(&vg, "lv", size))?;
        ensure!(
            lv.size == Bytes::mib(12),
            "{size:?} changed size to {}",
            lv.size
        );
    }
    ensure!(
        ctx("vg", lvm.vg(&vg))?.seqno == seqno,
        "metadata changed by a no-op resize"
    );
    let err = lvm.lv_extend(&vg, "lv", NewSize::To(Bytes::mib(4)));
    ensure!(
        matches!(err, Err(Error::InvalidRequest { .. })),
        "extend to smaller: {err:?}"
    );
    Ok(())
}

/// Bad names fail before any process starts, with InvalidName.
fn invalid_names_are_rejected(
    sb: &Sandbox,
    lvm: &dyn LvmBackend,
    _: &Factory,
) -> Result<(), Failed> {
    let vg = new_vg(sb, lvm, "names")?;
    for bad in ["-rf", "a b", "x;y", "snapshot0", "lv_tmeta", ".."] {
        let r = lvm.lv_create(&vg, bad, LvCreate::size(Bytes::mib(4)).inactive());
        ensure!(
            matches!(r, Err(Error::InvalidName { ref name, .. }) if name == bad),
            "lv {bad:?}: {r:?}"
        );
    }
    for bad in ["-rf", "a b", "", "."] {
        let r = lvm.vg_create(bad, &[sb.disk(0)], None);
        ensure!(
            matches!(r, Err(Error::InvalidName { .. })),
            "vg {bad:?}: {r:?}"
        );
        let r = lvm.vg_remove(bad);
        ensure!(
            matches!(r, Err(Error::InvalidName { .. })),
            "vgremove {bad:?}: {r:?}"
        );
    }
    let report = ctx("report", lvm.report())?;
    ensure!(
        report.lvs.is_empty() && report.vgs.len() == 1,
        "something was created: {report:?}"
    );
    Ok(())
}

fn missing_vg_is_not_found(sb: &Sandbox, lvm: &dyn LvmBackend, _: &Factory) -> Result<(), Failed> {
    let vg = sb.vg_name("missing");
    let vg_missing = |r: &Result<_, Error>| matches!(r, Err(Error::NotFound { object: ObjectKind::VolumeGroup, name, .. }) if *name == vg);
    let r = lvm.vg(&vg);
    ensure!(
        vg_missing(&r.as_ref().map(|_| ()).map_err(clone_err)),
        "vg(): {r:?}"
    );
    let r = lvm.lv_create(&vg, "x", LvCreate::size(Bytes::mib(4)).inactive());
    ensure!(
        vg_missing(&r.as_ref().map(|_| ()).map_err(clone_err)),
        "lv_create: {r:?}"
    );
    let r = lvm.vg_remove(&vg);
    ensure!(
        vg_missing(&r.as_ref().map(|_| ()).map_err(clone_err)),
        "vg_remove: {r:?}"
    );
    let r = lvm.vg_free(&vg);
    ensure!(
        vg_missing(&r.as_ref().map(|_| ()).map_err(clone_err)),
        "vg_free: {r:?}"
    );
    let real = new_vg(sb, lvm, "real")?;
    let r = lvm.lv_remove(&real, "nosuchlv");
    ensure!(
        matches!(
            r,
            Err(Error::NotFound {
                object: ObjectKind::LogicalVolume,
                ..
            })
        ),
        "lv_remove: {r:?}"
    );
    Ok(())
}

/// Re-creates the variant and names of an error for matching (errors hold io::Error, so no Clone).
fn clone_err(e: &Error) -> Error {
    match e {
        Error::NotFound {
            operation,
            object,
            name,
        } => Error::NotFound {
            operation: operation.clone(),
            object: *object,
            name: name.clone(),
        },
        other => Error::InvalidRequest {
            operation: String::new(),
            reason: other.to_string(),
        },
    }
}

fn insufficient_space(sb: &Sandbox, lvm: &dyn LvmBackend, _: &Factory) -> Result<(), Failed> {
    let vg = new_vg(sb, lvm, "space")?;
    let r = lvm.lv_create(&vg, "big", LvCreate::size(Bytes::gib(1)).inactive());
    ensure!(
        matches!(r, Err(Error::InsufficientSpace { .. })),
        "lvcreate 1 GiB in a 256 MiB VG: {r:?}"
    );
    ctx(
        "lv",
        lvm.lv_create(&vg, "lv", LvCreate::size(Bytes::mib(100)).inactive()),
    )?;
    let r = lvm.lv_extend(&vg, "lv", NewSize::Add(Bytes::mib(200)));
    ensure!(
        matches!(r, Err(Error::InsufficientSpace { .. })),
        "lvextend beyond free: {r:?}"
    );
    ensure!(
        ctx("lv", lvm.lv(&vg, "lv"))?.size == Bytes::mib(100),
        "failed extend changed the LV"
    );
    Ok(())
}

fn already_exists(sb: &Sandbox, lvm: &dyn LvmBackend, _: &Factory) -> Result<(), Failed> {
    let vg = new_vg(sb, lvm, "exists")?;
    ctx(
        "lv",
        lvm.lv_create(&vg, "lv", LvCreate::size(Bytes::mib(4)).inactive()),
    )?;
    let r = lvm.lv_create(&vg, "lv", LvCreate::size(Bytes::mib(4)).inactive());
    ensure!(
        matches!(
            r,
            Err(Error::AlreadyExists {
                object: ObjectKind::LogicalVolume,
                ..
            })
        ),
        "second lvcreate: {r:?}"
    );
    let r = lvm.vg_create(&vg, &[sb.disk(0)], None);
    ensure!(
        matches!(
            r,
            Err(Error::AlreadyExists {
                object: ObjectKind::VolumeGroup,
                ..
            })
        ),
        "second vgcreate: {r:?}"
    );
    Ok(())
}

/// Two lvcreate calls at once in one VG: lvm2's VG lock serialises them, both succeed.
fn concurrent_lvcreate(sb: &Sandbox, lvm: &dyn LvmBackend, _: &Factory) -> Result<(), Failed> {
    let vg = new_vg(sb, lvm, "conc")?;
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = ["one", "two"]
            .map(|name| {
                let vg = &vg;
                s.spawn(move || lvm.lv_create(vg, name, LvCreate::size(Bytes::mib(8)).inactive()))
            })
            .into_iter()
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    for r in results {
        let lv = r.map_err(|_| "thread panicked")?;
        let lv = ctx("concurrent lv_create", lv)?;
        ensure!(lv.size == Bytes::mib(8), "size {}", lv.size);
    }
    let report = ctx("report", lvm.report())?;
    ensure!(
        report.lv(&vg, "one").is_some() && report.lv(&vg, "two").is_some(),
        "LVs: {:?}",
        report.lvs
    );
    ensure!(
        sb.lvm_text(&["lvs", "--noheadings", "-o", "lv_name", &vg])?
            .split_whitespace()
            .count()
            == 2,
        "lvs disagrees"
    );
    Ok(())
}

/// A VG on a device outside the confinement is never seen or touched.
fn confinement_hides_other_devices(
    sb: &Sandbox,
    lvm: &dyn LvmBackend,
    factory: &Factory,
) -> Result<(), Failed> {
    // `lvm` sees both disks: put a VG on disk 1 only.
    let hidden = sb.vg_name("hidden");
    ctx("pv_create", lvm.pv_create(sb.disk(1)))?;
    ctx("vg_create", lvm.vg_create(&hidden, &[sb.disk(1)], None))?;
    ctx(
        "lv",
        lvm.lv_create(&hidden, "keep", LvCreate::size(Bytes::mib(4)).inactive()),
    )?;
    let seqno = ctx("vg", lvm.vg(&hidden))?.seqno;
    // A backend confined to disk 0 alone.
    let (narrow, guard) = factory(&[sb.disk(0).to_owned()])?;
    let report = ctx("narrow report", narrow.report())?;
    ensure!(
        report.vg(&hidden).is_none(),
        "confined backend sees {hidden}"
    );
    ensure!(
        report.pvs.iter().all(|p| p.name != sb.disk(1)),
        "confined backend sees disk 1: {:?}",
        report.pvs
    );
    let r = narrow.vg_remove(&hidden);
    ensure!(
        matches!(r, Err(Error::NotFound { .. })),
        "vg_remove outside confinement: {r:?}"
    );
    let r = narrow.lv_remove(&hidden, "keep");
    ensure!(
        matches!(r, Err(Error::NotFound { .. })),
        "lv_remove outside confinement: {r:?}"
    );
    let r = narrow.pv_create(sb.disk(1));
    ensure!(r.is_err(), "pv_create outside confinement succeeded");
    drop(narrow);
    drop(guard);
    let after = ctx("vg", lvm.vg(&hidden))?;
    ensure!(
        after.seqno == seqno && after.lv_count == 1,
        "hidden VG changed: {after:?}"
    );
    Ok(())
}

/// A VG spanning two disks, seen by a backend confined to one of them: the VG is partial, and a
/// change is refused with MissingPv, leaving the metadata untouched.
fn missing_pv(sb: &Sandbox, lvm: &dyn LvmBackend, factory: &Factory) -> Result<(), Failed> {
    let vg = sb.vg_name("partial");
    ctx("pv a", lvm.pv_create(sb.disk(0)))?;
    ctx("pv b", lvm.pv_create(sb.disk(1)))?;
    ctx("vg", lvm.vg_create(&vg, &[sb.disk(0), sb.disk(1)], None))?;
    let seqno = ctx("vg", lvm.vg(&vg))?.seqno;
    let (narrow, guard) = factory(&[sb.disk(0).to_owned()])?;
    let seen = ctx("partial vg", narrow.vg(&vg))?;
    ensure!(
        seen.missing_pv_count == 1,
        "missing_pv_count {}",
        seen.missing_pv_count
    );
    ensure!(seen.attr.partial, "vg_attr not partial: {:?}", seen.attr);
    let r = narrow.lv_create(&vg, "lv", LvCreate::size(Bytes::mib(4)).inactive());
    ensure!(
        matches!(r, Err(Error::MissingPv { .. })),
        "lvcreate in a partial VG: {r:?}"
    );
    drop(narrow);
    drop(guard);
    let after = ctx("vg", lvm.vg(&vg))?;
    ensure!(
        after.seqno == seqno && after.missing_pv_count == 0,
        "VG changed: {after:?}"
    );
    Ok(())
}

/// lvm2 counts extents in 32 bits and truncates larger absolute sizes (an extend by 1 EiB in
/// 4 MiB extents "matches existing size"): such an extend is refused, the LV unchanged.
fn extend_beyond_lvm2s_extent_count(
    sb: &Sandbox,
    lvm: &dyn LvmBackend,
    _: &Factory,
) -> Result<(), Failed> {
    let vg = new_vg(sb, lvm, "count")?;
    ctx(
        "lv",
        lvm.lv_create(&vg, "lv", LvCreate::size(Bytes::mib(8)).inactive()),
    )?;
    for huge in [Bytes(1 << 60), Bytes(1 << 54)] {
        let r = lvm.lv_extend(&vg, "lv", NewSize::Add(huge));
        ensure!(
            matches!(r, Err(Error::InvalidRequest { .. })),
            "extend by {huge}: {r:?}"
        );
    }
    ensure!(
        sb.lvm_bytes("lvs", "lv_size", &format!("{vg}/lv"))? == 8 * MIB,
        "a refused extend changed the LV"
    );
    Ok(())
}
