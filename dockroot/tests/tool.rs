//! The dockroot binary against real filesystems: every doctor check provoked for real on loop
//! devices, `check` parsed back as a monitoring system parses it, provision's refusals that
//! need no device-mapper, and a closed stdout. Root tests are ignored (and listed) when
//! unprivileged; provision end to end runs in the QEMU guest (`tests/provision_vm.rs`).
//!
//! Docker's layout is built by hand from the files moby writes (`support::layout`); the
//! real-daemon tier asserts the orphan check against dockerd's own layout. A real dockerd
//! (`support::dockerd`) runs where the daemon itself is what is checked.

mod support;

use btrfs_kit::balance::{Balance, BalanceOutcome, ChunkFilters};
use btrfs_kit::Filesystem;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{check, items, layout, nagios, text, Env};
use testkit::ensure;
use testkit::fixture::{BtrfsOptions, FsKind, Scratch};
use testkit::harness::Failed;

const MIB: u64 = 1 << 20;

fn main() {
    testkit::harness::run(testkit::harness::registered())
}

/// The path as text.
fn s(p: &Path) -> Result<&str, Failed> {
    p.to_str().ok_or_else(|| "non-UTF-8 path".into())
}

/// `dockroot check PATH`, parsed as a monitoring system parses it; checks that the exit code
/// is the status line's, and returns both.
fn probe(env: &Env, path: &Path) -> Result<(nagios::PluginOutput, i32), Failed> {
    let out = env.run(&["check", s(path)?])?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let parsed = nagios::parse(dockroot::check::NAME, &stdout)?;
    let code = out.status.code().unwrap_or(-1);
    ensure!(
        nagios::code_of(&parsed.status) == Some(code),
        "status {} but exit {code}: {}",
        parsed.status,
        text(&out),
    );
    // Every item's thresholds must agree with the status: no item alerts above it.
    for p in &parsed.perf {
        ensure!(
            i32::from(p.state()) <= code || code == 3,
            "{} alerts at {} above the status {}: {stdout}",
            p.label,
            p.state(),
            parsed.status,
        );
    }
    Ok((parsed, code))
}

/// Writes 8 MiB files into `dir` until data use reaches `ratio` of the capacity.
fn fill_to(fs: &Filesystem, dir: &Path, ratio: f64) -> Result<f64, Failed> {
    let block = vec![0xA5u8; 8 * MIB as usize];
    for i in 0..100_000 {
        fs.sync()?;
        let now = fs.fill()?.data_used_ratio;
        if now >= ratio {
            return Ok(now);
        }
        let mut f = std::fs::File::create(dir.join(format!("fill-{i}")))?;
        f.write_all(&block)?;
        f.sync_all()?;
    }
    Err("could not fill the filesystem".into())
}

testkit::register!(prefix "tool"; root: a_data_root_on_its_parents_filesystem_is_critical);
fn a_data_root_on_its_parents_filesystem_is_critical() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let env = Env::new()?;
    // A plain directory: Docker's data on its parent's filesystem.
    let dir = scratch.path().join("docker");
    std::fs::create_dir(&dir)?;
    let (report, code) = env.doctor(&dir, &[])?;
    let (status, summary) = check(&report, "mount.own-filesystem")?;
    ensure!(
        status == "critical" && summary.contains("not a mount point"),
        "{summary}"
    );
    ensure!(code == 2, "exit {code}");
    // A bind mount of the same filesystem onto a directory of it.
    let (source, target) = (scratch.path().join("srv"), scratch.path().join("bound"));
    std::fs::create_dir(&source)?;
    std::fs::create_dir(&target)?;
    let _bind = BindMount::new(&source, &target)?;
    let (report, _) = env.doctor(&target, &[])?;
    let (status, summary) = check(&report, "mount.own-filesystem")?;
    ensure!(
        status == "critical" && summary.contains("same filesystem"),
        "bind mount: {status} {summary}",
    );
    // The scratch filesystem itself is a filesystem of its own.
    let (report, _) = env.doctor(scratch.path(), &[])?;
    ensure!(
        check(&report, "mount.own-filesystem")?.0 == "ok",
        "{report}"
    );
    Ok(())
}

