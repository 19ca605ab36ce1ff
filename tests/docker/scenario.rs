//! The whole scenario, in order (issue 13): dockerd on our btrfs, an image built without
//! network, a web container, the filesystem filled to the brim and emptied again with our usage
//! and balance examples, the references Docker keeps against the subvolumes we list (with the
//! orphans made on purpose), and quotas. Each step is timed; the table is printed at the end.

use crate::crash::{self, When};
use crate::daemon::Dockerd;
use crate::data::MIB;
use crate::example_bin::{json, run};
use crate::filling::{plug_while_served, policy, policy_when_full_step, unplug_while_served};
use crate::image::{self, PAGE};
use crate::layout::{expected_orphans, subvolumes_dir, Layout};
use crate::report::Report;
use crate::tool::{Doctor, Tool};
use btrfs_kit::{subvolume, Filesystem};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use testkit::ensure;
use testkit::fixture::Scratch;
use testkit::harness::Failed;
use testkit::kmsg::{device_name, KmsgWatch};

/// The loop filesystem's size.
const SIZE: u64 = 1024 * MIB;
pub use crate::image::{APP, BASE};
/// A one-layer image on top of the app, built to be removed.
const EXTRA: &str = "btrfs-lvm-extra:1";
/// The kernel message a removed capped container can cause (step 7); any other btrfs warning
/// or error about our device fails the test.
pub const QGROUP_INCONSISTENT: &str = "qgroup marked inconsistent";

/// A btrfs made by our mkfs on a loop device, mounted, with a private dockerd on it.
pub struct Rig {
    // Field order is drop order: dockerd goes before its filesystem.
    pub docker: Dockerd,
    pub scratch: Scratch,
}

impl Rig {
    /// Makes the filesystem and starts dockerd; also how long dockerd took to answer.
    pub fn new(size: u64) -> Result<(Self, Duration), Failed> {
        let scratch = Scratch::btrfs(size)?;
        let (docker, took) = Dockerd::start(scratch.path())?;
        Ok((Rig { docker, scratch }, took))
    }

    /// The data root: the filesystem's top level.
    pub fn root(&self) -> &Path {
        self.scratch.path()
    }

    /// The layer subvolumes and references now.
    pub fn layout(&self) -> Result<Layout, Failed> {
        Layout::read(self.root())
    }
}

testkit::register!(prefix "docker"; root: btrfs_driver_on_our_filesystem_end_to_end);
fn btrfs_driver_on_our_filesystem_end_to_end() -> Result<(), Failed> {
    steps(&mut Report::new("docker-report"))
}

