//! Which image store the daemon uses, and the containerd image store's checks: its roots on
//! this filesystem, containerd's btrfs snapshotter loaded, and the snapshotter's orphans.

use super::Context;
use crate::docker::containerd::bolt::BoltError;
use crate::docker::containerd::ctr::Ctr;
use crate::docker::containerd::meta;
use crate::docker::containerd::snapshotter::{self, LayoutError};
use crate::docker::containerd::{self, Containerd, Supervision, BTRFS, SNAPSHOTTER_TYPE};
use crate::docker::store::{self, ImageStore, Reason, StoreChoice};
use crate::docker::{DaemonJson, Info};
use crate::report::{Check, Figure, Status, Unit};
use btrfs_kit::Filesystem;
use std::path::{Path, PathBuf};

/// What the checks of the image store share, read once.
pub(crate) struct StoreView {
    /// daemon.json's choice by moby's rules, or why it could not be read.
    pub configured: Result<StoreChoice, String>,
    /// The store the running daemon uses.
    pub running: Option<ImageStore>,
    /// The daemon's containerd, when the store in effect is containerd's.
    pub containerd: Option<Result<Containerd, String>>,
}

impl StoreView {
    /// The store in effect: the running daemon's, else daemon.json's choice.
    pub fn effective(&self) -> Option<ImageStore> {
        self.running
            .or_else(|| self.configured.as_ref().ok().map(|c| c.store))
    }
}

/// The engine's major version: the running daemon's, else the installed dockerd's (asked only
/// when moby's rules need it).
fn engine_major(info: Option<&Info>, config: &DaemonJson) -> Option<u32> {
    if let Some(i) = info {
        return i.server_version.split('.').next()?.parse().ok();
    }
    if !store::needs_engine_major(config) {
        return None;
    }
    store::installed_engine_major(Path::new("dockerd"))
}

/// Reads daemon.json, the daemon's answer and the containerd in use.
pub(crate) fn view(ctx: &Context) -> StoreView {
    let info = ctx.info().ok();
    let config = DaemonJson::read(&ctx.target.docker.config_dir);
    let configured = config
        .as_ref()
        .map(|c| store::choose(c, engine_major(info, c), ctx.path()))
        .map_err(|e| e.to_string());
    let running = info.map(|i| {
        if i.uses_containerd_snapshotter() {
            ImageStore::Containerd
        } else {
            ImageStore::Graphdriver
        }
    });
    let mut view = StoreView {
        configured,
        running,
        containerd: None,
    };
    if view.effective() == Some(ImageStore::Containerd) {
        let named = containerd::named_address(config.as_ref().ok(), &ctx.target.paths.unit_dir);
        view.containerd = Some(
            containerd::locate(
                info,
                ctx.path(),
                named.as_ref(),
                &ctx.target.containerd.config,
            )
            .map_err(|e| e.to_string()),
        );
    }
    view
}

/// `docker.image-store`: the store the running daemon uses against daemon.json's choice.
pub fn image_store(ctx: &Context, view: &StoreView) -> Check {
    const ID: &str = "docker.image-store";
    let choice = match &view.configured {
        Ok(c) => c,
        Err(e) => return Check::unknown(ID, e.clone()),
    };
    let Some(running) = view.running else {
        return Check::unknown(
            ID,
            format!(
                "the Docker daemon does not answer: daemon.json chooses the {}",
                choice.explain()
            ),
        )
        .action("start Docker to confirm which store it runs");
    };
    let info = ctx.info().ok();
    let version = info.map(|i| i.server_version.as_str()).unwrap_or("?");
    if running != choice.store {
        return Check::new(
            ID,
            Status::Warning,
            format!(
                "dockerd {version} runs the {running} image store, but daemon.json chooses the {}",
                choice.explain()
            ),
        )
        .action("restart Docker to apply daemon.json (or look for a --feature/--storage-driver flag in its unit); images and containers of the other store stay hidden until switched back");
    }
    Check::ok(
        ID,
        format!(
            "dockerd {version} runs the {running} image store, as daemon.json chooses ({})",
            choice.explain()
        ),
    )
}