/// A bind mount, undone on drop.
struct BindMount(std::path::PathBuf);

impl BindMount {
    fn new(source: &Path, target: &Path) -> Result<Self, Failed> {
        nix::mount::mount(
            Some(source),
            target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )?;
        Ok(BindMount(target.into()))
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

testkit::register!(prefix "tool"; root: ext4_is_critical_and_the_probe_says_unknown);
fn ext4_is_critical_and_the_probe_says_unknown() -> Result<(), Failed> {
    let scratch = Scratch::new(256 * MIB, FsKind::Ext4)?;
    let env = Env::new()?;
    let (report, code) = env.doctor(scratch.path(), &[])?;
    let (status, summary) = check(&report, "fs.btrfs")?;
    ensure!(status == "critical" && summary.contains("ext"), "{summary}");
    ensure!(
        check(&report, "mount.own-filesystem")?.0 == "ok",
        "{report}"
    );
    ensure!(code == 2, "exit {code}");
    let (plugin, code) = probe(&env, scratch.path())?;
    ensure!(
        code == 3 && plugin.status == "UNKNOWN" && plugin.text.contains("not btrfs"),
        "{plugin:?}",
    );
    Ok(())
}

testkit::register!(prefix "tool"; root: filled_past_80_then_90_percent_warns_then_is_critical);
fn filled_past_80_then_90_percent_warns_then_is_critical() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let env = Env::new()?;
    let fs = Filesystem::open(scratch.path())?;
    let now = fill_to(&fs, scratch.path(), 0.82)?;
    ensure!(now < 0.9, "overshot to {now}");
    let (report, code) = env.doctor(scratch.path(), &[])?;
    let (status, summary) = check(&report, "space.used")?;
    ensure!(status == "warning", "at {now}: {status} {summary}");
    ensure!(code >= 1, "doctor exit {code}");
    // Near full, unallocated space runs out too: the probe may be critical for that, but its
    // `used` item alone is a warning.
    let (plugin, _) = probe(&env, scratch.path())?;
    let used = plugin.get("used")?;
    ensure!(used.uom == "B" && used.state() == 1, "used {used:?}");
    ensure!(
        used.min == Some(0.0) && used.max.is_some_and(|m| m > used.value),
        "{used:?}"
    );
    let pct = plugin.get("used_percent")?;
    ensure!((pct.value - now * 100.0).abs() < 1.0, "{pct:?} vs {now}");

    let now = fill_to(&fs, scratch.path(), 0.92)?;
    let (report, code) = env.doctor(scratch.path(), &[])?;
    ensure!(
        check(&report, "space.used")?.0 == "critical",
        "at {now}: {report}"
    );
    ensure!(code == 2, "doctor exit {code}");
    let (plugin, code) = probe(&env, scratch.path())?;
    ensure!(code == 2 && plugin.status == "CRITICAL", "{plugin:?}");
    ensure!(plugin.get("used")?.state() == 2, "{plugin:?}");
    Ok(())
}

testkit::register!(prefix "tool"; root: the_probe_is_parsed_back_in_each_state);
/// The probe's output parsed back in each state: OK on a fresh filesystem, WARNING and
/// CRITICAL from the used space (thresholds given as flags, on a filesystem large enough that
/// unallocated space stays ample), UNKNOWN on ext4 (in its own test) and a missing path.
fn the_probe_is_parsed_back_in_each_state() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(4096 * MIB)?;
    let env = Env::new()?;
    let fs = Filesystem::open(scratch.path())?;
    let path = s(scratch.path())?;
    let probe_with = |warn: &str, crit: &str| -> Result<(nagios::PluginOutput, i32), Failed> {
        let out = env.run(&["check", path, "--warn", warn, "--crit", crit])?;
        let parsed = nagios::parse(dockroot::check::NAME, &String::from_utf8_lossy(&out.stdout))?;
        let code = out.status.code().unwrap_or(-1);
        ensure!(
            nagios::code_of(&parsed.status) == Some(code),
            "{parsed:?} exit {code}"
        );
        let worst = parsed
            .perf
            .iter()
            .map(|p| i32::from(p.state()))
            .max()
            .unwrap_or(0);
        ensure!(
            worst == code,
            "the perfdata says {worst}, the status {code}: {parsed:?}"
        );
        Ok((parsed, code))
    };
    let (plugin, code) = probe_with("20", "35")?;
    ensure!(
        code == 0 && plugin.text.contains("% used"),
        "fresh: {plugin:?}"
    );
    for label in [
        "used",
        "used_percent",
        "unallocated",
        "metadata",
        "global_reserve_used",
        "read_only",
    ] {
        plugin.get(label)?;
    }
    let now = fill_to(&fs, scratch.path(), 0.25)?;
    let (plugin, code) = probe_with("20", "35")?;
    ensure!(
        code == 1 && plugin.status == "WARNING",
        "at {now}: {plugin:?}"
    );
    ensure!(
        plugin.get("used")?.state() == 1 && plugin.get("unallocated")?.state() == 0,
        "{plugin:?}",
    );
    let now = fill_to(&fs, scratch.path(), 0.37)?;
    let (plugin, code) = probe_with("20", "35")?;
    ensure!(
        code == 2 && plugin.status == "CRITICAL",
        "at {now}: {plugin:?}"
    );
    ensure!(plugin.get("used")?.state() == 2, "{plugin:?}");
    // The thresholds in the perfdata are the ones given.
    let pct = plugin.get("used_percent")?;
    ensure!(
        pct.warn.is_some_and(|r| r.end == 20.0) && pct.crit.is_some_and(|r| r.end == 35.0),
        "{pct:?}",
    );
    Ok(())
}