fn steps(report: &mut Report) -> Result<(), Failed> {
    let mut kmsg = KmsgWatch::start()?;
    let mut rig = report.step("1 dockerd on a btrfs made by our mkfs", |_| {
        let (rig, took) = Rig::new(SIZE)?;
        Ok((
            rig,
            format!(
                "API answered {:.2} s after start (private data root, exec root, socket, config)",
                took.as_secs_f64()
            ),
        ))
    })?;
    let device = device_name(rig.scratch.device());
    let versions = rig.docker.ok(&[
        "version",
        "--format",
        "server {{.Server.Version}}, client {{.Client.Version}}",
    ])?;
    report.fact("docker", versions);
    let tool = Tool::new(&rig)?;

    image_and_info(&rig, report)?;
    let port = web(&rig, report)?;
    let full_orphans = fill(&rig, &tool, report, port)?;
    references(&mut rig, &tool, report, &full_orphans)?;
    let broken = crate::quota::run(&rig, &tool, report)?;

    report.step("8 dockerd stopped by its pid", |r| {
        let took = rig.docker.stop()?;
        let left = rig.docker.mounts();
        r.fact(
            "mounts_left_by_a_stopped_dockerd",
            left.iter()
                .map(|m| m.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
        );
        ensure!(
            left.iter().all(|m| m.ends_with("netns/default")),
            "dockerd left mounts besides its nsfs: {left:?}",
        );
        Ok((
            (),
            format!(
                "SIGTERM: exited in {:.1} s, its containerd and shims with it; it left {} nsfs mount at <exec-root>/netns/default",
                took.as_secs_f64(),
                left.len()
            ),
        ))
    })?;
    report.step("8 teardown", |_| {
        let Rig { docker, scratch } = rig;
        docker.close()?;
        drop(scratch);
        Ok((
            (),
            "nsfs unmounted, cgroups removed, no process, mount or cgroup of the tier left"
                .to_string(),
        ))
    })?;
    report.step("kernel log of the loop device", |_| {
        let problems = kmsg.problems(&device)?;
        let (expected, others): (Vec<String>, Vec<String>) = problems
            .into_iter()
            .partition(|p| p.contains(QGROUP_INCONSISTENT));
        ensure!(
            others.is_empty(),
            "kernel logged btrfs problems on {device}:\n{}",
            others.join("\n"),
        );
        ensure!(
            expected.is_empty() || broken,
            "the kernel marked qgroups inconsistent, our status never did: {expected:?}",
        );
        Ok((
            (),
            if expected.is_empty() {
                "no btrfs warning or error".to_string()
            } else {
                format!("only the expected warning: {}", expected.join("; "))
            },
        ))
    })?;
    Ok(())
}

/// Steps 2 and 3: the image (import, then four layers built with no network) and `docker info`.
fn image_and_info(rig: &Rig, report: &mut Report) -> Result<(), Failed> {
    let d = &rig.docker;
    report.step("2 image with no network: import + `docker build`", |_| {
        image::import_busybox(d, BASE)?;
        let files = image::build_app(d, BASE, APP)?;
        let layers = image::layer_count(d, APP)?;
        ensure!(layers == 5, "{APP} has {layers} layers, expected 5");
        let layout = rig.layout()?;
        ensure!(
            layout.subvolumes.len() == layers && layout.image_layers.len() == layers && layout.image_layers.iter().eq(layout.subvolumes.keys()) && layout.container_layers.is_empty(),
            "after the build: {layout:?}",
        );
        // Each layer above the import is a snapshot of the one below it.
        let dir = subvolumes_dir(rig.root());
        let mut uuids = BTreeSet::new();
        let mut parents = BTreeSet::new();
        for name in layout.subvolumes.keys() {
            let info = subvolume::info(dir.join(name))?;
            uuids.extend(info.uuid);
            parents.extend(info.parent_uuid);
        }
        ensure!(
            parents.len() == layers - 1 && parents.is_subset(&uuids),
            "{} of {layers} layers are snapshots of another layer",
            parents.len(),
        );
        image::check_files(d, APP, &files)?;
        ensure!(rig.layout()?.subvolumes.len() == layers, "a `run --rm` left subvolumes");
        Ok((
            (),
            format!(
                "{layers} layers = {layers} subvolumes, {} of them snapshots; 3 files of different sizes intact in a container",
                layers - 1
            ),
        ))
    })?;
    report.step("3 `docker info`", |_| {
        d.ensure_btrfs_on_data_root()?;
        Ok((
            (),
            "Storage Driver: btrfs, root dir on our filesystem".to_string(),
        ))
    })
}

/// Step 4: the web container; returns its port.
fn web(rig: &Rig, report: &mut Report) -> Result<u16, Failed> {
    report.step("4 httpd container on 127.0.0.1", |_| {
        let before = rig.layout()?;
        let port = image::serve(&rig.docker, "web", APP)?;
        let after = rig.layout()?;
        ensure!(
            after.subvolumes.len() == before.subvolumes.len() + 2 && after.container_layers.len() == 2 && after.orphans().is_empty(),
            "after docker run: {after:?}",
        );
        Ok((
            port,
            "page fetched (host network, --init); the container added 2 subvolumes (layer, init layer)"
                .to_string(),
        ))
    })
}

/// Step 5: fill to ENOSPC, everything that must still work, empty again. Returns the orphans the
/// failed `docker run` left.
fn fill(
    rig: &Rig,
    tool: &Tool,
    report: &mut Report,
    port: u16,
) -> Result<BTreeSet<String>, Failed> {
    let root = rig.root();
    let root_arg = root.to_str().ok_or("path")?;
    let fs = Filesystem::open(root)?;
    let mut plugs = Vec::new();
    report.step("5 filled to ENOSPC with a plug file", |_| {
        plug_while_served(&fs, &mut plugs, port)
    })?;
    let orphans = report.step("5 `docker run` on the full filesystem", |r| {
        let before = rig.layout()?;
        let out = rig
            .docker
            .docker(&["run", "--network", "host", "--init", APP, "true"])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.code() == Some(125) && stderr.contains("no space left on device"),
            "docker run on a full filesystem: {}: {stderr}",
            out.status,
        );
        let after = rig.layout()?;
        let new: BTreeSet<String> = after
            .subvolumes
            .keys()
            .filter(|n| !before.subvolumes.contains_key(*n))
            .cloned()
            .collect();
        let pair = new
            .iter()
            .find_map(|n| n.strip_suffix("-init"))
            .map(|id| BTreeSet::from([id.to_string(), format!("{id}-init")]));
        ensure!(
            pair.as_ref() == Some(&new) && new.is_subset(&after.orphans()),
            "the failed run left subvolumes {new:?}; orphans now {:?}",
            after.orphans(),
        );
        let empty_mount_ids = empty_mount_ids(root)?;
        r.fact("full_run_empty_mount_ids", empty_mount_ids);
        Ok((
            new,
            format!(
                "exit 125 (ENOSPC writing its mount-id); left `<id>` and `<id>-init`, referenced by nothing ({empty_mount_ids} empty mount-id file)"
            ),
        ))
    })?;
    report.step("5 usage example when full", |_| {
        let out = run("usage", &[root_arg, "--json"])?;
        let json = json(&out)?;
        let data = json["data_used_percent"].as_f64().unwrap_or_default();
        ensure!(
            out.status.code() == Some(3) && json["over_threshold"] == true && data > 80.0,
            "usage on a full filesystem: {}: {json}",
            out.status,
        );
        Ok(((), format!("exit 3 (over 80 %): data {data:.1} % used")))
    })?;
    report.step("5 `dockroot doctor` and `check` when full", |r| {
        let (doctor, unallocated) = doctor_and_check(tool, &fs, 2)?;
        ensure!(
            doctor.status("space.used")? == "critical" && doctor.figure("space.used", "used_percent")?.0 > 99.0,
            "full: {}",
            doctor.summary("space.used")?,
        );
        let (figure, crit) = doctor.figure("space.unallocated", "unallocated")?;
        ensure!(
            doctor.status("space.unallocated")? == "critical" && figure == unallocated as f64 && crit.is_some_and(|c| figure < c),
            "full, {unallocated} bytes unallocated: {}, figure {figure}, critical below {crit:?}",
            doctor.summary("space.unallocated")?,
        );
        ensure!(
            doctor.status("docker.orphans")? == "warning" && doctor.items("docker.orphans")? == expected_orphans(root)?,
            "full: {} {:?}, expected {:?}",
            doctor.summary("docker.orphans")?,
            doctor.items("docker.orphans")?,
            expected_orphans(root)?,
        );
        let not_ok = doctor.not_ok();
        r.fact("doctor_not_ok_when_full", not_ok.iter().cloned().collect::<Vec<_>>().join(" "));
        ensure!(
            not_ok.iter().all(|id| ["space.used", "space.unallocated", "space.metadata", "space.global-reserve", "docker.orphans"].contains(&id.as_str())),
            "checks not ok when full: {not_ok:?}",
        );
        Ok((
            (),
            format!(
                "doctor exit 2: data used critical ({:.1} %), unallocated critical ({}, below the next metadata chunk), the 2 orphans of the full run listed; check exit 2 CRITICAL, perfdata parsed: used and unallocated past their critical ranges",
                doctor.figure("space.used", "used_percent")?.0,
                btrfs_kit::ByteSize(unallocated)
            ),
        ))
    })?;
    policy_when_full_step(report, root_arg)?;
    report.step("5 plug removed", |_| {
        unplug_while_served(&fs, &plugs, port)?;
        let before = rig.layout()?;
        rig.docker
            .ok(&["run", "--rm", "--network", "none", APP, "true"])?;
        ensure!(rig.layout()? == before, "a `docker run --rm` after the plug left subvolumes");
        let (relocated, steps) = policy(root_arg)?;
        let out = run("usage", &[root_arg, "--json"])?;
        ensure!(
            out.status.code() == Some(0),
            "usage after the plug: {}: {}",
            out.status,
            json(&out)?,
        );
        Ok((
            (),
            format!(
                "page served, `docker run` works; policy exit 0 ({steps}), relocated {relocated}; usage exit 0"
            ),
        ))
    })?;
    report.step("5 `dockroot doctor` and `check` after the plug", |_| {
        let (doctor, _) = doctor_and_check(tool, &fs, 0)?;
        ensure!(
            doctor.status("space.used")? == "ok" && doctor.status("space.unallocated")? == "ok",
            "after the plug: {}; {}",
            doctor.summary("space.used")?,
            doctor.summary("space.unallocated")?,
        );
        ensure!(
            doctor.code == 1 && doctor.not_ok() == BTreeSet::from(["docker.orphans".to_string()]),
            "after the plug, doctor exit {}, not ok: {:?}",
            doctor.code,
            doctor.not_ok(),
        );
        Ok((
            (),
            format!(
                "check exit 0 OK ({:.1} % used); doctor exit 1: every check ok but the orphans",
                doctor.figure("space.used", "used_percent")?.0
            ),
        ))
    })?;
    Ok(orphans)
}

