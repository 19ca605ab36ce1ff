//! Docker's side: the running storage driver, and the graph driver's layer subvolumes.

use super::Context;
use crate::docker::{layout, EngineError, LayerReport};
use crate::report::{Check, Figure, Status, Unit};
use btrfs_kit::ByteSize;
use std::collections::BTreeMap;

/// `docker.storage-driver.running`: what the daemon says over its socket.
pub fn driver_running(ctx: &Context) -> Check {
    const ID: &str = "docker.storage-driver.running";
    let info = match ctx.info() {
        Ok(info) => info,
        Err(EngineError::Unreachable { socket, source }) => {
            return Check::unknown(
                ID,
                format!(
                    "the Docker daemon does not answer on {} ({source}): the driver it runs cannot be checked",
                    socket.display()
                ),
            )
            .action("start Docker (or give its socket with --docker-socket)")
        }
        Err(e) => return Check::unknown(ID, e.to_string()),
    };
    let root = ctx.root.as_ref().ok();
    let daemon_root = info
        .docker_root_dir
        .canonicalize()
        .unwrap_or(info.docker_root_dir.clone());
    if info.driver != "btrfs" {
        return Check::new(
            ID,
            Status::Critical,
            format!(
                "dockerd {} runs the {} storage driver on {}",
                info.server_version,
                info.driver,
                info.docker_root_dir.display()
            ),
        )
        .action("set \"storage-driver\": \"btrfs\" in daemon.json and restart Docker");
    }
    if root.is_some_and(|r| r != &daemon_root) {
        return Check::new(
            ID,
            Status::Critical,
            format!(
                "dockerd runs btrfs, but on {}, not on {}",
                info.docker_root_dir.display(),
                ctx.path().display()
            ),
        )
        .action("set \"data-root\" in daemon.json (or --data-root) to this path, or examine the daemon's path instead");
    }
    if info.uses_containerd_snapshotter() {
        return Check::ok(
            ID,
            format!(
                "dockerd {} runs the containerd image store with containerd's btrfs snapshotter (data root {}); where containerd keeps the snapshots is containerd.roots' judgement",
                info.server_version,
                info.docker_root_dir.display()
            ),
        );
    }
    Check::ok(
        ID,
        format!(
            "dockerd {} runs the btrfs storage driver on {}",
            info.server_version,
            info.docker_root_dir.display()
        ),
    )
}

/// The layer analysis, shared by the orphan and missing-layer checks.
pub fn layers(ctx: &Context) -> Result<LayerReport, String> {
    layout::analyse(ctx.path()).map_err(|e| {
        format!(
            "cannot read Docker's layout under {}: {e}",
            ctx.path().display()
        )
    })
}

/// The exclusive bytes of the subvolumes named `names` under the driver directory, when quotas
/// are on and consistent (the figure what deleting them frees).
fn exclusive_bytes(ctx: &Context, names: &[String]) -> Option<u64> {
    let fs = ctx.fs.as_ref().ok()?;
    let status = fs.quota_status().ok()??;
    if !status.enabled || status.inconsistent {
        return None;
    }
    let by_id: BTreeMap<u64, u64> = fs
        .qgroups()
        .ok()?
        .into_iter()
        .filter(|q| q.id.level() == 0)
        .map(|q| (q.id.id(), q.exclusive.bytes()))
        .collect();
    let dir = ctx.path().join(layout::SUBVOLUMES_DIR);
    names.iter().try_fold(0u64, |sum, name| {
        let id = btrfs_kit::subvolume::subvolume_id(dir.join(name)).ok()?;
        Some(sum + by_id.get(&id).copied().unwrap_or(0))
    })
}