testkit::register!(prefix "tool"; root: exhausted_unallocated_space_is_critical);
fn exhausted_unallocated_space_is_critical() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let env = Env::new()?;
    let (report, _) = env.doctor(scratch.path(), &[])?;
    ensure!(
        check(&report, "space.unallocated")?.0 == "ok",
        "fresh: {report}"
    );
    let plug = scratch.path().join("plug");
    let mut f = std::fs::File::create(&plug)?;
    let block = vec![0x5Au8; MIB as usize];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
    Filesystem::open(scratch.path())?.sync()?;
    let (report, code) = env.doctor(scratch.path(), &[])?;
    let (status, summary) = check(&report, "space.unallocated")?;
    ensure!(
        status == "critical" && summary.contains("unallocated"),
        "{summary}"
    );
    ensure!(code == 2, "exit {code}");
    let (plugin, code) = probe(&env, scratch.path())?;
    let unallocated = plugin.get("unallocated")?;
    ensure!(code == 2 && unallocated.state() == 2, "{plugin:?}");
    // "Below" thresholds use the range syntax N: (alert below N).
    ensure!(
        unallocated
            .crit
            .is_some_and(|r| r.end.is_infinite() && r.start > unallocated.value),
        "{unallocated:?}",
    );
    Ok(())
}

testkit::register!(prefix "tool"; root: a_paused_balance_is_a_warning);
fn a_paused_balance_is_a_warning() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(2048 * MIB)?;
    let block = vec![0x3Cu8; 32 * MIB as usize];
    for i in 0..24 {
        std::fs::write(scratch.path().join(format!("f{i}")), &block)?;
    }
    let fs = Filesystem::open(scratch.path())?;
    fs.sync()?;
    let handle = fs.balance_background(&Balance::new().data(ChunkFilters::all()))?;
    ensure!(
        handle.wait_running(Duration::from_secs(30))?,
        "balance never ran"
    );
    handle.pause()?;
    let outcome = handle.wait()?;
    ensure!(matches!(outcome, BalanceOutcome::Paused(_)), "{outcome:?}");
    let env = Env::new()?;
    let result = (|| {
        let (report, code) = env.doctor(scratch.path(), &[])?;
        let (status, summary) = check(&report, "state.balance")?;
        ensure!(
            status == "warning" && summary.contains("paused"),
            "{summary}"
        );
        let (status, summary) = check(&report, "state.exclusive-operation")?;
        ensure!(
            status == "warning" && summary.contains("paused"),
            "{summary}"
        );
        ensure!(code >= 1, "exit {code}");
        Ok(())
    })();
    fs.balance_cancel()?;
    let (report, _) = env.doctor(scratch.path(), &[])?;
    ensure!(
        check(&report, "state.balance")?.0 == "ok",
        "after cancel: {report}"
    );
    result
}

