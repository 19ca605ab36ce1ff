//! The system-style containerd's trap and its remedy.
//!
//! The trap: containerd's root (`/var/lib/containerd` on a distribution) is not on the btrfs
//! that holds Docker's data root. containerd then skips its btrfs snapshotter ("must be a btrfs
//! filesystem to be used with the btrfs snapshotter"), dockerd still starts and `docker info`
//! still says `Storage Driver: btrfs` with the snapshotter driver-type: only the first image
//! fails (`snapshotter not loaded: btrfs: invalid argument`).
//!
//! The remedy: containerd's root on the same btrfs, a subvolume [`SUBVOLUME`] at the
//! filesystem's top level mounted at the root path the configuration names.

use crate::containerd::Containerd;
use crate::daemon::Dockerd;
use crate::image::{self, BASE};
use crate::report::Report;
use crate::rig::{options, Way};
use btrfs_kit::{subvolume, Filesystem};
use testkit::ensure;
use testkit::fixture::Scratch;
use testkit::harness::Failed;
use testkit::userland::Userland;

/// The subvolume holding containerd's root, at the filesystem's top level.
pub const SUBVOLUME: &str = "@containerd";
/// What containerd logs when its root is not on btrfs.
const SKIPPED: &str = "must be a btrfs filesystem to be used with the btrfs snapshotter";
/// What `docker import` says then.
const NOT_LOADED: &str = "snapshotter not loaded: btrfs: invalid argument";

/// The state of the btrfs snapshotter plugin in `ctr plugins ls` (`ok`, `skip`, ...).
fn btrfs_plugin(containerd: &Containerd) -> Result<String, Failed> {
    let list = containerd.ctr(&["plugins", "ls"])?;
    let line = list
        .lines()
        .find(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some("io.containerd.snapshotter.v1") && w.next() == Some("btrfs")
        })
        .ok_or_else(|| format!("no btrfs snapshotter in `ctr plugins ls`:\n{list}"))?;
    Ok(line.split_whitespace().last().unwrap_or("").to_string())
}

/// The trap on `scratch` (the data root), each part a step of `report`; everything it
/// started is stopped and checked gone.
pub fn trap(userland: &Userland, scratch: &Scratch, report: &mut Report) -> Result<(), Failed> {
    let mut containerd = report.step("c1 trap: containerd's root on the host's filesystem", |_| {
        let (containerd, took) = Containerd::start(userland, None, scratch.path())?;
        let found = match Filesystem::open(containerd.root()).map_err(btrfs_kit::Error::into_kind) {
            Err(btrfs_kit::ErrorKind::NotBtrfs { found, .. }) => found,
            other => return Err(format!("containerd's root: {other:?}, expected not btrfs").into()),
        };
        let log = containerd.log();
        ensure!(log.contains(SKIPPED), "containerd's log does not say {SKIPPED:?}:\n{log}");
        let state = btrfs_plugin(&containerd)?;
        ensure!(state == "skip", "btrfs snapshotter plugin: {state}, expected skip");
        Ok((
            containerd,
            format!(
                "listening after {:.2} s; root on {found}: it logs \"{SKIPPED}\", `ctr plugins ls`: btrfs skip",
                took.as_secs_f64()
            ),
        ))
    })?;
    let mut docker = report.step(
        "c1 trap: dockerd starts and `docker info` looks right",
        |_| {
            let (docker, took) = Dockerd::start_with(
                scratch.path(),
                options(userland, Way::SystemContainerd, Some(&containerd)),
            )?;
            let status = docker.ok(&["info", "--format", "{{.Driver}} {{json .DriverStatus}}"])?;
            ensure!(
                status.starts_with("btrfs ") && status.contains("io.containerd.snapshotter.v1"),
                "docker info: {status}"
            );
            Ok((
                docker,
                format!(
                    "API after {:.2} s; Driver and DriverStatus: {status}",
                    took.as_secs_f64()
                ),
            ))
        },
    )?;
    report.step("c1 trap: the first image fails", |r| {
        let err = match image::import_busybox(&docker, BASE) {
            Ok(()) => return Err("`docker import` worked with the snapshotter skipped".into()),
            Err(e) => e.message().unwrap_or_default().to_string(),
        };
        ensure!(err.contains(NOT_LOADED), "docker import: {err}");
        let line = err
            .lines()
            .find(|l| l.contains(NOT_LOADED))
            .unwrap_or("")
            .trim();
        r.fact("trap_import_error", line.to_string());
        Ok(((), format!("`docker import`: {line}")))
    })?;
    report.step("c1 trap: both stopped by pid", |_| {
        let took = docker.stop()?;
        docker.close()?;
        let containerd_took = containerd.stop()?;
        containerd.close()?;
        Ok((
            (),
            format!(
                "dockerd {:.1} s, containerd {:.1} s; nothing left",
                took.as_secs_f64(),
                containerd_took.as_secs_f64()
            ),
        ))
    })
}

/// The remedy: [`SUBVOLUME`] made on `scratch` and containerd started with it as its root;
/// checked: the root is that subvolume of our btrfs and the snapshotter loaded.
pub fn remedy(
    userland: &Userland,
    scratch: &Scratch,
    report: &mut Report,
) -> Result<Containerd, Failed> {
    report.step("c2 remedy: containerd's root = subvolume @containerd of our btrfs", |_| {
        let subvolume_path = scratch.path().join(SUBVOLUME);
        subvolume::create(&subvolume_path)?;
        let (containerd, took) = Containerd::start(userland, Some(&subvolume_path), scratch.path())?;
        let ours = subvolume::info(&subvolume_path)?.id;
        let root = subvolume::info(containerd.root())?.id;
        ensure!(root == ours, "containerd's root is subvolume {root}, {SUBVOLUME} is {ours}");
        crate::census::all_on(scratch.path(), &[&containerd.root()])?;
        let state = btrfs_plugin(&containerd)?;
        ensure!(state == "ok", "btrfs snapshotter plugin: {state}, expected ok");
        let log = containerd.log();
        ensure!(!log.contains(SKIPPED), "containerd still skips the snapshotter:\n{log}");
        Ok((
            containerd,
            format!(
                "bind-mounted at its root (subvolume {ours}); listening after {:.2} s; `ctr plugins ls`: btrfs ok",
                took.as_secs_f64()
            ),
        ))
    })
}