/// `docker.orphans`: layer subvolumes no image or container references, and layer records of
/// containers that are gone.
pub fn orphans(ctx: &Context, layers: &Result<LayerReport, String>) -> Result<Check, Check> {
    const ID: &str = "docker.orphans";
    let report = layers.as_ref().map_err(|e| Check::unknown(ID, e.clone()))?;
    if !report.driver_dir {
        return Ok(Check::ok(
            ID,
            "no btrfs/subvolumes yet: Docker has not run with the btrfs driver here",
        ));
    }
    let count = report.orphans.len();
    let stale = report.stale_mounts.len();
    let mut figures =
        vec![Figure::new("orphans", count as f64, Unit::Count).alert_above(1.0, f64::INFINITY)];
    let mut notes = String::new();
    if stale > 0 {
        notes.push_str(&format!(
            "; {stale} layer record(s) of containers that no longer exist (Docker never releases them, and they keep the image layers below them from being freed)"
        ));
    }
    if !report.foreign.is_empty() {
        notes.push_str(&format!(
            "; {} subvolume(s) not named like Docker's layers (BuildKit's build cache, freed by `docker builder prune`, or not Docker's) are left alone",
            report.foreign.len()
        ));
    }
    if !report.pending_removal.is_empty() {
        notes.push_str(&format!(
            "; {} more are being removed by Docker (it finishes at its next clean shutdown)",
            report.pending_removal.len()
        ));
    }
    if count == 0 && stale == 0 {
        return Ok(Check {
            figures,
            ..Check::ok(
                ID,
                format!(
                    "{} layer subvolumes, each referenced by an image or container{notes}",
                    report.subvolumes
                ),
            )
        });
    }
    let bytes = exclusive_bytes(ctx, &report.orphans);
    let size = match bytes {
        Some(b) => {
            figures.push(Figure::bytes("orphan_exclusive", b, None));
            format!(", holding {} of their own", ByteSize(b))
        }
        None => String::new(),
    };
    let broken = if report.unloadable.is_empty() {
        String::new()
    } else {
        format!(
            " ({} reference file(s) Docker skips, e.g. {}: {})",
            report.unloadable.len(),
            report.unloadable[0].path.display(),
            report.unloadable[0].reason
        )
    };
    let examples: Vec<&str> = report.orphans.iter().take(3).map(String::as_str).collect();
    let found = if count == 0 {
        "no orphaned layer subvolume".to_string()
    } else {
        format!(
            "{count} of {} layer subvolumes are orphans{size}: no image or container references them, so `docker system prune` never frees them{broken}",
            report.subvolumes
        )
    };
    let examples = if examples.is_empty() {
        String::new()
    } else {
        format!("; e.g. {}", examples.join(", "))
    };
    Ok(Check {
        figures,
        items: report.orphans.clone(),
        ..Check::new(ID, Status::Warning, format!("{found}{notes}{examples}"))
            .action(format!(
                "stop Docker, then `dockroot doctor --fix-orphans {}` deletes them (and the records of containers that are gone) and lists what it deleted",
                ctx.path().display()
            ))
    })
}

/// `docker.missing-layers`: references whose subvolume is gone (images or containers Docker
/// cannot use any more).
pub fn missing_layers(layers: &Result<LayerReport, String>) -> Result<Check, Check> {
    const ID: &str = "docker.missing-layers";
    let report = layers.as_ref().map_err(|e| Check::unknown(ID, e.clone()))?;
    let figure = Figure::new("missing_layers", report.missing.len() as f64, Unit::Count)
        .alert_above(f64::INFINITY, 1.0);
    if report.missing.is_empty() {
        return Ok(Check::ok(ID, "every referenced layer subvolume exists").figure(figure));
    }
    let list: Vec<String> = report
        .missing
        .iter()
        .take(3)
        .map(|(name, who)| format!("{who} needs {name}"))
        .collect();
    Ok(Check::new(
        ID,
        Status::Critical,
        format!(
            "{} reference(s) name layer subvolumes that do not exist: {}",
            report.missing.len(),
            list.join("; ")
        ),
    )
    .action("remove the broken images and containers (`docker rmi -f`, `docker rm -f`) and pull or build them again")
    .figure(figure)
    .items(report.missing.iter().map(|(name, who)| format!("{name} (needed by {who})"))))
}