testkit::register!(prefix "tool"; root: a_read_only_mount_is_critical);
fn a_read_only_mount_is_critical() -> Result<(), Failed> {
    let options = BtrfsOptions {
        mount_options: "ro".into(),
        ..BtrfsOptions::default()
    };
    let scratch = Scratch::new(512 * MIB, FsKind::Btrfs(options))?;
    let env = Env::new()?;
    let (report, code) = env.doctor(scratch.path(), &[])?;
    let (status, summary) = check(&report, "state.read-only")?;
    ensure!(
        status == "critical" && summary.contains("read-only"),
        "{summary}"
    );
    ensure!(code == 2, "exit {code}");
    let (plugin, code) = probe(&env, scratch.path())?;
    ensure!(
        code == 2 && plugin.get("read_only")?.value == 1.0,
        "{plugin:?}"
    );
    Ok(())
}

testkit::register!(prefix "tool"; root: orphans_and_missing_layers_are_found_and_orphans_removed);
fn orphans_and_missing_layers_are_found_and_orphans_removed() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let root = scratch.path();
    let fs = Filesystem::open(root)?;
    fs.enable_quota()?;
    fs.wait_quota_rescan()?;
    // Two image layers (the second a snapshot of the first), a container with its init layer,
    // a reference to a layer that is gone, and two orphans holding 4 MiB of their own.
    layout::image_layer(root, 101, 1, None)?;
    std::fs::write(
        layout::subvolumes(root).join(layout::id(1)).join("bin"),
        vec![1u8; MIB as usize],
    )?;
    layout::image_layer(root, 102, 2, Some(1))?;
    layout::container(root, 201, 3, 2)?;
    layout::put(
        root,
        &format!("image/btrfs/layerdb/sha256/{}/cache-id", layout::id(103)),
        &layout::id(4),
    )?;
    let orphan = layout::subvolumes(root).join(layout::id(9));
    btrfs_kit::subvolume::create(&orphan)?;
    std::fs::write(orphan.join("data"), vec![7u8; 4 * MIB as usize])?;
    btrfs_kit::subvolume::create(layout::subvolumes(root).join(format!("{}-init", layout::id(9))))?;
    // What `docker run` on a full disk leaves: a mount whose mount-id is empty.
    layout::put(
        root,
        &format!("image/btrfs/layerdb/mounts/{}/mount-id", layout::id(202)),
        "",
    )?;
    // What a kill during `docker rm` and a second `rm -f` leave: the record of a container
    // that is gone, its read-write layer deleted, its init layer not.
    let stale_init = format!("{}-init", layout::id(12));
    btrfs_kit::subvolume::create(layout::subvolumes(root).join(&stale_init))?;
    let stale = root.join(format!("image/btrfs/layerdb/mounts/{}", layout::id(203)));
    layout::put(
        root,
        &format!("image/btrfs/layerdb/mounts/{}/mount-id", layout::id(203)),
        &layout::id(12),
    )?;
    layout::put(
        root,
        &format!("image/btrfs/layerdb/mounts/{}/init-id", layout::id(203)),
        &stale_init,
    )?;
    // BuildKit's build cache: a subvolume named by BuildKit's ids, not the layer store's.
    let buildkit = layout::subvolumes(root).join("ulzs4d6o7y8i4p3uq0nnf5e9o");
    btrfs_kit::subvolume::create(&buildkit)?;
    fs.sync()?;
    fs.rescan_quota()?;
    fs.wait_quota_rescan()?;

    let env = Env::new()?;
    let (report, _) = env.doctor(root, &[])?;
    let (status, summary) = check(&report, "docker.orphans")?;
    ensure!(
        status == "warning"
            && summary.starts_with("3 of 8 layer subvolumes are orphans")
            && summary.contains("1 layer record(s) of containers that no longer exist")
            && summary.contains("1 subvolume(s) not named like Docker's layers"),
        "{summary}",
    );
    ensure!(
        summary.contains("4.0") && summary.contains("MiB of their own"),
        "exclusive bytes: {summary}",
    );
    ensure!(
        summary.contains("mount-id: empty"),
        "the skipped reference: {summary}"
    );
    let want = [
        layout::id(9),
        format!("{}-init", layout::id(9)),
        stale_init.clone(),
    ];
    ensure!(
        items(&report, "docker.orphans")? == want,
        "orphans listed: {report}"
    );
    let (status, summary) = check(&report, "docker.missing-layers")?;
    ensure!(
        status == "critical" && summary.contains(&layout::id(4)),
        "{summary}"
    );
    let missing = items(&report, "docker.missing-layers")?;
    ensure!(
        missing.len() == 1 && missing[0].starts_with(&layout::id(4)),
        "missing listed: {missing:?}",
    );

    let (report, _) = env.doctor(root, &["--fix-orphans"])?;
    let removed: Vec<&str> = report["fixes"]["orphans"]["removed"]
        .as_array()
        .ok_or_else(|| format!("no removal list: {report}"))?
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    ensure!(removed == want, "removed {removed:?}");
    ensure!(!orphan.exists(), "the orphan is still there");
    let records = &report["fixes"]["orphans"]["records_removed"];
    ensure!(
        !stale.exists() && records.as_array().map(Vec::len) == Some(1),
        "the stale record: {records}",
    );
    ensure!(buildkit.exists(), "a foreign subvolume was deleted");
    for kept in [
        layout::id(1),
        layout::id(2),
        layout::id(3),
        format!("{}-init", layout::id(3)),
    ] {
        ensure!(
            layout::subvolumes(root).join(&kept).exists(),
            "{kept} was deleted"
        );
    }
    ensure!(
        check(&report, "docker.orphans")?.0 == "ok",
        "after the fix: {report}"
    );
    Ok(())
}

