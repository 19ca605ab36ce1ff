//! `doctor`: every check of a Docker data root on btrfs (and LVM), each with a status, the
//! figure it judged and what to do; and the fixes it can make when asked (`--fix`,
//! `--fix-orphans`).
//!
//! The checks, by id (stable: JSON, `--only` and metrics use them):
//!
//! | id | what |
//! |---|---|
//! | `mount.own-filesystem` | the data root is a filesystem of its own, not the root fs or a parent's |
//! | `fs.btrfs` | it is btrfs |
//! | `docker.storage-driver.configured` | daemon.json selects `btrfs` (the graph driver, or the containerd store's snapshotter), read by moby's rules; `"storage-driver": "btrfs"` alone on Docker 29 warns (it means the graph driver) |
//! | `docker.storage-driver.running` | the running daemon uses `btrfs` on this data root (Engine API) |
//! | `docker.image-store` | the store the running daemon uses (graph driver or containerd, `/info`'s DriverStatus) is daemon.json's choice |
//! | `containerd.roots` | with the containerd store: containerd's root, content store and btrfs snapshotter root are on this btrfs (critical otherwise: moby#50517) |
//! | `containerd.snapshotter` | with the containerd store: containerd's btrfs snapshotter is loaded, not skipped (its root is btrfs) |
//! | `kernel` | the running kernel against the table in [`crate::kernel`] |
//! | `space.used` | data used % against warn/crit |
//! | `space.unallocated` | room for the next data and metadata chunk |
//! | `space.metadata` | metadata used % against warn/crit |
//! | `space.global-reserve` | the global reserve is not in use |
//! | `state.read-only` | the mount and the filesystem are writable |
//! | `state.balance` | no balance left paused |
//! | `state.exclusive-operation` | no other exclusive operation (resize, device add...) |
//! | `health.device-errors` | device error counters are zero |
//! | `health.scrub` | the last completed scrub (btrfs-kit's state) found nothing, and is recent |
//! | `docker.orphans` | every layer subvolume is referenced by an image or an existing container |
//! | `docker.missing-layers` | every referenced layer subvolume exists |
//! | `containerd.orphans` | with the containerd store: every snapshot subvolume has a record in the snapshotter's metadata.db and every record its subvolume, no `rm-*` leftovers (by count through `ctr` while containerd holds the database) |
//! | `quota.subvolumes` | qgroups are not on with very many subvolumes |
//! | `quota.consistency` | qgroup counts are consistent (limits enforced) |
//! | `lvm.vg-free` | the volume group has room to grow the LV |
//! | `lvm.fs-fills-lv` | the filesystem uses the whole LV |

mod docker;
mod fix;
mod health;
mod lvm;
mod space;
mod state;
mod store;

pub use fix::{fix_orphans, rescan_quota, FixError, OrphanFix, RemovedOrphan};
pub use lvm::{backend as lvm_backend, is_lvm_device, lv_of_device};

use crate::config::{ContainerdSettings, DockerConfig, Paths, Thresholds};
use crate::docker::{Engine, EngineError, Info};
use crate::report::{Check, Report};
use btrfs_kit::mounts::{Mount, MountTable};
use btrfs_kit::{Filesystem, Fill};
use std::cell::OnceCell;
use std::path::{Path, PathBuf};

/// What to examine and how to judge it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The data root (Docker's `--data-root`).
    pub data_root: PathBuf,
    /// Docker's configuration directory, socket and pidfile.
    pub docker: DockerConfig,
    /// A system containerd's configuration file and `ctr`.
    pub containerd: ContainerdSettings,
    /// System paths.
    pub paths: Paths,
    /// Thresholds.
    pub thresholds: Thresholds,
    /// Confine LVM to these devices (empty: every device).
    pub lvm_devices: Vec<PathBuf>,
}

impl Target {
    /// A target built from a configuration, for `data_root` (the configured one when `None`).
    pub fn from_config(config: &crate::config::Config, data_root: Option<PathBuf>) -> Target {
        Target {
            data_root: data_root.unwrap_or_else(|| config.docker.data_root.clone()),
            docker: config.docker.clone(),
            containerd: config.containerd.clone(),
            paths: config.paths.clone(),
            thresholds: config.thresholds.clone(),
            lvm_devices: config.lvm.devices.clone(),
        }
    }
}

/// Which checks to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every check (`doctor`).
    All,
    /// The cheap ones a probe runs every minute (`check`): read-only state, space, and where
    /// the containerd image store keeps its snapshots.
    Probe,
}

/// The ids of the checks [`Scope::Probe`] runs, in order.
pub const PROBE_CHECKS: [&str; 6] = [
    "state.read-only",
    "space.used",
    "space.unallocated",
    "space.metadata",
    "space.global-reserve",
    "containerd.roots",
];