/// `docker.storage-driver.configured`: daemon.json, read by moby's rules.
pub fn driver_configured(ctx: &Context, view: &StoreView) -> Check {
    const ID: &str = "docker.storage-driver.configured";
    let dir = &ctx.target.docker.config_dir;
    let config = match DaemonJson::read(dir) {
        Ok(c) => c,
        Err(e) => {
            return Check::new(ID, Status::Critical, e.to_string())
                .action("dockerd refuses to start with an invalid daemon.json: fix the file")
        }
    };
    let path = config.path.display();
    let Ok(choice) = &view.configured else {
        return Check::unknown(ID, format!("{path} could not be judged"));
    };
    let driver = config.storage_driver();
    if choice.store == ImageStore::Containerd {
        return match driver {
            Some("btrfs") => Check::ok(
                ID,
                format!("{path} selects the containerd image store with containerd's btrfs snapshotter ({})", choice.explain()),
            ),
            Some(other) => Check::new(
                ID,
                Status::Critical,
                format!("{path} selects the containerd image store with the {other} snapshotter, not btrfs"),
            )
            .action("set \"storage-driver\": \"btrfs\" and restart Docker; images unpacked by another snapshotter must be pulled again"),
            None => Check::new(
                ID,
                Status::Warning,
                format!("{path} leaves the snapshotter of the containerd image store unset ({}): dockerd picks overlayfs, also on btrfs", choice.explain()),
            )
            .action("pin it: \"storage-driver\": \"btrfs\""),
        };
    }
    match driver {
        Some("btrfs") => {
            let ambiguous = matches!(choice.reason, Reason::NamedDriver { .. })
                && ctx
                    .info()
                    .ok()
                    .and_then(|i| i.server_version.split('.').next()?.parse::<u32>().ok())
                    .or_else(|| store::installed_engine_major(Path::new("dockerd")))
                    .is_some_and(|m| m >= 29);
            if ambiguous {
                return Check::new(
                    ID,
                    Status::Warning,
                    format!("{path} names \"storage-driver\": \"btrfs\" without features.{}: Docker 29 reads that as the legacy btrfs graph driver, not the containerd image store it defaults to", store::CONTAINERD_SNAPSHOTTER),
                )
                .action(format!("say which store you mean: \"features\": {{\"{0}\": false}} keeps the graph driver, {{\"{0}\": true}} chooses the containerd image store with its btrfs snapshotter", store::CONTAINERD_SNAPSHOTTER));
            }
            Check::ok(ID, format!("{path} selects the btrfs storage driver ({})", choice.explain()))
        }
        Some(other) => Check::new(
            ID,
            Status::Critical,
            format!("{path} selects the {other} storage driver, not btrfs"),
        )
        .action("set \"storage-driver\": \"btrfs\" (`dockroot provision` does, keeping the other keys) and restart Docker; images stored by another driver must be pulled again"),
        None => Check::new(
            ID,
            Status::Warning,
            format!("{path} sets no storage driver: dockerd picks the first that works of overlay2, fuse-overlayfs, btrfs, ... (overlay2, also on btrfs) unless the data root already holds state of one driver"),
        )
        .action("pin it: \"storage-driver\": \"btrfs\" (`dockroot provision` writes it)"),
    }
}

/// The containerd of the view, or the check saying why there is none to judge.
fn containerd_of<'a>(id: &'static str, view: &'a StoreView) -> Result<&'a Containerd, Check> {
    match &view.containerd {
        None => Err(Check::ok(
            id,
            format!(
                "the {} image store is in use: containerd holds no images here",
                view.effective().unwrap_or(ImageStore::Graphdriver)
            ),
        )),
        Some(Err(e)) => Err(Check::unknown(id, e.clone())),
        Some(Ok(c)) => Ok(c),
    }
}