testkit::register!(prefix "tool"; root: inconsistent_quotas_warn_and_fix_rescans);
fn inconsistent_quotas_warn_and_fix_rescans() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let fs = Filesystem::open(scratch.path())?;
    fs.enable_quota()?;
    fs.wait_quota_rescan()?;
    let a = scratch.path().join("a");
    btrfs_kit::subvolume::create(&a)?;
    std::fs::write(a.join("data"), vec![9u8; 8 * MIB as usize])?;
    btrfs_kit::subvolume::snapshot(
        &a,
        scratch.path().join("b"),
        &btrfs_kit::subvolume::SnapshotOptions::writable(),
    )?;
    fs.sync()?;
    // Shared extents: the kernel cannot update a parent qgroup at once and marks the counts
    // inconsistent (what Docker's qgroup handling of removed containers also causes).
    use btrfs_kit::quota::QgroupId;
    let parent = QgroupId::new(1, 100);
    fs.create_qgroup(parent)?;
    let id = btrfs_kit::subvolume::subvolume_id(&a)?;
    let marked = fs.assign_qgroup(QgroupId::subvolume(id), parent)?;
    ensure!(marked, "the kernel did not mark the qgroups inconsistent");
    let env = Env::new()?;
    let (report, _) = env.doctor(scratch.path(), &[])?;
    let (status, summary) = check(&report, "quota.consistency")?;
    ensure!(
        status == "warning" && summary.contains("inconsistent"),
        "{summary}"
    );
    let (report, _) = env.doctor(scratch.path(), &["--fix"])?;
    ensure!(report["fixes"]["quota_rescan"] == "done", "{report}");
    ensure!(
        check(&report, "quota.consistency")?.0 == "ok",
        "after --fix: {report}"
    );
    ensure!(
        fs.quota_status()?.is_some_and(|s| !s.inconsistent),
        "the kernel still says inconsistent",
    );
    Ok(())
}

