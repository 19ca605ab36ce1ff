//! The typed sysfs module against the running kernel: allocation figures equal to
//! `space_info()` and the chunk tree, knobs that round-trip, absent knobs read as absent.

use crate::data::{write_file, MIB};
use btrfs_kit::sysfs::{
    AllocationKind, ExclusiveOperation, Feature, FsSysfs, GlobalReserve, SpeedLimit,
    SysfsAllocation,
};
use btrfs_kit::{BlockGroupKind, ByteSize, ErrorKind, Filesystem, Profile, SpaceInfo, Usage};
use testkit::ensure;
use testkit::fixture::MultiScratch;
use testkit::harness::{Failed, Trial};

testkit::register!(table: trials);
/// The trials built from parameters (one per profile or setting), named here.
fn trials() -> Vec<Trial> {
    vec![
        testkit::harness::root("sysfs::allocation_equals_space_info_single", || {
            allocation_equals_space_info(1, Profile::Single, Profile::Dup)
        }),
        testkit::harness::root("sysfs::allocation_equals_space_info_raid1", || {
            allocation_equals_space_info(2, Profile::Raid1, Profile::Raid1)
        }),
    ]
}

fn allocation_equals_space_info(
    devices: usize,
    data: Profile,
    meta: Profile,
) -> Result<(), Failed> {
    let scratch = MultiScratch::new(devices, 512 * MIB, data, meta)?;
    for i in 0..3 {
        write_file(&scratch.path().join(format!("f{i}")), 20 * MIB, i)?;
    }
    let fs = Filesystem::open(scratch.path())?;
    fs.sync()?;
    let sysfs = FsSysfs::for_fs(&fs)?;
    let Settled {
        space,
        usage,
        allocations,
        reserve,
    } = settled(&fs, &sysfs)?;
    ensure!(allocations.len() == 3, "{allocations:?}");
    for a in &allocations {
        let kind = a.kind.block_group_kind();
        let of_kind: Vec<_> = space.iter().filter(|s| s.kind == kind).collect();
        let total: ByteSize = of_kind.iter().map(|s| s.total).sum();
        let used: ByteSize = of_kind.iter().map(|s| s.used).sum();
        ensure!(
            a.total == total && a.used == used,
            "{:?}: sysfs {}/{}, space info {total}/{used}",
            a.kind,
            a.total,
            a.used,
        );
        ensure!(
            a.profiles.len() == of_kind.len()
                && of_kind.iter().all(|s| {
                    a.profiles
                        .iter()
                        .any(|p| (p.profile, p.total, p.used) == (s.profile, s.total, s.used))
                }),
            "{:?} per profile: {:?} vs {of_kind:?}",
            a.kind,
            a.profiles,
        );
        // Raw bytes: what the chunk tree allocates to this kind on all devices together.
        let raw: ByteSize = usage
            .devices
            .iter()
            .flat_map(|d| &d.allocated)
            .filter(|x| x.kind == kind)
            .map(|x| x.bytes)
            .sum();
        ensure!(
            a.disk_total == Some(raw),
            "{:?}: disk_total {:?}, chunk tree {raw}",
            a.kind,
            a.disk_total,
        );
        let copies = of_kind.first().map_or(1, |s| s.profile.copies());
        ensure!(
            a.disk_used == Some(ByteSize(used.bytes() * copies)),
            "{:?}: disk_used {:?}, used {used} × {copies}",
            a.kind,
            a.disk_used,
        );
    }
    let reserve = reserve.ok_or("no global reserve")?;
    let ioctl_reserve = space
        .iter()
        .find(|s| s.kind == BlockGroupKind::GlobalReserve)
        .ok_or("no global reserve in space info")?;
    ensure!(
        reserve.size == ioctl_reserve.total && reserve.size == usage.global_reserve,
        "global reserve: sysfs {reserve:?}, space info {ioctl_reserve:?}",
    );
    {
        ensure!(
            sysfs.allocation(AllocationKind::Mixed)?.is_none(),
            "a mixed allocation on a filesystem without mixed block groups",
        );
        Ok(())
    }
}