/// The nearest existing ancestor of `path` (where it is, or would be created).
fn existing(path: &Path) -> Option<&Path> {
    path.ancestors().find(|p| p.exists())
}

/// Where `path` lives: Ok(fsid) on btrfs, or the filesystem it is on instead.
fn fsid_of(path: &Path) -> Result<uuid::Uuid, String> {
    let at = existing(path).ok_or_else(|| format!("{} has no existing parent", path.display()))?;
    match Filesystem::open(at) {
        Ok(fs) => fs.info().map(|i| i.fsid).map_err(|e| e.to_string()),
        Err(e) => match e.kind() {
            btrfs_kit::ErrorKind::NotBtrfs { found } => Err(format!("on {found}, not btrfs")),
            _ => Err(e.to_string()),
        },
    }
}

/// `containerd.roots`: every root holding images and containers is on this btrfs.
pub fn roots(ctx: &Context, view: &StoreView) -> Result<Check, Check> {
    const ID: &str = "containerd.roots";
    let c = containerd_of(ID, view)?;
    let fs = ctx.btrfs(ID)?;
    let ours = fs
        .info()
        .map_err(|e| Check::unknown(ID, e.to_string()))?
        .fsid;
    let mut off = Vec::new();
    for (name, path) in c.roots() {
        match fsid_of(&path) {
            Ok(fsid) if fsid == ours => {}
            Ok(_) => off.push(format!("{name} {} is on another btrfs", path.display())),
            Err(why) => off.push(format!("{name} {} is {why}", path.display())),
        }
    }
    let figure = Figure::new("roots_off_filesystem", off.len() as f64, Unit::Count)
        .alert_above(f64::INFINITY, 1.0);
    let who = match c.supervision {
        Supervision::Managed => "dockerd's own containerd",
        Supervision::System => "the system containerd",
    };
    if off.is_empty() {
        return Ok(Check::ok(
            ID,
            format!(
                "{who} keeps images and containers on this filesystem ({}: root {}, snapshots {})",
                c.evidence,
                c.config.root.display(),
                c.config.btrfs_root().display()
            ),
        )
        .figure(figure));
    }
    let config = c
        .config
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "containerd's configuration".into());
    Ok(Check::new(
        ID,
        Status::Critical,
        format!(
            "the containerd image store keeps images and containers off {} ({}): {}; a full image store fills that filesystem instead (moby#50517)",
            ctx.path().display(),
            c.evidence,
            off.join("; ")
        ),
    )
    .action(format!(
        "point containerd's root (or the btrfs snapshotter's root_path) in {config} at this filesystem, or let dockerd run its own containerd (drop --containerd), then restart containerd and Docker; images there must be pulled again"
    ))
    .figure(figure)
    .items(off))
}

/// `containerd.snapshotter`: containerd's btrfs snapshotter is loaded (containerd skips it
/// silently when its root is not on btrfs; then only unpacking an image fails).
pub fn snapshotter_loaded(ctx: &Context, view: &StoreView) -> Result<Check, Check> {
    const ID: &str = "containerd.snapshotter";
    let c = containerd_of(ID, view)?;
    let root = c.config.btrfs_root();
    let fix = "put the snapshotter root on btrfs (containerd's root or root_path of [plugins.\"io.containerd.snapshotter.v1.btrfs\"]), then restart containerd and Docker";
    if c.config.btrfs_disabled {
        return Ok(Check::new(
            ID,
            Status::Critical,
            "containerd's configuration disables the btrfs snapshotter (disabled_plugins): images cannot be unpacked (snapshotter not loaded: btrfs)",
        )
        .action("remove it from disabled_plugins and restart containerd"));
    }
    let ctr = Ctr::new(&ctx.target.containerd.ctr, &c.address);
    let api = ctr.plugin_status(SNAPSHOTTER_TYPE, BTRFS);
    let on_btrfs = fsid_of(&root);
    let skipped = |why: String| {
        Check::new(
            ID,
            Status::Critical,
            format!(
                "containerd skips its btrfs snapshotter: {why}; `docker info` still says btrfs, but unpacking an image fails (snapshotter not loaded: btrfs)"
            ),
        )
        .action(fix)
    };
    match (api, on_btrfs) {
        (Ok(Some(status)), _) if status == "ok" => Ok(Check::ok(
            ID,
            format!("containerd's btrfs snapshotter is loaded (ctr plugins ls: ok) on {}", root.display()),
        )),
        (Ok(Some(status)), fs) => Ok(skipped(format!(
            "ctr plugins ls says {status}{}",
            fs.err().map(|w| format!(", its root {} is {w}", root.display())).unwrap_or_default()
        ))),
        (Ok(None), _) => Ok(skipped("ctr plugins ls does not list it".into())),
        (Err(e), Err(why)) => Ok(skipped(format!(
            "its root {} is {why} (containerd's API did not answer: {e})",
            root.display()
        ))),
        (Err(_), Ok(_)) => Ok(Check::ok(
            ID,
            format!(
                "the btrfs snapshotter's root {} is on btrfs, so containerd loads it (containerd does not answer on {} to confirm)",
                root.display(),
                c.address.display()
            ),
        )),
    }
}