testkit::register!(prefix "tool"; root: quotas_with_many_subvolumes_warn);
fn quotas_with_many_subvolumes_warn() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let fs = Filesystem::open(scratch.path())?;
    fs.enable_quota()?;
    fs.wait_quota_rescan()?;
    // Five subvolumes and the top level: six subvolume qgroups.
    for i in 0..5 {
        btrfs_kit::subvolume::create(scratch.path().join(format!("s{i}")))?;
    }
    let env = Env::new()?;
    let (report, _) = env.doctor(scratch.path(), &[])?;
    ensure!(
        check(&report, "quota.subvolumes")?.0 == "ok",
        "default threshold: {report}"
    );
    std::fs::write(env.config(), "[thresholds]\nquota_subvolumes = 3\n")?;
    let (report, _) = env.doctor(scratch.path(), &[])?;
    let (status, summary) = check(&report, "quota.subvolumes")?;
    ensure!(
        status == "warning" && summary.contains("6 subvolume qgroups"),
        "{summary}"
    );
    Ok(())
}

testkit::register!(prefix "tool"; root: daemon_json_is_judged);
fn daemon_json_is_judged() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(256 * MIB)?;
    let env = Env::new()?;
    let file = env.docker_dir().join("daemon.json");
    for (content, want) in [
        (
            r#"{"storage-driver": "btrfs", "log-driver": "journald"}"#,
            "ok",
        ),
        (r#"{"storage-driver": "overlay2"}"#, "critical"),
        (r#"{"log-driver": "journald"}"#, "warning"),
        // The containerd image store with its btrfs snapshotter is a btrfs store too.
        (
            r#"{"storage-driver": "btrfs", "features": {"containerd-snapshotter": true}}"#,
            "ok",
        ),
        (
            r#"{"storage-driver": "overlayfs", "features": {"containerd-snapshotter": true}}"#,
            "critical",
        ),
        ("{not json", "critical"),
    ] {
        std::fs::write(&file, content)?;
        let (report, _) = env.doctor(scratch.path(), &[])?;
        let (status, summary) = check(&report, "docker.storage-driver.configured")?;
        ensure!(status == want, "{content}: {status} {summary}");
    }
    Ok(())
}

testkit::register!(prefix "tool"; root: a_running_btrfs_dockerd_is_ok_and_blocks_provision_and_orphan_removal);
fn a_running_btrfs_dockerd_is_ok_and_blocks_provision_and_orphan_removal() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let env = Env::new()?;
    let daemon =
        support::dockerd::Dockerd::start(scratch.path(), "btrfs", &env.socket(), &env.pidfile())?;
    let (report, _) = env.doctor(scratch.path(), &[])?;
    let (status, summary) = check(&report, "docker.storage-driver.running")?;
    ensure!(
        status == "ok" && summary.contains("btrfs"),
        "{summary}\n{}",
        daemon.log()
    );
    // Docker's own (empty) layout has nothing orphaned.
    ensure!(check(&report, "docker.orphans")?.0 == "ok", "{report}");
    let out = env.run(&[
        "provision",
        "--vg",
        "dockroottestvg",
        "--size",
        "1g",
        "--mount",
        s(&env.root().join("mnt"))?,
    ])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(4)
            && stderr.contains("Docker is running")
            && stderr.contains(&format!("pid {}", daemon.pid())),
        "provision: {}",
        text(&out),
    );
    let (report, _) = env.doctor(scratch.path(), &["--fix-orphans"])?;
    let refused = report["fixes"]["orphans"]["refused"].as_str().unwrap_or("");
    ensure!(refused.contains("Docker is running"), "{report}");
    Ok(())
}

