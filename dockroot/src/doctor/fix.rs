//! What `doctor` repairs when asked: orphaned layer subvolumes (`--fix-orphans`, never while
//! Docker runs) and inconsistent qgroups (`--fix`: a rescan).

use super::Target;
use crate::docker::{layout, DaemonPresence};
use btrfs_kit::subvolume::{self, Recursion};
use btrfs_kit::Filesystem;
use serde::Serialize;
use std::path::PathBuf;

/// Why a fix was not made.
#[derive(Debug, thiserror::Error)]
pub enum FixError {
    /// Docker runs: it could create or use a subvolume while we look.
    #[error("Docker is running ({0}): orphans are only removed while it is stopped, since it may be creating layers; stop it (`systemctl stop docker docker.socket`), run this again, then start it")]
    DockerRunning(String),
    /// containerd holds the btrfs snapshotter's metadata.db: it runs, and may be creating
    /// snapshots.
    #[error("containerd is running (it holds {} open): the snapshotter's orphans are only removed while it is stopped; stop Docker and containerd (`systemctl stop docker docker.socket containerd`), run this again, then start them", path.display())]
    ContainerdRunning {
        /// The database.
        path: PathBuf,
    },
    /// The snapshotter's layout could not be read.
    #[error("cannot judge containerd's btrfs snapshotter: {0}")]
    Snapshotter(String),
    /// The layout could not be read.
    #[error("cannot read Docker's layout under {}: {source}", path.display())]
    Layout {
        /// The data root.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A library call failed.
    #[error(transparent)]
    Btrfs(#[from] btrfs_kit::Error),
}

impl FixError {
    /// The errno behind the error, where there is one (for `--json`).
    pub fn errno(&self) -> Option<i32> {
        match self {
            FixError::Btrfs(e) => crate::errno::of(e),
            other => crate::errno::of(other),
        }
    }
}

/// One deleted orphan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedOrphan {
    /// Its name under `btrfs/subvolumes`.
    pub name: String,
    /// Its subvolume id.
    pub id: u64,
    /// Its exclusive bytes when quotas were on and consistent (what deleting it frees once the
    /// cleaner has run).
    pub exclusive: Option<u64>,
}

/// What `--fix-orphans` did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct OrphanFix {
    /// Deleted subvolumes.
    pub removed: Vec<RemovedOrphan>,
    /// Layer records of containers that are gone, removed once none of their subvolumes was
    /// left (`layerdb/mounts/<id>` directories).
    pub records_removed: Vec<PathBuf>,
    /// The btrfs snapshotter root examined (the containerd image store), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshotter_root: Option<PathBuf>,
    /// Deleted snapshot subvolumes of containerd's btrfs snapshotter (orphans and `rm-*`
    /// leftovers), by path below its root.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub snapshots_removed: Vec<RemovedOrphan>,
    /// Orphans (or records) that could not be deleted, with the error.
    pub failed: Vec<(String, String)>,
}

/// Deletes the orphaned snapshot subvolumes of containerd's btrfs snapshotter (and `rm-*`
/// leftovers), refusing while containerd holds its metadata.db; then deletes every orphaned
/// layer subvolume of `target` (recursively: a container layer may hold
/// nested subvolumes of its own), then the layer records of containers that are gone whose
/// subvolumes are all gone, refusing while Docker runs: its pidfile names a live dockerd or its
/// socket answers. Foreign subvolumes (not named like layers) are never touched. Returns what
/// was deleted; the space comes back when the filesystem's cleaner has run.
pub fn fix_orphans(target: &Target) -> Result<OrphanFix, FixError> {
    let presence = DaemonPresence::detect(&target.docker.pidfile, &target.docker.socket);
    if presence.running() {
        return Err(FixError::DockerRunning(presence.evidence()));
    }
    // containerd's snapshotter first: refuse before deleting anything.
    let snapshotter = snapshotter_orphans(target)?;
    let root = &target.data_root;
    let report = layout::analyse(root).map_err(|source| FixError::Layout {
        path: root.clone(),
        source,
    })?;
    let fs = Filesystem::open(root)?;
    let exclusive = exclusive_by_id(&fs);
    let dir = root.join(layout::SUBVOLUMES_DIR);
    let mut fix = OrphanFix::default();
    for name in report.orphans {
        let path = dir.join(&name);
        let result = subvolume::subvolume_id(&path)
            .and_then(|id| subvolume::delete(&path, Recursion::Yes).map(|()| id));
        match result {
            Ok(id) => fix.removed.push(RemovedOrphan {
                exclusive: exclusive.as_ref().map(|m| m.get(&id).copied().unwrap_or(0)),
                name,
                id,
            }),
            Err(e) => fix.failed.push((name, e.to_string())),
        }
    }
    if let Some((sroot, paths)) = snapshotter {
        for rel in paths {
            let path = sroot.join(&rel);
            let result = subvolume::subvolume_id(&path)
                .and_then(|id| subvolume::delete(&path, Recursion::Yes).map(|()| id));
            match result {
                Ok(id) => fix.snapshots_removed.push(RemovedOrphan {
                    exclusive: exclusive.as_ref().map(|m| m.get(&id).copied().unwrap_or(0)),
                    name: rel.display().to_string(),
                    id,
                }),
                Err(e) => fix.failed.push((path.display().to_string(), e.to_string())),
            }
        }
        fix.snapshotter_root = Some(sroot);
    }
    // A stale record goes once its layers are: Docker would load it, and it keeps the image
    // layer below it referenced.
    for stale in report.stale_mounts {
        if stale.layers.iter().any(|l| dir.join(l).exists()) {
            continue;
        }
        match std::fs::remove_dir_all(&stale.dir) {
            Ok(()) => fix.records_removed.push(stale.dir),
            Err(e) => fix
                .failed
                .push((stale.dir.display().to_string(), e.to_string())),
        }
    }
    Ok(fix)
}

