//! LVM activation on a real device-mapper, in a QEMU VM.
//!
//! On the host this is one root test, `vm::activation_in_qemu`: it boots the VM with
//! `.ci/lvm-vm.sh run` and runs this same test binary inside, where `LVM_KIT_VM_DISK` names the
//! guest's raw scratch disk and the guest trials below run: linear LV → btrfs → write data →
//! online grow (examples/lvm grow-btrfs) → deactivate/reactivate → verify the data (CLI); and
//! with both backends, reactivation keeping data, a classic snapshot, a thin pool and thin LV.

mod lvm_common;

use btrfs_kit::Filesystem;
use lvm_common::daemon::PrivateLvmDbusd;
use lvm_common::fixture::Sandbox;
use lvm_kit::{Bytes, LvCreate, LvType, LvmBackend, ThinPoolCreate};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use testkit::fixture::{make_btrfs, BtrfsOptions, Mount};
use testkit::harness::{ctx, Failed};
use testkit::{ensure, named};

/// A guest test: a sandbox on the VM's scratch disk and the backend under test.
type GuestTest = fn(&Sandbox, &dyn LvmBackend) -> Result<(), Failed>;

/// Which backends a guest test runs with.
#[derive(Clone, Copy, PartialEq)]
enum Backends {
    Cli,
    Both,
}

/// The guest tests; each runs as `vm::BACKEND::NAME`.
const GUEST_TESTS: [((&str, GuestTest), Backends); 4] = [
    (
        named!(linear_btrfs_grow_deactivate_reactivate),
        Backends::Cli,
    ),
    (named!(activate_deactivate_keeps_data), Backends::Both),
    (named!(snapshot_keeps_the_old_data), Backends::Both),
    (named!(thin_pool_and_thin_lv), Backends::Both),
];

/// The guest trials' names, which the host checks all ran and passed.
fn guest_trials() -> Vec<(String, GuestTest, &'static str)> {
    GUEST_TESTS
        .iter()
        .flat_map(|&((name, test), backends)| {
            let kinds: &[&'static str] = if backends == Backends::Both {
                &["cli", "dbus"]
            } else {
                &["cli"]
            };
            kinds
                .iter()
                .map(move |&kind| (format!("vm::{kind}::{name}"), test, kind))
        })
        .collect()
}

/// Runs `test` on the scratch disk with the CLI backend, or with a private lvmdbusd.
fn run_guest(disk: &Path, test: GuestTest, kind: &str) -> Result<(), Failed> {
    let sb = Sandbox::on_devices(vec![disk.to_owned()])?;
    if kind == "dbus" {
        let daemon = PrivateLvmDbusd::start(&sb.paths())?;
        let backend = daemon.backend()?;
        let result = test(&sb, &backend);
        drop(backend);
        drop(daemon);
        return result;
    }
    let cli = sb.cli.clone();
    test(&sb, &cli)
}