testkit::register!(prefix "tool"; root: a_daemon_running_another_driver_is_critical);
fn a_daemon_running_another_driver_is_critical() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let env = Env::new()?;
    let root = scratch.path().join("docker");
    std::fs::create_dir(&root)?;
    let _daemon = support::dockerd::Dockerd::start(&root, "vfs", &env.socket(), &env.pidfile())?;
    let (report, code) = env.doctor(&root, &[])?;
    let (status, summary) = check(&report, "docker.storage-driver.running")?;
    ensure!(
        status == "critical" && summary.contains("vfs"),
        "{status}: {summary}"
    );
    ensure!(code == 2, "exit {code}");
    Ok(())
}

testkit::register!(prefix "tool"; root: a_fresh_data_root_passes_every_check_it_can_judge);
fn a_fresh_data_root_passes_every_check_it_can_judge() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let env = Env::new()?;
    std::fs::write(
        env.docker_dir().join("daemon.json"),
        r#"{"storage-driver": "btrfs"}"#,
    )?;
    let _daemon =
        support::dockerd::Dockerd::start(scratch.path(), "btrfs", &env.socket(), &env.pidfile())?;
    let (report, _) = env.doctor(scratch.path(), &[])?;
    for c in report["checks"].as_array().ok_or("no checks")? {
        let (id, status) = (
            c["id"].as_str().unwrap_or(""),
            c["status"].as_str().unwrap_or(""),
        );
        ensure!(status == "ok", "{id}: {status}: {}", c["summary"]);
    }
    Ok(())
}

testkit::register!(prefix "tool"; root: damaged_data_shows_in_device_errors_and_the_last_scrub);
/// Real damage: a data block's bytes changed in the backing image while unmounted. Reading
/// the file then fails its checksum (the device's corruption counter rises), and a scrub (by
/// btrfs-kit, recording its state where the doctor looks) finds it uncorrectable on single data.
fn damaged_data_shows_in_device_errors_and_the_last_scrub() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let file = scratch.path().join("layer.tar");
    std::fs::write(&file, vec![0x6Bu8; 4 * MIB as usize])?;
    let fs = Filesystem::open(scratch.path())?;
    fs.sync()?;
    let extent = btrfs_kit::fiemap::FiemapReader::new()
        .extents_of_path(&file)?
        .into_iter()
        .next()
        .ok_or("no extent")?;
    let logical = extent.physical.bytes();
    let chunk = fs
        .chunks()?
        .into_iter()
        .find(|c| c.logical <= logical && logical < c.logical + c.length.bytes())
        .ok_or("no chunk")?;
    ensure!(chunk.stripes.len() == 1, "single data expected: {chunk:?}");
    let physical = chunk.stripes[0].offset + (logical - chunk.logical);
    drop(fs);
    let image = scratch.into_image()?;
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(image.path())?;
        f.write_all_at(&[0u8; 4096], physical)?;
        f.sync_all()?;
    }
    let scratch = Scratch::mount_image(image, FsKind::Btrfs(BtrfsOptions::default()))?;
    let env = Env::new()?;
    let state_dir = env.root().join("scrub-state");
    std::fs::write(
        env.config(),
        format!("[paths]\nscrub_state_dir = \"{}\"\n", state_dir.display()),
    )?;
    let (report, _) = env.doctor(scratch.path(), &[])?;
    ensure!(
        check(&report, "health.device-errors")?.0 == "ok",
        "before reading: {report}"
    );
    ensure!(
        check(&report, "health.scrub")?.0 == "ok",
        "fresh filesystem: {report}"
    );
    let read = std::fs::read(scratch.path().join("layer.tar"));
    ensure!(read.is_err(), "the damaged file read back fine");
    let (report, code) = env.doctor(scratch.path(), &[])?;
    let (status, summary) = check(&report, "health.device-errors")?;
    ensure!(
        status == "warning" && summary.contains("corruption_errs"),
        "{status}: {summary}"
    );
    ensure!(code >= 1, "exit {code}");
    let fs = Filesystem::open(scratch.path())?;
    let outcome = fs.scrub(&btrfs_kit::scrub::ScrubRequest::new().state_dir(&state_dir))?;
    ensure!(
        outcome.verdict == btrfs_kit::scrub::ScrubVerdict::Uncorrectable,
        "{:?}",
        outcome.verdict,
    );
    let (report, code) = env.doctor(scratch.path(), &[])?;
    let (status, summary) = check(&report, "health.scrub")?;
    ensure!(
        status == "critical" && summary.contains("uncorrectable"),
        "{status}: {summary}"
    );
    ensure!(code == 2, "exit {code}");
    Ok(())
}

