//! The image store's part of `provision`: select the store in daemon.json, and with the
//! containerd image store on a **system** containerd, put containerd's root on the same btrfs.
//!
//! With the graph driver every layer lives under the data root. With the containerd image
//! store, layers are snapshots of containerd's btrfs snapshotter under *containerd's* root:
//! `<data-root>/containerd/daemon` for the containerd dockerd starts itself (on the LV already),
//! but `/var/lib/containerd` for a system containerd (moby#50517) — on the root filesystem,
//! which a full image store would fill again, and not btrfs, so containerd skips its btrfs
//! snapshotter and only image unpacking fails. Provision then makes a subvolume
//! [`CONTAINERD_SUBVOLUME`] at the filesystem's top level and mounts it (`subvol=`) on
//! containerd's root, permanently by a second unit keyed by the UUID with a containerd.service
//! drop-in (or an fstab line): content store, snapshots and metadata all land on the LV, and
//! containerd's configuration is left as it is.
//!
//! dockerd uses a system containerd when daemon.json names one (`"containerd"`), or when
//! `/run/containerd/containerd.sock` exists as it starts. A system containerd counts as present
//! when daemon.json names it, its socket exists, or its configuration file exists (installed
//! packages ship one).

use super::permanent::{self, Holder};
use super::{refuse, same_device, Action, ProvisionError, Request, Step};
use crate::docker::containerd::config::{ConfigError, ContainerdConfig};
use crate::docker::containerd::{named_address, NamedBy};
use crate::docker::store::{self, ImageStore, Reason, StoreChoice, CONTAINERD_SNAPSHOTTER};
use crate::docker::DaemonJson;
use btrfs_kit::mounts::MountTable;
use std::path::{Path, PathBuf};

/// The subvolume at the filesystem's top level that holds a system containerd's root.
pub const CONTAINERD_SUBVOLUME: &str = "@containerd";