/// The three views of the allocation, read while it stood still.
struct Settled {
    space: Vec<SpaceInfo>,
    usage: Usage,
    allocations: Vec<SysfsAllocation>,
    reserve: Option<GlobalReserve>,
}

/// Reads `SPACE_INFO`, the chunk tree (`usage`) and sysfs so that they describe one state.
///
/// The kernel changes the allocation behind our back: after a commit the cleaner thread removes
/// block groups that became empty (the raid1 conversion leaves one, data or metadata depending on
/// where the chunk allocator put things), a few milliseconds after the `sync` that woke it.
/// Readings taken across such a removal disagree by a whole chunk (seen: Data 201 MiB in
/// `SPACE_INFO`, 112 MiB in sysfs a millisecond later). So the sysfs reading only counts when
/// it is bracketed by two equal readings of `SPACE_INFO` and of the chunk tree (read in the
/// order space, usage, sysfs, usage, space); otherwise commit and read again, a bounded number
/// of times.
fn settled(fs: &Filesystem, sysfs: &FsSysfs) -> Result<Settled, Failed> {
    const ATTEMPTS: usize = 20;
    for _ in 0..ATTEMPTS {
        let space = fs.space_info()?;
        let usage = fs.usage()?;
        let allocations = sysfs.allocations()?;
        let reserve = sysfs.global_reserve()?;
        if fs.usage()? == usage && fs.space_info()? == space {
            return Ok(Settled {
                space,
                usage,
                allocations,
                reserve,
            });
        }
        fs.sync()?;
    }
    Err(format!("the allocation did not stand still over {ATTEMPTS} pairs of readings").into())
}

testkit::register!(root: knobs_round_trip);
fn knobs_round_trip() -> Result<(), Failed> {
    let scratch = MultiScratch::new(1, 512 * MIB, Profile::Single, Profile::Dup)?;
    let fs = Filesystem::open(scratch.path())?;
    let sysfs = FsSysfs::for_fs(&fs)?;
    let data = AllocationKind::Data;
    let before = sysfs
        .bg_reclaim_threshold(data)?
        .ok_or("no bg_reclaim_threshold")?;
    for percent in [75, 0, 100] {
        sysfs.set_bg_reclaim_threshold(data, percent)?;
        let read = sysfs.bg_reclaim_threshold(data)?;
        ensure!(read == Some(percent), "wrote {percent}, read {read:?}");
    }
    match sysfs.set_bg_reclaim_threshold(data, 101) {
        Err(e) if matches!(e.kind(), ErrorKind::KernelRejected { .. }) => {
            ensure!(e.to_string().contains("0 to 100"), "{}", e.to_string())
        }
        other => return Err(format!("threshold 101: {other:?}").into()),
    }
    sysfs.set_bg_reclaim_threshold(data, before)?;
    for (name, get, set) in [
        (
            "dynamic_reclaim",
            FsSysfs::dynamic_reclaim
                as fn(&FsSysfs, AllocationKind) -> btrfs_kit::Result<Option<bool>>,
            FsSysfs::set_dynamic_reclaim
                as fn(&FsSysfs, AllocationKind, bool) -> btrfs_kit::Result<()>,
        ),
        (
            "periodic_reclaim",
            FsSysfs::periodic_reclaim,
            FsSysfs::set_periodic_reclaim,
        ),
    ] {
        let was = get(&sysfs, data)?.ok_or(format!("no {name}"))?;
        for on in [!was, was] {
            set(&sysfs, data, on)?;
            ensure!(get(&sysfs, data)? == Some(on), "{name} {on} did not stick");
        }
    }
    let limit = SpeedLimit::BytesPerSecond(ByteSize(10 * MIB));
    sysfs.set_scrub_speed_max(1, limit)?;
    ensure!(
        sysfs.scrub_speed_max(1)? == Some(limit),
        "scrub_speed_max did not stick"
    );
    sysfs.set_scrub_speed_max(1, SpeedLimit::Unlimited)?;
    {
        ensure!(
            sysfs.scrub_speed_max(1)? == Some(SpeedLimit::Unlimited),
            "scrub_speed_max 0 did not stick",
        );
        Ok(())
    }
}