/// The btrfs snapshotter root of the containerd Docker would use and its removable
/// subvolumes (orphans and `rm-*` leftovers), when it exists; refuses while containerd holds
/// its metadata.db.
fn snapshotter_orphans(target: &Target) -> Result<Option<(PathBuf, Vec<PathBuf>)>, FixError> {
    use crate::docker::containerd::{self, bolt::BoltError, snapshotter};
    let config = crate::docker::DaemonJson::read(&target.docker.config_dir).ok();
    let named = containerd::named_address(config.as_ref(), &target.paths.unit_dir);
    let chosen = config.as_ref().is_some_and(|c| {
        let major = crate::docker::store::installed_engine_major(std::path::Path::new("dockerd"));
        crate::docker::store::choose(c, major, &target.data_root).store
            == crate::docker::ImageStore::Containerd
    });
    if !chosen && !target.data_root.join("containerd/daemon").is_dir() {
        return Ok(None);
    }
    let c = containerd::locate(
        None,
        &target.data_root,
        named.as_ref(),
        &target.containerd.config,
    )
    .map_err(|e| FixError::Snapshotter(e.to_string()))?;
    let root = c.config.btrfs_root();
    if !root.join(snapshotter::METADATA_DB).exists() {
        return Ok(None);
    }
    match snapshotter::analyse(&root) {
        Ok((_, report)) => Ok(Some((root, report.removable()))),
        Err(snapshotter::LayoutError::Bolt(BoltError::InUse { path })) => {
            Err(FixError::ContainerdRunning { path })
        }
        Err(e) => Err(FixError::Snapshotter(e.to_string())),
    }
}

/// Exclusive bytes per subvolume id, when quotas are on and consistent.
fn exclusive_by_id(fs: &Filesystem) -> Option<std::collections::BTreeMap<u64, u64>> {
    let status = fs.quota_status().ok()??;
    if !status.enabled || status.inconsistent {
        return None;
    }
    Some(
        fs.qgroups()
            .ok()?
            .into_iter()
            .filter(|q| q.id.level() == 0)
            .map(|q| (q.id.id(), q.exclusive.bytes()))
            .collect(),
    )
}

/// Runs a quota rescan and waits for it when the counts are marked inconsistent; returns
/// whether it ran.
pub fn rescan_quota(target: &Target) -> Result<bool, FixError> {
    let fs = Filesystem::open(&target.data_root)?;
    match fs.quota_status()? {
        Some(s) if s.enabled && s.inconsistent => {
            fs.rescan_quota()?;
            fs.wait_quota_rescan()?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_carries_the_errno_of_its_cause() {
        let layout = FixError::Layout {
            path: "/var/lib/docker".into(),
            source: std::io::Error::from_raw_os_error(nix::libc::EACCES),
        };
        assert_eq!(layout.errno(), Some(nix::libc::EACCES));
        assert_eq!(FixError::DockerRunning("pid 1".into()).errno(), None);
    }
}