/// The dockerd program: `program` if it is a path, else the first `program` in PATH, /usr/sbin
/// or /usr/bin.
pub fn resolve_dockerd(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.exists().then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The store provision sets up: the one asked for, else what the installed dockerd picks on
/// a fresh data root (daemon.json's feature key, else the engine's default; the storage-driver
/// key is ignored, since provision sets it to btrfs).
pub fn choose(req: &Request, config: &DaemonJson) -> (StoreChoice, Option<u32>) {
    let major =
        resolve_dockerd(&req.docker.dockerd).and_then(|p| store::installed_engine_major(&p));
    if let Some(store) = req.image_store {
        return (
            StoreChoice {
                store,
                reason: Reason::Requested,
            },
            major,
        );
    }
    let mut fresh = config.clone();
    fresh
        .keys
        .remove(crate::docker::daemon_json::STORAGE_DRIVER);
    (store::choose(&fresh, major, &req.mount_point), major)
}

/// A system containerd provision must move onto the filesystem.
#[derive(Debug, Clone, PartialEq)]
struct SystemContainerd {
    /// Why we think dockerd will use it.
    evidence: String,
    /// Its socket.
    socket: PathBuf,
    /// Its root (`root` in its configuration, default /var/lib/containerd).
    root: PathBuf,
}

/// Plans the daemon.json feature step and, for the containerd store on a system containerd,
/// the steps that put containerd's root on the filesystem.
pub fn plan(
    req: &Request,
    device: &Path,
    fsid: Option<uuid::Uuid>,
    steps: &mut Vec<Step>,
) -> Result<(), ProvisionError> {
    let config = DaemonJson::read(&req.docker.config_dir)
        .map_err(|e| refuse(e.to_string(), "fix daemon.json by hand, then run again"))?;
    let (choice, major) = choose(req, &config);
    let engine = major.map_or("no dockerd found".to_string(), |m| format!("Docker {m}"));
    let path = config.path.clone();
    let current = config.feature(CONTAINERD_SNAPSHOTTER);
    let (done, description) = match choice.store {
        ImageStore::Containerd => (
            current == Some(true),
            format!(
                "set features.{CONTAINERD_SNAPSHOTTER}: true in {}: the containerd image store with containerd's btrfs snapshotter ({}; {engine})",
                path.display(),
                choice.explain()
            ),
        ),
        ImageStore::Graphdriver if current == Some(true) => (
            false,
            format!(
                "set features.{CONTAINERD_SNAPSHOTTER}: false in {}: the btrfs graph driver ({}; {engine}); images of the containerd store stay in containerd, unseen by Docker, until switched back: moby has no migration between the stores",
                path.display(),
                choice.explain()
            ),
        ),
        ImageStore::Graphdriver => (
            true,
            format!(
                "{} selects the btrfs graph driver: storage-driver btrfs without features.{CONTAINERD_SNAPSHOTTER} ({}; {engine})",
                path.display(),
                choice.explain()
            ),
        ),
    };
    steps.push(Step {
        description,
        action: Action::ImageStore {
            daemon_json: path.clone(),
            store: choice.store,
            previous: current,
        },
        done,
        undo: format!(
            "restore {} from its backup ({}.dockroot-backup-*)",
            path.display(),
            path.display()
        ),
    });
    if choice.store != ImageStore::Containerd {
        return Ok(());
    }
    let Some(system) = system_containerd(req, &config)? else {
        return Ok(());
    };
    plan_containerd_root(req, device, fsid, &system, steps)
}

/// The system containerd dockerd will use, if any; refuses when one runs or its
/// configuration keeps the btrfs snapshotter off containerd's root.
fn system_containerd(
    req: &Request,
    config: &DaemonJson,
) -> Result<Option<SystemContainerd>, ProvisionError> {
    let named = named_address(Some(config), &req.paths.unit_dir);
    let socket = named.as_ref().map_or_else(
        || req.docker.containerd_socket.clone(),
        |n| n.address.clone(),
    );
    let conf = &req.containerd_config;
    let evidence = if let Some(n) = &named {
        match &n.source {
            NamedBy::DaemonJson => format!("daemon.json names containerd {}", n.address.display()),
            NamedBy::Unit(_) => format!("{} names containerd {}", n.source, n.address.display()),
        }
    } else if socket.exists() {
        format!("{} exists (dockerd uses it when it does)", socket.display())
    } else if conf.exists() {
        format!(
            "{} exists: a system containerd is installed, and dockerd uses its socket whenever it runs",
            conf.display()
        )
    } else {
        return Ok(None);
    };
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Err(refuse(
            format!("containerd is running (it answers on {})", socket.display()),
            "stop it first (`systemctl stop docker docker.socket containerd`): a mount over the root of a running containerd hides its data; start it again after provision",
        ));
    }
    let (root, root_path) = containerd_roots(conf)?;
    if let Some(rp) = root_path.filter(|rp| !rp.starts_with(&root)) {
        return Err(refuse(
            format!(
                "{} puts the btrfs snapshotter at root_path {}, outside containerd's root {}",
                conf.display(),
                rp.display(),
                root.display()
            ),
            "remove that root_path (or point it under the root): provision puts containerd's root on the btrfs",
        ));
    }
    permanent::check_mount_point(&root)
        .map_err(|e| refuse(e, "give containerd a plain root in its configuration"))?;
    Ok(Some(SystemContainerd {
        evidence,
        socket,
        root,
    }))
}

/// containerd's `root` and the btrfs snapshotter's `root_path` from its configuration
/// (`docker::containerd::config`; a missing file is the defaults).
fn containerd_roots(conf: &Path) -> Result<(PathBuf, Option<PathBuf>), ProvisionError> {
    match ContainerdConfig::read(conf) {
        Ok(c) => Ok((c.root, c.btrfs_root_path)),
        Err(ConfigError::Invalid { path, reason }) => Err(refuse(
            format!(
                "{} is not valid TOML of containerd's shape: {reason}",
                path.display()
            ),
            "fix it (containerd would not start with it either)",
        )),
        Err(e) => Err(refuse(e.to_string(), "check its permissions")),
    }
}