testkit::register!(root: state_knobs_and_features);
fn state_knobs_and_features() -> Result<(), Failed> {
    let scratch = MultiScratch::new(2, 512 * MIB, Profile::Raid1, Profile::Raid1)?;
    let fs = Filesystem::open(scratch.path())?;
    let sysfs = FsSysfs::for_fs(&fs)?;
    ensure!(
        sysfs.exclusive_operation()? == Some(ExclusiveOperation::None)
            && fs.exclusive_operation().is_none(),
        "an exclusive operation on an idle filesystem",
    );
    let ids: Vec<u64> = fs.devices()?.iter().map(|d| d.devid).collect();
    ensure!(
        sysfs.devids()? == Some(ids.clone()),
        "devinfo ids vs {ids:?}"
    );
    for devid in ids {
        ensure!(
            sysfs.device_error_stats(devid)? == Some(fs.device_stats(devid)?),
            "error_stats of {devid}",
        );
    }
    let features = sysfs.features()?.ok_or("no features directory")?;
    ensure!(
        features.contains(&Feature::FreeSpaceTree) && features.contains(&Feature::NoHoles),
        "features {features:?}",
    );
    let before = sysfs.commit_stats()?.ok_or("no commit_stats")?;
    write_file(&scratch.path().join("f"), MIB, 1)?;
    fs.sync()?;
    let after = sysfs.commit_stats()?.ok_or("no commit_stats")?;
    ensure!(
        after.commits > before.commits && after.total >= before.total,
        "commit stats before {before:?}, after {after:?}",
    );
    // The kernel checks CAP_SYS_RESOURCE, which root can lack (containers drop it).
    match (sysfs.reset_commit_stats(), has_cap_sys_resource()?) {
        (Ok(()), true) => {
            let reset = sysfs.commit_stats()?.ok_or("no commit_stats")?;
            {
                ensure!(
                    reset.max.is_zero() || reset.commits > after.commits,
                    "after reset: {reset:?}"
                );
                Ok(())
            }
        }
        (Err(e), false) if matches!(e.kind(), ErrorKind::PermissionDenied { .. }) => {
            ensure!(
                e.to_string().contains("CAP_SYS_RESOURCE"),
                "{}",
                e.to_string()
            );
            Ok(())
        }
        (result, cap) => Err(format!("reset with CAP_SYS_RESOURCE={cap}: {result:?}").into()),
    }
}

/// Whether this process has CAP_SYS_RESOURCE (bit 24 of CapEff).
fn has_cap_sys_resource() -> Result<bool, Failed> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .ok_or("no CapEff")?;
    Ok(u64::from_str_radix(hex.trim(), 16)? >> 24 & 1 == 1)
}

testkit::register!(root: absent_knobs_read_as_absent);
fn absent_knobs_read_as_absent() -> Result<(), Failed> {
    // A directory laid out like an older kernel's: nothing in it.
    let dir = tempfile::tempdir()?;
    let sysfs = FsSysfs::at(dir.path());
    ensure!(
        sysfs.exclusive_operation()?.is_none(),
        "exclusive_operation"
    );
    ensure!(sysfs.commit_stats()?.is_none(), "commit_stats");
    ensure!(sysfs.features()?.is_none(), "features");
    ensure!(sysfs.devids()?.is_none(), "devids");
    ensure!(sysfs.scrub_speed_max(1)?.is_none(), "scrub_speed_max");
    ensure!(sysfs.device_error_stats(1)?.is_none(), "error_stats");
    ensure!(sysfs.allocations()?.is_empty(), "allocations");
    ensure!(sysfs.global_reserve()?.is_none(), "global reserve");
    ensure!(
        sysfs.bg_reclaim_threshold(AllocationKind::Data)?.is_none()
            && sysfs.dynamic_reclaim(AllocationKind::Data)?.is_none(),
        "reclaim knobs",
    );
    match sysfs.set_bg_reclaim_threshold(AllocationKind::Data, 75) {
        Err(e) if matches!(e.kind(), ErrorKind::KernelLacks { .. }) => {
            ensure!(e.to_string().contains("5.19"), "{}", e.to_string());
            Ok(())
        }
        other => Err(format!("setting a missing knob: {other:?}").into()),
    }
}