/// Runs `doctor` and `check` and checks what they share: `check` exits `code`, its status line
/// agrees, its used and unallocated perfdata stand for that state and equal the doctor's
/// figures, which equal our library's reading of the chunk tree taken around both runs (the
/// allocation must not move meanwhile). The doctor's report and that reading.
fn doctor_and_check(tool: &Tool, fs: &Filesystem, code: i32) -> Result<(Doctor, u64), Failed> {
    let unallocated = fs.usage()?.unallocated().bytes();
    let doctor = tool.doctor(&[])?;
    let (probe, probe_code) = tool.check()?;
    let after = fs.usage()?.unallocated().bytes();
    ensure!(
        after == unallocated,
        "the allocation moved while the tool looked: {unallocated} -> {after} bytes unallocated",
    );
    ensure!(
        probe_code == code,
        "check exit {probe_code}, expected {code}: {} - {}",
        probe.status,
        probe.text,
    );
    for (label, check) in [
        ("used", "space.used"),
        ("used_percent", "space.used"),
        ("unallocated", "space.unallocated"),
    ] {
        let perf = probe.get(label)?;
        let state = i32::from(perf.state());
        let (value, _) = doctor.figure(check, label)?;
        ensure!(
            perf.value.round() == value.round()
                || (label == "used_percent" && (perf.value - value).abs() < 0.01),
            "perfdata {label}={} but the doctor's figure is {value}",
            perf.value,
        );
        let judged = match doctor.status(check)? {
            "ok" => 0,
            "warning" => 1,
            "critical" => 2,
            other => return Err(format!("{check}: {other}").into()),
        };
        ensure!(
            state == judged && state <= code,
            "perfdata {perf:?} stands for state {state}; the doctor judged {check} {judged}; check exit {code}",
        );
    }
    ensure!(
        probe.get("unallocated")?.value == unallocated as f64,
        "perfdata unallocated {} but the chunk tree leaves {unallocated}",
        probe.get("unallocated")?.value,
    );
    for id in [
        "docker.storage-driver.configured",
        "docker.storage-driver.running",
    ] {
        ensure!(doctor.status(id)? == "ok", "{}", doctor.summary(id)?);
    }
    Ok((doctor, unallocated))
}