/// What under containerd's root would be lost from sight under the mount: blobs of the
/// content store or snapshots of any snapshotter.
fn images_under(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.join("io.containerd.content.v1.content/blobs/sha256")];
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            let name = e.file_name();
            if name
                .to_str()
                .is_some_and(|n| n.starts_with("io.containerd.snapshotter.v1."))
            {
                dirs.push(e.path().join("snapshots"));
            }
        }
    }
    dirs.into_iter()
        .filter(|d| std::fs::read_dir(d).is_ok_and(|mut it| it.next().is_some()))
        .collect()
}

fn plan_containerd_root(
    req: &Request,
    device: &Path,
    fsid: Option<uuid::Uuid>,
    system: &SystemContainerd,
    steps: &mut Vec<Step>,
) -> Result<(), ProvisionError> {
    let root = &system.root;
    let table = MountTable::read(&req.paths.mountinfo).map_err(|e| {
        refuse(
            format!("cannot read {}: {e}", req.paths.mountinfo.display()),
            "check /proc",
        )
    })?;
    let subvol_root = format!("/{CONTAINERD_SUBVOLUME}");
    let mounted = match table.at(root) {
        Some(m)
            if same_device(Path::new(&m.source), device) && m.root == Path::new(&subvol_root) =>
        {
            true
        }
        Some(m) => {
            return Err(refuse(
                format!(
                    "containerd's root {} is already a mount point ({} {}, {})",
                    root.display(),
                    m.fstype,
                    m.source.display(),
                    m.root.display()
                ),
                "unmount it (moving its data aside) or give containerd another root",
            ))
        }
        None => false,
    };
    if !mounted {
        let held = images_under(root);
        if !held.is_empty() {
            return Err(refuse(
                format!(
                    "containerd's root {} already holds images ({}): a mount would hide them",
                    root.display(),
                    held.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                ),
                format!(
                    "with containerd stopped, move it aside (`mv {0} {0}.old`) and run provision again; then load the images again (`docker save` before, `docker load` after)",
                    root.display()
                ),
            ));
        }
    }
    let subvolume = req.mount_point.join(CONTAINERD_SUBVOLUME);
    steps.push(Step {
        description: format!(
            "create subvolume {} at the filesystem's top level for the system containerd ({})",
            subvolume.display(),
            system.evidence
        ),
        done: btrfs_kit::subvolume::info(&subvolume).is_ok(),
        action: Action::CreateSubvolume {
            path: subvolume.clone(),
        },
        undo: format!(
            "btrfs subvolume delete {} (with containerd's data)",
            subvolume.display()
        ),
    });
    steps.push(Step {
        description: format!("create containerd's root {}", root.display()),
        done: root.is_dir(),
        action: Action::CreateMountPoint { path: root.clone() },
        undo: format!("rmdir {}", root.display()),
    });
    let options = format!("{},subvol={CONTAINERD_SUBVOLUME}", req.mount_options);
    steps.push(Step {
        description: format!(
            "mount subvolume {CONTAINERD_SUBVOLUME} of {} on containerd's root {} with {options} (its content store, snapshots and metadata then live on the btrfs, and its btrfs snapshotter loads; socket {})",
            device.display(),
            root.display(),
            system.socket.display()
        ),
        action: Action::Mount {
            device: device.into(),
            mount_point: root.clone(),
            options: options.clone(),
        },
        done: mounted,
        undo: format!("umount {}", root.display()),
    });
    super::plan_permanent_mount(req, fsid, Holder::ContainerdRoot, root, &options, steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DockerConfig, Paths};

    /// A request whose every path is under `dir`; no dockerd (its version unknown).
    fn request(dir: &Path, store: Option<ImageStore>) -> Request {
        std::fs::create_dir_all(dir.join("etc/docker")).unwrap();
        Request {
            vg: "vg0".into(),
            size: lvm_kit::Bytes::gib(1),
            lv: "docker".into(),
            label: "docker".into(),
            mount_point: dir.join("var/lib/docker"),
            mount_options: "noatime".into(),
            fstab: false,
            image_store: store,
            containerd_config: dir.join("etc/containerd/config.toml"),
            docker: DockerConfig {
                data_root: dir.join("var/lib/docker"),
                config_dir: dir.join("etc/docker"),
                socket: dir.join("run/docker.sock"),
                pidfile: dir.join("run/docker.pid"),
                dockerd: dir.join("no/dockerd"),
                containerd_socket: dir.join("run/containerd/containerd.sock"),
            },
            paths: Paths {
                unit_dir: dir.join("etc/systemd/system"),
                fstab: dir.join("etc/fstab"),
                ..Paths::default()
            },
            lvm_devices: vec![],
        }
    }

    fn containerd_config(dir: &Path, extra: &str) -> PathBuf {
        let root = dir.join("var/lib/containerd");
        std::fs::create_dir_all(dir.join("etc/containerd")).unwrap();
        std::fs::write(
            dir.join("etc/containerd/config.toml"),
            format!("version = 3\nroot = \"{}\"\n{extra}", root.display()),
        )
        .unwrap();
        root
    }

    fn plan_of(req: &Request) -> Result<Vec<Step>, ProvisionError> {
        let mut steps = Vec::new();
        plan(
            req,
            Path::new("/dev/null"),
            Some(uuid::Uuid::nil()),
            &mut steps,
        )?;
        Ok(steps)
    }

    #[test]
    fn without_a_dockerd_the_graph_driver_is_kept_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let steps = plan_of(&request(dir.path(), None)).unwrap();
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert!(steps[0].done, "{steps:?}");
        assert!(
            steps[0].description.contains("no dockerd found")
                && steps[0].description.contains("graph driver"),
            "{}",
            steps[0].description
        );
    }

    #[test]
    fn containerd_on_dockerds_own_containerd_needs_only_the_feature() {
        let dir = tempfile::tempdir().unwrap();
        let steps = plan_of(&request(dir.path(), Some(ImageStore::Containerd))).unwrap();
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert!(
            !steps[0].done
                && matches!(
                    steps[0].action,
                    Action::ImageStore {
                        store: ImageStore::Containerd,
                        previous: None,
                        ..
                    }
                ),
            "{steps:?}"
        );
    }

    #[test]
    fn a_system_containerds_root_becomes_a_subvolume_mounted_by_a_unit() {
        let dir = tempfile::tempdir().unwrap();
        let root = containerd_config(dir.path(), "");
        // A containerd that ran once without images: plugin directories, an empty meta.db.
        std::fs::create_dir_all(root.join("io.containerd.snapshotter.v1.btrfs/snapshots")).unwrap();
        std::fs::create_dir_all(root.join("io.containerd.metadata.v1.bolt")).unwrap();
        std::fs::write(root.join("io.containerd.metadata.v1.bolt/meta.db"), b"").unwrap();
        let req = request(dir.path(), Some(ImageStore::Containerd));
        let steps = plan_of(&req).unwrap();
        let kinds: Vec<&str> = steps
            .iter()
            .map(|s| match &s.action {
                Action::ImageStore { .. } => "image-store",
                Action::CreateSubvolume { .. } => "subvolume",
                Action::CreateMountPoint { .. } => "mkdir",
                Action::Mount { .. } => "mount",
                Action::MountUnit { .. } => "unit",
                _ => "other",
            })
            .collect();
        assert_eq!(
            kinds,
            ["image-store", "subvolume", "mkdir", "mount", "unit"]
        );
        match &steps[1].action {
            Action::CreateSubvolume { path } => {
                assert_eq!(path, &req.mount_point.join(CONTAINERD_SUBVOLUME))
            }
            other => panic!("{other:?}"),
        }
        match &steps[3].action {
            Action::Mount {
                mount_point,
                options,
                ..
            } => {
                assert_eq!(mount_point, &root);
                assert_eq!(options, "noatime,subvol=@containerd");
            }
            other => panic!("{other:?}"),
        }
        match &steps[4].action {
            Action::MountUnit {
                unit,
                dropin,
                holder,
                mount_point,
                ..
            } => {
                assert_eq!(*holder, Holder::ContainerdRoot);
                assert_eq!(mount_point, &root);
                assert_eq!(
                    unit.file_name().unwrap().to_str().unwrap(),
                    permanent::unit_name(&root)
                );
                assert!(dropin.ends_with("containerd.service.d/dockroot-containerd-root.conf"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            steps[1].description.contains("config.toml exists"),
            "{}",
            steps[1].description
        );
        let text = permanent::render_unit_for(
            Holder::ContainerdRoot,
            uuid::Uuid::nil(),
            &root,
            "noatime,subvol=@containerd",
        );
        assert!(
            text.lines().any(|l| l == "Before=containerd.service")
                && text
                    .lines()
                    .any(|l| l == "Options=noatime,subvol=@containerd"),
            "{text}"
        );
        // With --fstab: one line with the subvolume option instead of the unit.
        let mut req = req;
        req.fstab = true;
        let steps = plan_of(&req).unwrap();
        match &steps.last().unwrap().action {
            Action::FstabLine {
                mount_point,
                options,
                ..
            } => {
                assert_eq!(mount_point, &root);
                assert_eq!(options, "noatime,subvol=@containerd");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refusals_name_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let req = request(dir.path(), Some(ImageStore::Containerd));
        let refused = |req: &Request| match plan_of(req) {
            Err(ProvisionError::Refused { reason, way_out }) => format!("{reason} / {way_out}"),
            other => panic!("not refused: {other:?}"),
        };
        // root_path outside containerd's root.
        let outside = dir.path().join("elsewhere");
        containerd_config(
            dir.path(),
            &format!(
                "[plugins.\"io.containerd.snapshotter.v1.btrfs\"]\nroot_path = \"{}\"\n",
                outside.display()
            ),
        );
        let text = refused(&req);
        assert!(text.contains("outside containerd's root"), "{text}");
        // A root that holds images.
        let root = containerd_config(dir.path(), "");
        let blobs = root.join("io.containerd.content.v1.content/blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(blobs.join("0123"), b"layer").unwrap();
        let text = refused(&req);
        assert!(
            text.contains("already holds images") && text.contains("docker save"),
            "{text}"
        );
        std::fs::remove_file(blobs.join("0123")).unwrap();
        // A running containerd: something answers on its socket.
        std::fs::create_dir_all(dir.path().join("run/containerd")).unwrap();
        let _listener =
            std::os::unix::net::UnixListener::bind(&req.docker.containerd_socket).unwrap();
        let text = refused(&req);
        assert!(
            text.contains("containerd is running") && text.contains("systemctl stop"),
            "{text}"
        );
        // Invalid TOML.
        drop(_listener);
        std::fs::remove_file(&req.docker.containerd_socket).unwrap();
        std::fs::write(&req.containerd_config, "root = ").unwrap();
        let text = refused(&req);
        assert!(text.contains("not valid TOML"), "{text}");
    }

    #[test]
    fn the_data_roots_unit_is_the_text_earlier_versions_wrote() {
        // provision recognises its own unit by its exact text: a unit written by an earlier
        // dockroot must still compare equal.
        let fsid = uuid::Uuid::nil();
        let earlier = format!(
            "# Written by dockroot provision: Docker's data root on its own btrfs filesystem.\n[Unit]\nDescription=Docker data root on btrfs ({fsid})\nBefore=docker.service\n\n[Mount]\nWhat=/dev/disk/by-uuid/{fsid}\nWhere=/var/lib/docker\nType=btrfs\nOptions=noatime\n\n[Install]\nWantedBy=local-fs.target\n"
        );
        assert_eq!(
            permanent::render_unit(fsid, Path::new("/var/lib/docker"), "noatime"),
            earlier
        );
        assert_eq!(
            permanent::render_docker_dropin(Path::new("/var/lib/docker")),
            "# Written by dockroot provision: start Docker only once its data root is mounted.\n[Unit]\nRequiresMountsFor=/var/lib/docker\n"
        );
    }
}
