//! The seed scenario on one way's rig: an image without a registry (busybox imported, four app
//! layers built with the classic builder and no network), `docker info`, a web container on
//! 127.0.0.1, the filesystem filled to ENOSPC while the page is still served, a `docker run`
//! that fails on the full filesystem, the recovery (plugs removed, the balance example's daily
//! policy, `docker run` and the page again), then everything stopped by pid and nothing left.

use crate::census::{self, all_on};
use crate::data::MIB;
use crate::filling::{plug_while_served, policy, policy_when_full_step, unplug_while_served};
use crate::http::get;
use crate::image::{self, APP, BASE, PAGE};
use crate::report::Report;
use crate::rig::Rig;
use btrfs_kit::Filesystem;
use std::path::Path;
use testkit::ensure;
use testkit::harness::Failed;
use testkit::kmsg::{device_name, KmsgWatch};

/// The loop filesystem's size.
pub const SIZE: u64 = 1024 * MIB;
/// What the error of a `docker run` on the full filesystem must say.
const ENOSPC: &str = "no space left on device";
/// `docker info`'s DriverStatus entry of the containerd image store.
const DRIVER_TYPE: &str = r#"["driver-type","io.containerd.snapshotter.v1"]"#;

/// Runs the scenario on `rig` (already started: step 1 is the caller's), recording steps and
/// facts in `report`.
pub fn run(rig: Rig, report: &mut Report) -> Result<(), Failed> {
    let mut kmsg = KmsgWatch::start()?;
    let device = device_name(rig.scratch.device());
    let d = &rig.docker;
    report.fact(
        "docker",
        d.ok(&[
            "version",
            "--format",
            "server {{.Server.Version}}, client {{.Client.Version}}",
        ])?,
    );
    report.fact(
        "components",
        d.ok(&[
            "version",
            "--format",
            "{{range .Server.Components}}{{.Name}} {{.Version}}; {{end}}",
        ])?,
    );
    report.step("2 image with no network: import + `docker build`", |r| {
        image::import_busybox(d, BASE)?;
        let files = image::build_app(d, BASE, APP)?;
        let layers = image::layer_count(d, APP)?;
        ensure!(layers == 5, "{APP} has {layers} layers, expected 5");
        image::check_files(d, APP, &files)?;
        let census = census::take(&rig)?;
        ensure!(
            census.orphans.is_empty() && census.subvolumes >= layers,
            "after the build and a `run --rm`: {}",
            census.text
        );
        let mut outcome = format!("{layers} layers; {}", census.text);
        if let Some(store) = rig.store() {
            let blobs = census::blobs(&store)?;
            ensure!(blobs > 0, "no blob in {}", store.content().display());
            let fsid = all_on(
                rig.root(),
                &[
                    rig.root(),
                    &store.root,
                    &store.content(),
                    &store.snapshotter(),
                    &store.metadata(),
                ],
            )?;
            r.fact("fsid", fsid.clone());
            outcome += &format!(
                "; data root, containerd root, content store ({blobs} blobs), snapshotter and metadata all on fs {}",
                census::short_fsid(&fsid)
            );
        } else {
            ensure!(
                census.subvolumes == layers,
                "legacy driver: {layers} layers but {}",
                census.text
            );
        }
        Ok(((), outcome))
    })?;
    report.step("3 `docker info`", |r| info(&rig, r))?;
    let before = census::take(&rig)?;
    let port = report.step("4 httpd container on 127.0.0.1", |_| {
        let port = image::serve(d, "web", APP)?;
        let after = census::take(&rig)?;
        ensure!(
            after.subvolumes > before.subvolumes && after.orphans.is_empty(),
            "after `docker run`: {} (before: {})",
            after.text,
            before.text
        );
        Ok((
            port,
            format!(
                "page fetched (host network, --init); +{} subvolume(s) for the container",
                after.subvolumes - before.subvolumes
            ),
        ))
    })?;
    fill_and_recover(&rig, report, port)?;
    report.step("6 dockerd (and containerd) stopped by pid, nothing left", |_| {
        let (docker, containerd) = rig.stop_and_close()?;
        Ok((
            (),
            format!(
                "dockerd exited on SIGTERM in {:.1} s{}; no process mentions the tempdirs, no mount below them or the data root (the daemons' mounts ended with their namespaces)",
                docker.as_secs_f64(),
                if containerd.is_zero() {
                    String::new()
                } else {
                    format!(", containerd in {:.1} s", containerd.as_secs_f64())
                }
            ),
        ))
    })?;
    report.step("kernel log of the loop device", |_| {
        let problems = kmsg.problems(&device)?;
        ensure!(
            problems.is_empty(),
            "kernel logged btrfs problems on {device}:\n{}",
            problems.join("\n")
        );
        Ok(((), "no btrfs warning or error".to_string()))
    })
}

