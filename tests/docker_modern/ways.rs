//! The three trials, one a way: each makes our btrfs, starts the userland's daemons the way
//! says and runs the seed scenario; each writes its own report.

use crate::report::Report;
use crate::rig::{Rig, Way};
use crate::seed::{self, SIZE};
use crate::trap;
use testkit::fixture::Scratch;
use testkit::harness::Failed;
use testkit::userland::Userland;

/// Step 1 for the ways whose dockerd runs alone: the filesystem and dockerd.
fn start(way: Way, report: &mut Report) -> Result<Rig, Failed> {
    let userland = Userland::sid()?;
    report.step("1 dockerd 28 on a btrfs made by our mkfs", |_| {
        let (rig, took) = Rig::start(&userland, way, Scratch::btrfs(SIZE)?, None)?;
        Ok((
            rig,
            format!(
                "daemon.json {}; API answered {:.2} s after start",
                serde_json::Value::Object(way.config()),
                took.as_secs_f64()
            ),
        ))
    })
}

testkit::register!(prefix "docker_modern"; root: legacy_graphdriver_end_to_end);
/// a. Docker 28's legacy btrfs graphdriver.
fn legacy_graphdriver_end_to_end() -> Result<(), Failed> {
    let mut report = Report::new("docker-modern-legacy");
    let rig = start(Way::Legacy, &mut report)?;
    seed::run(rig, &mut report)
}

testkit::register!(prefix "docker_modern"; root: containerd_store_on_managed_containerd_end_to_end);
/// b. Docker 28 with the containerd image store on its own managed containerd.
fn containerd_store_on_managed_containerd_end_to_end() -> Result<(), Failed> {
    let mut report = Report::new("docker-modern-managed-store");
    let rig = start(Way::ManagedStore, &mut report)?;
    seed::run(rig, &mut report)
}

testkit::register!(prefix "docker_modern"; root: system_containerd_trap_then_remedy_end_to_end);
/// c. A system-style containerd 2.1: the trap (its root off the btrfs), then the remedy (its
/// root a subvolume of the btrfs) and the scenario on it.
fn system_containerd_trap_then_remedy_end_to_end() -> Result<(), Failed> {
    let mut report = Report::new("docker-modern-system-containerd");
    let userland = Userland::sid()?;
    let scratch = Scratch::btrfs(SIZE)?;
    trap::trap(&userland, &scratch, &mut report)?;
    let containerd = trap::remedy(&userland, &scratch, &mut report)?;
    let rig = report.step("1 dockerd 28 on the system-style containerd", |_| {
        let (rig, took) = Rig::start(&userland, Way::SystemContainerd, scratch, Some(containerd))?;
        Ok((
            rig,
            format!(
                "`--containerd` its socket; API answered {:.2} s after start",
                took.as_secs_f64()
            ),
        ))
    })?;
    seed::run(rig, &mut report)
}

testkit::register!(prefix "docker_modern"; root: drop_after_a_panic_leaves_nothing);
/// A panic in the middle of the system-style way (both daemons running, a container serving,
/// containerd's root bind-mounted): the rig's drops stop everything by pid; afterwards no
/// process mentions the tempdirs, nothing is mounted below them or the data root, and the
/// tempdirs and the mount point are gone.
fn drop_after_a_panic_leaves_nothing() -> Result<(), Failed> {
    let userland = Userland::sid()?;
    let mut seen: Vec<std::path::PathBuf> = Vec::new();
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<(), Failed> {
            let scratch = Scratch::btrfs(SIZE)?;
            let containerd =
                trap::remedy(&userland, &scratch, &mut Report::new("docker-modern-panic"))?;
            let (rig, _) = Rig::start(&userland, Way::SystemContainerd, scratch, Some(containerd))?;
            seen.extend([
                rig.root().to_path_buf(),
                rig.docker.config_dir().to_path_buf(),
                rig.containerd
                    .as_ref()
                    .ok_or("no containerd")?
                    .dir()
                    .to_path_buf(),
            ]);
            crate::image::import_busybox(&rig.docker, crate::image::BASE)?;
            crate::image::build_app(&rig.docker, crate::image::BASE, crate::image::APP)?;
            crate::image::serve(&rig.docker, "web", crate::image::APP)?;
            testkit::ensure!(
                !crate::procs::mentioning(&seen[2]).is_empty(),
                "no process of the rig found before the panic"
            );
            panic!("a panic on purpose, with the rig running");
        }));
    testkit::ensure!(outcome.is_err(), "the rig did not panic: {outcome:?}");
    testkit::ensure!(seen.len() == 3, "the rig did not start: {outcome:?}");
    for dir in &seen {
        let left = crate::procs::mentioning(dir);
        testkit::ensure!(
            left.is_empty(),
            "after the panic, processes mention {}: {}",
            dir.display(),
            crate::procs::describe(&left)
        );
        let mounts = crate::daemon::mounts_below(&[dir]);
        testkit::ensure!(
            mounts.is_empty(),
            "after the panic, mounts below {}: {mounts:?}",
            dir.display()
        );
        testkit::ensure!(
            !dir.exists(),
            "{} is still there after the panic",
            dir.display()
        );
    }
    Ok(())
}