testkit::register!(prefix "tool"; plain: provision_refuses_names_that_would_inject_options);
fn provision_refuses_names_that_would_inject_options() -> Result<(), Failed> {
    let env = Env::new()?;
    let mnt = env.root().join("mnt");
    let mnt = s(&mnt)?;
    for (args, word) in [
        (vec!["--lv", "docker,ro"], "docker,ro"),
        (vec!["--lv=-docker"], "-docker"),
        (
            vec!["--mount-options", "noatime 0 0\n/dev/sda / ext4"],
            "mount option",
        ),
        (vec!["--mount-options", "noatime,"], "mount option"),
        (vec!["--label", "a\nb"], "label"),
    ] {
        let mut all = vec!["provision", "--vg", "vg0", "--size", "10g", "--mount", mnt];
        all.extend(args.iter());
        let out = env.run(&all)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.code() == Some(4) && stderr.contains("refused") && stderr.contains(word),
            "{args:?}: {}",
            text(&out),
        );
    }
    let out = env.run(&[
        "provision",
        "--vg",
        "vg0",
        "--size",
        "10g",
        "--mount",
        "/var/lib/../docker",
    ])?;
    ensure!(
        out.status.code() == Some(4),
        "relative mount point: {}",
        text(&out)
    );
    // A size without a unit is a usage error (lvm2 would read MiB, people often mean bytes).
    let out = env.run(&["provision", "--vg", "vg0", "--size", "100", "--mount", mnt])?;
    ensure!(
        out.status.code() == Some(3) && String::from_utf8_lossy(&out.stderr).contains("100g"),
        "{}",
        text(&out),
    );
    ensure!(
        !Path::new(mnt).exists(),
        "a refusal created the mount point"
    );
    Ok(())
}

testkit::register!(prefix "tool"; plain: a_closed_stdout_ends_doctor_and_check_quietly);
fn a_closed_stdout_ends_doctor_and_check_quietly() -> Result<(), Failed> {
    let env = Env::new()?;
    for args in [
        vec!["doctor", "/"],
        vec!["doctor", "/", "--json"],
        vec!["check", "/"],
        vec!["--help"],
    ] {
        let (reader, writer) = nix::unistd::pipe()?;
        drop(reader);
        let out = Command::new(support::bin())
            .args(env.args())
            .args(&args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        // --help is printed by clap, which ignores the error and exits 0.
        let quiet = out.status.signal() == Some(nix::libc::SIGPIPE)
            || (args == ["--help"] && out.status.code() == Some(0));
        ensure!(quiet, "{args:?}: {}", text(&out));
    }
    Ok(())
}

testkit::register!(prefix "tool"; plain: a_missing_path_is_unknown_to_the_probe);
fn a_missing_path_is_unknown_to_the_probe() -> Result<(), Failed> {
    let env = Env::new()?;
    let (plugin, code) = probe(&env, &env.root().join("nonexistent"))?;
    ensure!(code == 3 && plugin.status == "UNKNOWN", "{plugin:?}");
    let out = env.run(&["doctor", s(&env.root().join("nonexistent"))?])?;
    ensure!(out.status.code() == Some(2), "doctor: {}", text(&out));
    Ok(())
}