/// Deterministic pseudo-random bytes (xorshift64*), so the data check needs no stored copy.
fn fill(buf: &mut [u8], state: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let v = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// Writes `mib` MiB of the pseudo-random stream `seed` to `path` and syncs it.
fn write_data(path: &Path, mib: usize, seed: u64) -> Result<(), Failed> {
    let mut file = ctx("create data file", std::fs::File::create(path))?;
    let mut state = seed;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mib {
        fill(&mut buf, &mut state);
        ctx("write data", file.write_all(&buf))?;
    }
    ctx("fsync", file.sync_all())
}

/// Checks that `path` holds exactly `mib` MiB of the stream `seed`, byte for byte (the stream
/// is the checksum: any changed, lost or extra byte fails). A SHA-256 of unoptimised code runs
/// at about 1 MiB/s under TCG; regenerating the stream is far cheaper.
fn verify_data(path: &Path, mib: usize, seed: u64) -> Result<(), Failed> {
    let mut file = ctx("open data file", std::fs::File::open(path))?;
    let mut state = seed;
    let (mut want, mut got) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    for i in 0..mib {
        fill(&mut want, &mut state);
        ctx("read data", file.read_exact(&mut got))?;
        ensure!(
            got == want,
            "{}: MiB {i} differs from what was written",
            path.display()
        );
    }
    let mut rest = Vec::new();
    ctx("read tail", file.read_to_end(&mut rest))?;
    ensure!(
        rest.is_empty(),
        "{}: {} unexpected extra bytes",
        path.display(),
        rest.len()
    );
    Ok(())
}

/// pvcreate, vgcreate, lvcreate 1 GiB active; native mkfs, mount, write checksummed data; grow
/// the LV and the btrfs online with `examples/lvm grow-btrfs`; unmount, deactivate, reactivate,
/// remount, verify; remove everything.
fn linear_btrfs_grow_deactivate_reactivate(
    sb: &Sandbox,
    lvm: &dyn LvmBackend,
) -> Result<(), Failed> {
    let disk = sb.disk(0);
    let vg = sb.vg_name("vm");
    ctx("pvcreate", lvm.pv_create(disk))?;
    ctx("vgcreate", lvm.vg_create(&vg, &[disk], None))?;
    let lv = ctx(
        "lvcreate",
        lvm.lv_create(&vg, "docker", LvCreate::size(Bytes::gib(1))),
    )?;
    ensure!(
        lv.active && lv.attr.state == lvm_kit::LvState::Active,
        "not active: {:?}",
        lv.attr
    );
    ensure!(lv.size == Bytes::gib(1), "size {}", lv.size);
    ensure!(lv.path.exists(), "{} does not exist", lv.path.display());
    ensure!(
        ctx("lv_is_active", lvm.lv_is_active(&vg, "docker"))?,
        "lv_is_active false"
    );

    ctx("mkfs", make_btrfs(&lv.path, &BtrfsOptions::default()))?;
    let mut mount = ctx("mount", Mount::new(&lv.path, "btrfs", ""))?;
    let data = mount.path().join("data");
    write_data(&data, 16, 0x5eed)?;

    let grow = ctx(
        "run examples/lvm grow-btrfs",
        Command::new(lvm_common::example::binary()?)
            .args(["--devices", &disk.display().to_string(), "grow-btrfs"])
            .arg(mount.path())
            .arg("+512m")
            .output(),
    )?;
    ensure!(
        grow.status.success(),
        "grow-btrfs failed: {}{}",
        String::from_utf8_lossy(&grow.stdout),
        String::from_utf8_lossy(&grow.stderr)
    );
    let grown = ctx("lv", lvm.lv(&vg, "docker"))?;
    ensure!(
        grown.size == Bytes::mib(1536),
        "LV size after grow {}",
        grown.size
    );
    let fs = ctx("open btrfs", Filesystem::open(mount.path()))?;
    let fs_devices = ctx("btrfs devices", fs.devices())?;
    ensure!(
        fs_devices.len() == 1 && fs_devices[0].total_bytes.0 == grown.size.get(),
        "btrfs device size {:?} vs LV {}",
        fs_devices
            .iter()
            .map(|d| d.total_bytes.0)
            .collect::<Vec<_>>(),
        grown.size.get()
    );
    drop(fs);
    verify_data(&data, 16, 0x5eed)?;

    ctx("unmount", mount.unmount())?;
    ctx("deactivate", lvm.lv_deactivate(&vg, "docker"))?;
    ensure!(
        !ctx("lv_is_active", lvm.lv_is_active(&vg, "docker"))?,
        "still active"
    );
    ensure!(
        !grown.path.exists(),
        "{} still exists after deactivation",
        grown.path.display()
    );
    ctx("activate", lvm.lv_activate(&vg, "docker"))?;
    ensure!(
        ctx("lv_is_active", lvm.lv_is_active(&vg, "docker"))?,
        "not active again"
    );
    let mount = ctx("remount", Mount::new(&grown.path, "btrfs", ""))?;
    verify_data(&mount.path().join("data"), 16, 0x5eed)?;
    drop(mount);

    ctx("lvremove", lvm.lv_remove(&vg, "docker"))?;
    ensure!(!grown.path.exists(), "device node left after lvremove");
    ctx("vgremove", lvm.vg_remove(&vg))?;
    ctx("pvremove", lvm.pv_remove(disk))?;
    ensure!(ctx("report", lvm.report())?.pvs.is_empty(), "PV left");
    Ok(())
}

fn write_at(path: &Path, offset: u64, data: &[u8]) -> Result<(), Failed> {
    let mut f = ctx("open", std::fs::OpenOptions::new().write(true).open(path))?;
    ctx("seek", f.seek(SeekFrom::Start(offset)))?;
    ctx("write", f.write_all(data))?;
    ctx("fsync", f.sync_all())
}

fn read_at(path: &Path, offset: u64, len: usize) -> Result<Vec<u8>, Failed> {
    let mut f = ctx("open", std::fs::File::open(path))?;
    ctx("seek", f.seek(SeekFrom::Start(offset)))?;
    let mut buf = vec![0; len];
    ctx("read", f.read_exact(&mut buf))?;
    Ok(buf)
}

/// A classic snapshot keeps the origin's old data after the origin is overwritten.
fn snapshot_keeps_the_old_data(sb: &Sandbox, lvm: &dyn LvmBackend) -> Result<(), Failed> {
    let disk = sb.disk(0);
    let vg = sb.vg_name("snap");
    ctx("pvcreate", lvm.pv_create(disk))?;
    ctx("vgcreate", lvm.vg_create(&vg, &[disk], None))?;
    let origin = ctx(
        "lvcreate",
        lvm.lv_create(&vg, "origin", LvCreate::size(Bytes::mib(64))),
    )?;
    let mut old = vec![0u8; 1 << 20];
    fill(&mut old, &mut 1);
    write_at(&origin.path, 4096, &old)?;
    let snap = ctx(
        "snapshot",
        lvm.snapshot_create(&vg, "origin", "before", Bytes::mib(16)),
    )?;
    ensure!(
        snap.attr.volume_type == LvType::Snapshot,
        "snapshot attr {:?}",
        snap.attr
    );
    ensure!(
        snap.origin.as_deref() == Some("origin"),
        "origin {:?}",
        snap.origin
    );
    ensure!(snap.active, "snapshot not active");
    let origin_now = ctx("lv", lvm.lv(&vg, "origin"))?;
    ensure!(
        origin_now.attr.volume_type == LvType::Origin,
        "origin attr {:?}",
        origin_now.attr
    );
    let mut new = vec![0u8; 1 << 20];
    fill(&mut new, &mut 2);
    write_at(&origin.path, 4096, &new)?;
    ensure!(
        read_at(&origin.path, 4096, new.len())? == new,
        "origin lost the new data"
    );
    ensure!(
        read_at(&snap.path, 4096, old.len())? == old,
        "snapshot lost the old data"
    );
    ctx("remove snapshot", lvm.lv_remove(&vg, "before"))?;
    ctx("vgremove", lvm.vg_remove(&vg))?;
    ctx("pvremove", lvm.pv_remove(disk))
}

/// A thin pool and an over-provisioned thin LV on it; writes show up in the pool's usage.
fn thin_pool_and_thin_lv(sb: &Sandbox, lvm: &dyn LvmBackend) -> Result<(), Failed> {
    let disk = sb.disk(0);
    let vg = sb.vg_name("thin");
    ctx("pvcreate", lvm.pv_create(disk))?;
    ctx("vgcreate", lvm.vg_create(&vg, &[disk], None))?;
    let pool = ctx(
        "thin pool",
        lvm.thin_pool_create(
            &vg,
            "pool",
            ThinPoolCreate {
                size: Bytes::mib(256),
            },
        ),
    )?;
    ensure!(
        pool.attr.volume_type == LvType::ThinPool,
        "pool attr {:?}",
        pool.attr
    );
    ensure!(pool.size == Bytes::mib(256), "pool size {}", pool.size);
    let thin = ctx(
        "thin lv",
        lvm.thin_create(&vg, "pool", "thin", Bytes::gib(4)),
    )?;
    ensure!(
        thin.attr.volume_type == LvType::Thin,
        "thin attr {:?}",
        thin.attr
    );
    ensure!(thin.size == Bytes::gib(4), "virtual size {}", thin.size);
    ensure!(
        thin.pool_lv.as_deref() == Some("pool"),
        "pool_lv {:?}",
        thin.pool_lv
    );
    ensure!(thin.active && thin.path.exists(), "thin LV not active");
    let before = ctx("pool", lvm.lv(&vg, "pool"))?
        .data_percent
        .unwrap_or(0.0);
    let mut data = vec![0u8; 8 << 20];
    fill(&mut data, &mut 3);
    write_at(&thin.path, 0, &data)?;
    let after = ctx("pool", lvm.lv(&vg, "pool"))?.data_percent;
    ensure!(
        after.is_some_and(|a| a > before),
        "pool usage {before} -> {after:?}"
    );
    ensure!(
        read_at(&thin.path, 0, data.len())? == data,
        "thin LV data mismatch"
    );
    ctx("vgremove", lvm.vg_remove(&vg))?;
    ctx("pvremove", lvm.pv_remove(disk))
}

/// An active LV: data written, deactivated (the device node goes), activated again, data kept.
fn activate_deactivate_keeps_data(sb: &Sandbox, lvm: &dyn LvmBackend) -> Result<(), Failed> {
    let disk = sb.disk(0);
    let vg = sb.vg_name("react");
    ctx("pvcreate", lvm.pv_create(disk))?;
    ctx("vgcreate", lvm.vg_create(&vg, &[disk], None))?;
    let lv = ctx(
        "lvcreate",
        lvm.lv_create(&vg, "data", LvCreate::size(Bytes::mib(64))),
    )?;
    ensure!(
        lv.active && lv.path.exists(),
        "LV not active: {:?}",
        lv.attr
    );
    let mut old = vec![0u8; 1 << 20];
    fill(&mut old, &mut 4);
    write_at(&lv.path, 0, &old)?;
    ctx("deactivate", lvm.lv_deactivate(&vg, "data"))?;
    ensure!(
        !ctx("active", lvm.lv_is_active(&vg, "data"))?,
        "still active"
    );
    ensure!(!lv.path.exists(), "device node left after deactivation");
    ctx("activate", lvm.lv_activate(&vg, "data"))?;
    ensure!(
        ctx("active", lvm.lv_is_active(&vg, "data"))?,
        "not active again"
    );
    ensure!(
        read_at(&lv.path, 0, old.len())? == old,
        "data lost across reactivation"
    );
    ctx("vgremove", lvm.vg_remove(&vg))?;
    ctx("pvremove", lvm.pv_remove(disk))
}

fn main() {
    testkit::vm::guest_tier_main(testkit::vm::GuestTier {
        host_trial: "vm::activation_in_qemu",
        workspace: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        disk_size: None,
        // Plain trials in the guest: it runs them as root, and the host checks that each ran
        // and passed.
        guest_trials: guest_trials()
            .into_iter()
            .map(|(name, test, kind)| {
                let run: testkit::vm::GuestRun = Box::new(move |disk| run_guest(disk, test, kind));
                (name, run)
            })
            .collect(),
        transcript: None,
    })
}