/// Step 3: what `docker info` says of the storage.
fn info(rig: &Rig, r: &mut Report) -> Result<((), String), Failed> {
    let d = &rig.docker;
    d.ensure_btrfs_on_data_root()?;
    let status = d.ok(&["info", "--format", "{{json .DriverStatus}}"])?;
    r.fact("driver_status", status.clone());
    let address = d.ok(&["info", "--format", "{{.Containerd.Address}}"])?;
    match rig.store() {
        Some(store) => {
            ensure!(
                status == format!("[{DRIVER_TYPE}]"),
                "DriverStatus {status}, expected [{DRIVER_TYPE}]"
            );
            ensure!(
                Path::new(&address) == store.socket,
                "Containerd.Address {address}, expected {}",
                store.socket.display()
            );
            Ok((
                (),
                format!("Storage Driver: btrfs, DriverStatus {status}, containerd at {address}"),
            ))
        }
        None => {
            ensure!(
                !status.contains("driver-type"),
                "the legacy driver reports a driver-type: {status}"
            );
            Ok(((), format!("Storage Driver: btrfs, DriverStatus {status}")))
        }
    }
}

/// Step 5: full, what must still work and what must fail, and the way back.
fn fill_and_recover(rig: &Rig, report: &mut Report, port: u16) -> Result<(), Failed> {
    let root_arg = rig.root().to_str().ok_or("path")?;
    let fs = Filesystem::open(rig.root())?;
    let mut plugs = Vec::new();
    report.step("5 filled to ENOSPC with plug files", |_| {
        plug_while_served(&fs, &mut plugs, port)
    })?;
    report.step("5 `docker run` on the full filesystem", |r| {
        let out = rig
            .docker
            .docker(&["run", "--network", "host", "--init", APP, "true"])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success() && stderr.contains(ENOSPC),
            "docker run on a full filesystem: {}: {stderr}",
            out.status
        );
        let census = census::take(rig)?;
        let error = stderr
            .lines()
            .find(|l| l.contains(ENOSPC))
            .unwrap_or("")
            .trim();
        r.fact("full_run_error", error.to_string());
        r.fact("full_run_orphans", census.orphans.len());
        Ok((
            (),
            format!(
                "exit {}, ENOSPC: {error}; left {} unreferenced subvolume(s)",
                out.status.code().unwrap_or(-1),
                census.orphans.len()
            ),
        ))
    })?;
    policy_when_full_step(report, root_arg)?;
    report.step("5 plugs removed: recovered", |_| {
        unplug_while_served(&fs, &plugs, port)?;
        let out = rig
            .docker
            .ok(&["run", "--rm", "--network", "none", APP, "cat", "/www/index.html"])?;
        ensure!(out == PAGE.trim_end(), "a container after the recovery printed {out:?}");
        let (relocated, steps) = policy(root_arg)?;
        let (status, body) = get(port, "/")?;
        ensure!(status == 200 && body == PAGE, "after the policy: HTTP {status} {body:?}");
        Ok((
            (),
            format!(
                "page served, `docker run` works; policy exit 0 ({steps}), relocated {relocated}; page still served; {}",
                census::take(rig)?.text
            ),
        ))
    })
}