/// How many `layerdb/mounts/*/mount-id` files are empty.
fn empty_mount_ids(root: &Path) -> Result<usize, Failed> {
    let dir = root.join("image/btrfs/layerdb/mounts");
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let file = e?.path().join("mount-id");
        if std::fs::read(&file).is_ok_and(|c| c.is_empty()) {
            n += 1;
        }
    }
    Ok(n)
}

/// A name like Docker's layer ids (64 hex digits), different each run.
fn layer_like_name(seed: &str) -> String {
    let mut h = Sha256::new();
    h.update(seed.as_bytes());
    h.update(format!("{:?}", std::time::SystemTime::now()).as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Step 6: what Docker references against what we list; `rm`/`rmi`; orphans made on purpose.
fn references(
    rig: &mut Rig,
    tool: &Tool,
    report: &mut Report,
    full_orphans: &BTreeSet<String>,
) -> Result<(), Failed> {
    let root = rig.root().to_path_buf();
    report.step("6 subvolumes vs Docker's references", |_| {
        let layout = rig.layout()?;
        ensure!(
            layout.orphans() == *full_orphans && layout.dangling().is_empty(),
            "orphans {:?} (expected {full_orphans:?}), dangling {:?}",
            layout.orphans(),
            layout.dangling(),
        );
        let counted = layout.image_layers.len() + layout.container_layers.len() + full_orphans.len();
        ensure!(
            counted == layout.subvolumes.len(),
            "{} subvolumes, {counted} accounted for",
            layout.subvolumes.len(),
        );
        Ok((
            (),
            format!(
                "{} subvolumes = {} image layers + {} container layers + {} orphans of the full run",
                layout.subvolumes.len(),
                layout.image_layers.len(),
                layout.container_layers.len(),
                full_orphans.len()
            ),
        ))
    })?;
    report.step(
        "6 `docker build` + `rmi`, `docker rm`: the counts follow",
        |_| {
            let d = &rig.docker;
            let start = rig.layout()?;
            image::build(
                d,
                EXTRA,
                &format!("FROM {APP}\nCOPY extra /data/extra\n"),
                &[("extra", 77_777)],
            )?;
            let built = rig.layout()?;
            ensure!(
                built.subvolumes.len() == start.subvolumes.len() + 1,
                "a one-layer build did not add one subvolume",
            );
            d.ok(&["rmi", EXTRA])?;
            ensure!(
                rig.layout()? == start,
                "`docker rmi` did not undo the build"
            );
            d.ok(&["rm", "-f", "web"])?;
            let removed = rig.layout()?;
            ensure!(
                removed.subvolumes.len() == start.subvolumes.len() - 2
                    && removed.container_layers.is_empty()
                    && removed.orphans() == *full_orphans,
                "after `docker rm web`: {removed:?}",
            );
            Ok((
                (),
                format!(
                    "+1 subvolume after the build, -1 after `rmi`, -2 after `rm` ({} left)",
                    removed.subvolumes.len()
                ),
            ))
        },
    )?;
    let stopped = report.step("6 orphan made while dockerd is stopped", |_| {
        rig.docker.stop()?;
        let name = layer_like_name("stopped");
        subvolume::create(subvolumes_dir(&root).join(&name))?;
        let took = rig.docker.restart()?;
        let images = rig.docker.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])?;
        ensure!(images.lines().any(|l| l == APP), "images after restart: {images}");
        let orphans = expected_orphans(&root)?;
        let mut expected = full_orphans.clone();
        expected.insert(name.clone());
        ensure!(orphans == expected, "orphans {orphans:?}, expected {expected:?}");
        Ok((
            name,
            format!(
                "subvolume made with btrfs_kit under btrfs/subvolumes/; restart ({:.2} s) keeps it, unreferenced",
                took.as_secs_f64()
            ),
        ))
    })?;
    let mut expected = full_orphans.clone();
    expected.insert(stopped);
    let killed = report.step("6 SIGKILL of dockerd during `docker run`", |r| {
        // The kill is sent the moment `<id>-init` appears, but on a loaded machine dockerd can
        // finish the container before the signal lands; then nothing is orphaned, the
        // container is complete and listed. That attempt proves nothing: remove the container
        // (its layers go with it) and try again, a bounded number of times.
        const ATTEMPTS: usize = 5;
        let mut late = Vec::new();
        for attempt in 1..=ATTEMPTS {
            let before = rig.docker.ok(&["ps", "-a", "-q", "--no-trunc"])?;
            let crash = crash::kill_on(
                &mut rig.docker,
                When::Created,
                |n| n.ends_with("-init"),
                &["run", "-d", "--network", "none", "--init", APP, "true"],
            )?;
            ensure!(
                crash.survivors.is_empty(),
                "alive after the kill: {}",
                crate::procs::describe(&crash.survivors),
            );
            rig.docker.restart()?;
            let orphans = expected_orphans(&root)?;
            let id = crash.trigger.trim_end_matches("-init").to_string();
            let new: BTreeSet<String> = orphans.difference(&expected).cloned().collect();
            let allowed = BTreeSet::from([id.clone(), crash.trigger.clone()]);
            ensure!(
                expected.is_subset(&orphans) && new.is_subset(&allowed),
                "orphans {orphans:?}: expected {expected:?} plus some of {allowed:?}",
            );
            let listed = rig.docker.ok(&["ps", "-a", "-q", "--no-trunc"])?;
            let created: Vec<&str> = listed
                .lines()
                .filter(|l| !before.lines().any(|b| b == *l))
                .collect();
            if new.is_empty() {
                // Too late: Docker finished `run` (or at least the container) first.
                ensure!(
                    created.len() == 1,
                    "attempt {attempt}: no orphan and {} new container(s) listed: {created:?}",
                    created.len(),
                );
                late.push(format!("attempt {attempt}: container complete before the kill"));
                rig.docker.ok(&["rm", "-f", created[0]])?;
                let orphans = expected_orphans(&root)?;
                ensure!(
                    orphans == expected,
                    "after removing the complete container: orphans {orphans:?}, expected {expected:?}",
                );
                continue;
            }
            ensure!(
                !crash.client.status.success(),
                "the interrupted `docker run` succeeded yet left orphans {new:?}",
            );
            r.fact("containers_after_kill_during_run", listed.lines().count());
            r.fact("kill_during_run_attempts", attempt);
            return Ok((
                new.clone(),
                format!(
                    "killed when `{}-init` appeared; after restart: {} left unreferenced, no container listed for it{}",
                    short(&id),
                    new.iter().map(|n| short(n)).collect::<Vec<_>>().join(" + "),
                    if late.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} earlier attempt(s) too late: the container was complete)", late.len())
                    }
                ),
            ));
        }
        Err(format!(
            "in {ATTEMPTS} attempts the kill never landed inside `docker run`: {late:?}"
        )
        .into())
    })?;
    expected.extend(killed);
    let from_run = expected.len() - full_orphans.len() - 1;
    let stale = report.step("6 SIGKILL of dockerd during `docker rm`", |r| {
        let id = rig.docker.ok(&["create", "--network", "none", APP, "true"])?;
        let mount = std::fs::read_to_string(
            root.join("image/btrfs/layerdb/mounts").join(&id).join("mount-id"),
        )?;
        let mount = mount.trim().to_string();
        let crash = crash::kill_on(&mut rig.docker, When::Deleted, |n| n == mount, &["rm", &id])?;
        ensure!(
            crash.survivors.is_empty(),
            "alive after the kill: {}",
            crate::procs::describe(&crash.survivors),
        );
        rig.docker.restart()?;
        let layout = rig.layout()?;
        ensure!(
            layout.orphans() == expected,
            "a kill during `docker rm` changed the orphans: {:?}, expected {expected:?}",
            layout.orphans(),
        );
        let dangling = layout.dangling();
        let listed = rig.docker.ok(&["ps", "-a", "-q", "--no-trunc"])?;
        let still_listed = listed.lines().any(|l| l == id);
        let again = rig.docker.docker(&["rm", "-f", &id])?;
        let again_msg = String::from_utf8_lossy(&again.stderr).trim().to_string();
        r.fact("kill_during_rm_dangling", dangling.iter().cloned().collect::<Vec<_>>().join(" "));
        r.fact("kill_during_rm_container_still_listed", still_listed);
        r.fact(
            "kill_during_rm_second_rm",
            if again.status.success() { "ok".to_string() } else { again_msg.clone() },
        );
        let after = rig.layout()?;
        let listed_after = rig.docker.ok(&["ps", "-a", "-q", "--no-trunc"])?;
        // Docker 20.10 removes the container although it cannot release the half-deleted
        // layer ("Error removing mounted layer": the read-write subvolume is gone): the layer
        // record stays, and the init layer it names, if the kill left it, is nobody's.
        let left: BTreeSet<String> = after.orphans().difference(&expected).cloned().collect();
        let init = format!("{mount}-init");
        let record_stale = !after.stale_layers.is_empty();
        ensure!(
            expected.is_subset(&after.orphans()) && left.is_subset(&BTreeSet::from([init.clone()])) && (left.is_empty() || (record_stale && !listed_after.lines().any(|l| l == id))),
            "after the second `docker rm`: orphans {:?}, expected {expected:?} and maybe {init}; stale record layers {:?}",
            after.orphans(),
            after.stale_layers,
        );
        r.fact("kill_during_rm_record_left", record_stale);
        Ok((
            left.clone(),
            format!(
                "killed when the layer `{}` vanished: no orphan yet (Docker removes the subvolumes before their records); {} dangling reference(s); container listed after restart: {still_listed}; second `rm -f`: {}{}",
                short(&mount),
                dangling.len(),
                if again.status.success() { "ok".to_string() } else { format!("failed ({again_msg})") },
                match (record_stale, left.is_empty()) {
                    (true, false) => format!(", but Docker keeps the layer record of the removed container: its init layer `{}` is left unreferenced", short(&init)),
                    (true, true) => ", but Docker keeps the layer record of the removed container".to_string(),
                    _ => String::new(),
                }
            ),
        ))
    })?;
    let from_rm = stale.len();
    expected.extend(stale);
    report.step("6 the orphan set", |r| {
        let orphans = expected_orphans(&root)?;
        ensure!(orphans == expected, "orphans {orphans:?}, expected exactly {expected:?}");
        r.fact(
            "expected_orphans",
            orphans.iter().cloned().collect::<Vec<_>>().join(" "),
        );
        Ok((
            (),
            format!(
                "exactly the {} made on purpose ({} by the full run, 1 while stopped, {from_run} by the kill during `run`, {from_rm} by the kill during `rm`), nothing else",
                orphans.len(),
                full_orphans.len(),
            ),
        ))
    })?;
    orphans_by_the_tool(rig, tool, report, &expected)
}