/// What the checks share, read once.
pub(crate) struct Context<'a> {
    pub target: &'a Target,
    /// The data root, canonicalised, or why it could not be.
    pub root: Result<PathBuf, String>,
    pub mounts: Result<MountTable, String>,
    pub fs: Result<Filesystem, btrfs_kit::Error>,
    fill: OnceCell<Result<Fill, String>>,
    info: OnceCell<Result<Info, EngineError>>,
}

impl<'a> Context<'a> {
    fn new(target: &'a Target) -> Self {
        let root = target
            .data_root
            .canonicalize()
            .map_err(|e| format!("{} cannot be examined: {e}", target.data_root.display()));
        let mounts = MountTable::read(&target.paths.mountinfo)
            .map_err(|e| format!("cannot read {}: {e}", target.paths.mountinfo.display()));
        let fs = Filesystem::open(&target.data_root);
        Context {
            target,
            root,
            mounts,
            fs,
            fill: OnceCell::new(),
            info: OnceCell::new(),
        }
    }

    /// The data root as given (for messages).
    pub fn path(&self) -> &Path {
        &self.target.data_root
    }

    /// The btrfs filesystem, or the check that explains why there is none.
    pub fn btrfs(&self, id: &'static str) -> Result<&Filesystem, Check> {
        self.fs.as_ref().map_err(|e| match e.kind() {
            btrfs_kit::ErrorKind::NotBtrfs { found } => {
                Check::unknown(id, format!("not btrfs ({found}): nothing to judge"))
            }
            _ => Check::unknown(id, e.to_string()),
        })
    }

    /// The running daemon's `GET /info` (asked once).
    pub fn info(&self) -> Result<&Info, &EngineError> {
        self.info
            .get_or_init(|| Engine::new(&self.target.docker.socket).info())
            .as_ref()
    }

    /// How full the filesystem is (read once).
    pub fn fill(&self, id: &'static str) -> Result<&Fill, Check> {
        let fs = self.btrfs(id)?;
        self.fill
            .get_or_init(|| fs.fill().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| Check::unknown(id, e.clone()))
    }

    /// The mount the data root is on.
    pub fn mount(&self, id: &'static str) -> Result<&Mount, Check> {
        let root = self
            .root
            .as_ref()
            .map_err(|e| Check::unknown(id, e.clone()))?;
        let table = self
            .mounts
            .as_ref()
            .map_err(|e| Check::unknown(id, e.clone()))?;
        table
            .containing(root)
            .ok_or_else(|| Check::unknown(id, format!("no mount holds {}", root.display())))
    }
}

/// A check that needs root, run without it.
pub(crate) fn needs_root(id: &'static str, what: &str) -> Check {
    Check::unknown(
        id,
        format!("{what} needs root (CAP_SYS_ADMIN): run as root"),
    )
}

/// Collapses `Result<Check, Check>` (an early "cannot judge" is a check too).
pub(crate) fn either(result: Result<Check, Check>) -> Check {
    result.unwrap_or_else(|c| c)
}

/// Runs the checks of `scope` on `target`.
pub fn run(target: &Target, scope: Scope) -> Report {
    let ctx = Context::new(target);
    let mut checks = Vec::new();
    let view = store::view(&ctx);
    let all = scope == Scope::All;
    if all {
        checks.push(state::own_filesystem(&ctx));
        checks.push(state::is_btrfs(&ctx));
        checks.push(store::driver_configured(&ctx, &view));
        checks.push(docker::driver_running(&ctx));
        checks.push(store::image_store(&ctx, &view));
        checks.push(either(store::roots(&ctx, &view)));
        checks.push(either(store::snapshotter_loaded(&ctx, &view)));
        checks.push(crate::kernel::check());
    }
    checks.push(either(state::read_only(&ctx)));
    checks.push(either(space::used(&ctx)));
    checks.push(either(space::unallocated(&ctx)));
    checks.push(either(space::metadata(&ctx)));
    checks.push(either(space::global_reserve(&ctx)));
    if !all {
        checks.push(either(store::roots(&ctx, &view)));
    }
    if all {
        checks.push(either(state::balance(&ctx)));
        checks.push(either(state::exclusive_operation(&ctx)));
        checks.push(either(health::device_errors(&ctx)));
        checks.push(either(health::scrub(&ctx)));
        let layers = docker::layers(&ctx);
        checks.push(either(docker::orphans(&ctx, &layers)));
        checks.push(either(docker::missing_layers(&layers)));
        checks.push(either(store::orphans(&ctx, &view)));
        checks.push(either(state::quota_subvolumes(&ctx)));
        checks.push(either(state::quota_consistency(&ctx)));
        let (vg_free, fills) = lvm::checks(&ctx);
        checks.push(vg_free);
        checks.push(fills);
    }
    Report::new(&target.data_root, checks)
}