/// `containerd.orphans`: subvolumes of the btrfs snapshotter no record names, `rm-*` leftovers
/// of a crashed removal, and records whose subvolume is gone.
pub fn orphans(ctx: &Context, view: &StoreView) -> Result<Check, Check> {
    const ID: &str = "containerd.orphans";
    let c = containerd_of(ID, view)?;
    let root = c.config.btrfs_root();
    let (records, report) = match snapshotter::analyse(&root) {
        Ok(r) => r,
        Err(LayoutError::Bolt(BoltError::Io { source, .. }))
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(Check::ok(
                ID,
                format!(
                    "no btrfs snapshotter at {} yet: no snapshots",
                    root.display()
                ),
            )
            .figure(Figure::new("orphans", 0.0, Unit::Count).alert_above(1.0, f64::INFINITY)))
        }
        Err(LayoutError::Bolt(BoltError::InUse { .. })) => return running(ctx, c, &root),
        Err(e) => return Err(Check::unknown(ID, e.to_string())),
    };
    let unreferenced = unreferenced(c, &records);
    let note = match unreferenced {
        Some(0) | None => String::new(),
        Some(n) => format!(
            "; {n} snapshot(s) unreferenced in containerd's meta.db (left for its garbage collector, which removes them at a later collection)"
        ),
    };
    let removable = report.removable();
    let mut figures = vec![
        Figure::new("orphans", removable.len() as f64, Unit::Count).alert_above(1.0, f64::INFINITY),
        Figure::new(
            "missing_snapshots",
            report.missing.len() as f64,
            Unit::Count,
        )
        .alert_above(f64::INFINITY, 1.0),
        Figure::new("snapshot_subvolumes", report.subvolumes as f64, Unit::Count),
    ];
    if let Some(n) = unreferenced {
        figures.push(Figure::new("unreferenced_snapshots", n as f64, Unit::Count));
    }
    let mut items: Vec<String> = removable
        .iter()
        .map(|p| root.join(p).display().to_string())
        .collect();
    items.extend(
        report
            .missing
            .iter()
            .map(|(key, p)| format!("{} (missing, needed by {key})", root.join(p).display())),
    );
    if removable.is_empty() && report.missing.is_empty() {
        return Ok(Check {
            figures,
            ..Check::ok(
                ID,
                format!(
                    "{} snapshot subvolumes under {}, each named by a record of metadata.db{note}",
                    report.subvolumes,
                    root.display()
                ),
            )
        });
    }
    let mut parts = Vec::new();
    if !report.orphans.is_empty() {
        parts.push(format!(
            "{} subvolume(s) no record names (containerd never deletes them)",
            report.orphans.len()
        ));
    }
    if !report.removing.is_empty() {
        parts.push(format!(
            "{} rm-* leftover(s) of a removal cut short",
            report.removing.len()
        ));
    }
    if !report.missing.is_empty() {
        parts.push(format!(
            "{} record(s) whose subvolume is gone (their images or containers cannot be used)",
            report.missing.len()
        ));
    }
    let status = if report.missing.is_empty() {
        Status::Warning
    } else {
        Status::Critical
    };
    let examples = items.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    let action = if report.missing.is_empty() {
        format!(
            "stop Docker (and a system containerd), then `dockroot doctor --fix-orphans {}` deletes them and lists what it deleted",
            ctx.path().display()
        )
    } else {
        "remove the broken images and containers (`docker rmi -f`, `docker rm -f`) and pull them again; then --fix-orphans for the rest".into()
    };
    Ok(Check {
        figures,
        items,
        ..Check::new(
            ID,
            status,
            format!(
                "of {} snapshot subvolumes under {}: {}; e.g. {}{note}",
                report.subvolumes,
                root.display(),
                parts.join("; "),
                examples
            ),
        )
        .action(action)
    })
}