/// Step 6 with the operator's tool: its orphan check finds exactly the orphans the layout
/// shows, `--fix-orphans` is refused while dockerd runs and deletes exactly those while it is
/// stopped, and Docker works afterwards.
fn orphans_by_the_tool(
    rig: &mut Rig,
    tool: &Tool,
    report: &mut Report,
    expected: &BTreeSet<String>,
) -> Result<(), Failed> {
    let root = rig.root().to_path_buf();
    report.step("6 `dockroot doctor`: the orphan check", |r| {
        let layout = rig.layout()?;
        let doctor = tool.doctor(&[])?;
        let found = doctor.items("docker.orphans")?;
        ensure!(
            doctor.status("docker.orphans")? == "warning" && found == expected_orphans(&root)? && found == *expected,
            "the doctor's orphans {found:?}, expected exactly {expected:?} ({})",
            doctor.summary("docker.orphans")?,
        );
        let (count, _) = doctor.figure("docker.orphans", "orphans")?;
        ensure!(count == expected.len() as f64, "orphans figure {count}");
        // References whose subvolume is gone: the doctor's missing layers are the layout's.
        let missing: BTreeSet<String> = doctor
            .items("docker.missing-layers")?
            .iter()
            .map(|i| i.split(' ').next().unwrap_or_default().to_string())
            .collect();
        ensure!(
            missing == layout.dangling(),
            "missing layers {missing:?}, dangling references {:?}",
            layout.dangling(),
        );
        let not_ok = doctor.not_ok();
        r.fact("doctor_not_ok_at_the_orphan_check", not_ok.iter().cloned().collect::<Vec<_>>().join(" "));
        ensure!(
            not_ok == BTreeSet::from(["docker.orphans".to_string()]),
            "checks not ok besides the orphans: {not_ok:?}",
        );
        Ok((
            (),
            format!(
                "`docker.orphans` warning, lists exactly the {} orphans (`expected_orphans`); {} missing layer(s), as the layout shows",
                found.len(),
                missing.len()
            ),
        ))
    })?;
    report.step("6 `doctor --fix-orphans` while dockerd runs", |_| {
        let before = rig.layout()?;
        let doctor = tool.doctor(&["--fix-orphans"])?;
        let refused = doctor.json["fixes"]["orphans"]["refused"]
            .as_str()
            .unwrap_or_default();
        ensure!(
            refused.contains("Docker is running")
                && refused.contains(&rig.docker.pidfile().display().to_string()),
            "--fix-orphans with dockerd running: {}",
            doctor.json["fixes"],
        );
        ensure!(
            rig.layout()? == before,
            "a refused --fix-orphans changed the layout"
        );
        Ok((
            (),
            "refused: \"Docker is running (dockerd pid …, it answers on …)\"; nothing deleted"
                .to_string(),
        ))
    })?;
    report.step("6 `doctor --fix-orphans` with dockerd stopped", |_| {
        rig.docker.stop()?;
        let before = rig.layout()?;
        let doctor = tool.doctor(&["--fix-orphans"])?;
        let removed = doctor.removed_orphans()?;
        let failed = &doctor.json["fixes"]["orphans"]["failed"];
        ensure!(
            removed == *expected && failed.as_array().is_some_and(|f| f.is_empty()),
            "--fix-orphans removed {removed:?} (failed: {failed}), expected exactly {expected:?}",
        );
        let after = rig.layout()?;
        let kept: BTreeSet<String> = before.subvolumes.keys().filter(|n| !expected.contains(*n)).cloned().collect();
        ensure!(
            after.orphans().is_empty() && after.subvolumes.keys().cloned().collect::<BTreeSet<_>>() == kept,
            "after --fix-orphans: {after:?}",
        );
        // The record of a removed container goes with its last layer.
        let records = doctor.json["fixes"]["orphans"]["records_removed"].as_array().map_or(0, Vec::len);
        ensure!(
            after.stale_layers.is_empty() && records == usize::from(!before.stale_layers.is_empty()),
            "stale layer records: {:?} before, {:?} after, {records} removed",
            before.stale_layers,
            after.stale_layers,
        );
        ensure!(
            doctor.status("docker.orphans")? == "ok",
            "the report after the fix: {}",
            doctor.summary("docker.orphans")?,
        );
        let took = rig.docker.restart()?;
        let images = rig.docker.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])?;
        ensure!(images.lines().any(|l| l == APP), "images after the fix: {images}");
        let out = rig.docker.ok(&["run", "--rm", "--network", "none", APP, "cat", "/www/index.html"])?;
        ensure!(out == PAGE.trim_end(), "a container after the fix printed {out:?}");
        ensure!(rig.layout()? == after, "a `run --rm` after the fix left subvolumes");
        let clean = tool.doctor(&[])?;
        ensure!(
            clean.code == 0 && clean.not_ok().is_empty(),
            "doctor after the fix: exit {}, not ok: {:?}",
            clean.code,
            clean.not_ok(),
        );
        Ok((
            (),
            format!(
                "deleted and listed exactly the {} orphans, nothing else{}; dockerd restarted ({:.2} s), images intact, a container runs; doctor exit 0, every check ok",
                removed.len(),
                if records > 0 { format!(", and the {records} layer record of the removed container") } else { String::new() },
                took.as_secs_f64()
            ),
        ))
    })
}

/// The first 12 characters of a layer name (as Docker shortens ids), keeping a `-init` suffix.
fn short(name: &str) -> String {
    match name.strip_suffix("-init") {
        Some(id) => format!("{}-init", &id[..id.len().min(12)]),
        None => name[..name.len().min(12)].to_string(),
    }
}