/// How many of the snapshotter's `records` no namespace of containerd's meta.db references
/// (None when meta.db cannot be read).
fn unreferenced(c: &Containerd, records: &[snapshotter::Record]) -> Option<usize> {
    let db = crate::docker::containerd::bolt::Db::open(&c.config.meta_db()).ok()?;
    let namespaces = meta::all_namespaces(&db, BTRFS).ok()?;
    let paths: Vec<PathBuf> = records.iter().map(snapshotter::Record::subvolume).collect();
    Some(
        meta::owners(&paths, records, &namespaces)
            .values()
            .filter(|o| matches!(o, meta::Owner::Unreferenced { .. }))
            .count(),
    )
}

/// The orphan check while containerd holds metadata.db: what its API lists against the
/// subvolumes (by count), and `rm-*` leftovers by name.
fn running(ctx: &Context, c: &Containerd, root: &Path) -> Result<Check, Check> {
    const ID: &str = "containerd.orphans";
    let entries = snapshotter::entries(root).map_err(|e| Check::unknown(ID, e.to_string()))?;
    let ctr = Ctr::new(&ctx.target.containerd.ctr, &c.address);
    let full = "the full check (subvolume by subvolume) needs containerd stopped: it holds metadata.db open";
    let listed = ctr.namespaces().and_then(|nss| {
        nss.iter()
            .map(|ns| ctr.snapshots(ns, BTRFS).map(|s| s.len()))
            .sum::<Result<usize, _>>()
    });
    let listed = match listed {
        Ok(n) => n,
        Err(e) => {
            return Err(Check::unknown(
                ID,
                format!(
                    "containerd holds {}/metadata.db open and its API did not answer ({e}); {full}",
                    root.display()
                ),
            ))
        }
    };
    let removing: Vec<PathBuf> = entries
        .iter()
        .filter(|e| e.name.starts_with("rm-"))
        .map(|e| root.join(e.path()))
        .collect();
    let live = entries.len() - removing.len();
    let extra = live.saturating_sub(listed);
    let count = removing.len() + extra;
    let figures = vec![
        Figure::new("orphans", count as f64, Unit::Count).alert_above(1.0, f64::INFINITY),
        Figure::new("snapshot_subvolumes", entries.len() as f64, Unit::Count),
    ];
    let summary = format!(
        "{} snapshot subvolumes under {}, containerd lists {listed} snapshots (ctr snapshots ls, every namespace); {} rm-* leftover(s); {full}",
        entries.len(),
        root.display(),
        removing.len()
    );
    let status = if count == 0 {
        Status::Ok
    } else {
        Status::Warning
    };
    let mut check =
        Check::new(ID, status, summary).items(removing.iter().map(|p| p.display().to_string()));
    check.figures = figures;
    if count > 0 {
        check = check.action(format!(
            "stop Docker and containerd, then `dockroot doctor {}` names the orphans and --fix-orphans deletes them",
            ctx.path().display()
        ));
    }
    Ok(check)
}
