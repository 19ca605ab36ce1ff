//! [`apply`]: run the plan's steps that are not done yet; a failure names what this run did
//! and how to undo it.

use super::permanent;
use super::plan::lvm;
use super::{Action, Plan, ProvisionError, Request, Step, StepError};
use crate::backup::backup;
use crate::docker::{DaemonJson, ImageStore};
use btrfs_kit::mkfs::{self, MkfsOptions, Probe};
use lvm_kit::{Bytes, LvCreate, LvmBackend};
use std::path::Path;
use uuid::Uuid;

/// Runs the plan's steps that are not done yet, telling `on_step` about each (index from 0,
/// its description) after it succeeded. `stop` is asked between steps (e.g. a signal).
pub fn apply(
    req: &Request,
    plan: &Plan,
    stop: &dyn Fn() -> bool,
    on_step: &mut dyn FnMut(usize, &Step),
) -> Result<(), ProvisionError> {
    let total = plan.steps.len();
    let mut fsid = plan.fsid;
    let mut done: Vec<(String, String)> = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        if step.done {
            if let Action::Format { fsid: id, .. } = &step.action {
                fsid = Some(*id);
            }
            continue;
        }
        if stop() {
            return Err(ProvisionError::Interrupted { done });
        }
        let result = run_step(req, &step.action, &mut fsid);
        match result {
            Ok(()) => {
                done.push((step.description.clone(), step.undo.clone()));
                on_step(i, step);
            }
            Err(error) => {
                return Err(ProvisionError::Failed {
                    step: i + 1,
                    total,
                    what: step.description.clone(),
                    errno: error.errno(),
                    error: Box::new(error),
                    done,
                })
            }
        }
    }
    Ok(())
}

fn run_step(req: &Request, action: &Action, fsid: &mut Option<Uuid>) -> Result<(), StepError> {
    let io = StepError::io;
    let backend = |e| StepError::Backend(Box::new(e));
    match action {
        Action::CreateLv { vg, lv, size } => {
            let lvm = lvm(req).map_err(backend)?;
            lvm.lv_create(vg, lv, LvCreate::size(Bytes(*size)))?;
        }
        Action::ActivateLv { vg, lv } => {
            let lvm = lvm(req).map_err(backend)?;
            lvm.lv_activate(vg, lv)?;
        }
        Action::Format {
            device,
            label,
            fsid: planned,
            new_lv,
        } => {
            let make = |force: bool| -> Result<Uuid, StepError> {
                let mut opts = MkfsOptions::default();
                opts.label = label.clone();
                opts.fsid = Some(*planned);
                opts.force = force;
                Ok(mkfs::mkfs(device, &opts)?.fsid)
            };
            // A new LV may hold what its extents held under a removed LV (lvcreate zeroes
            // 4 KiB only): never adopt that, overwrite it.
            if *new_lv {
                *fsid = Some(make(true)?);
                return Ok(());
            }
            match mkfs::probe(device)? {
                Probe::Empty => *fsid = Some(make(false)?),
                Probe::Btrfs {
                    fsid: id,
                    label: found,
                    ..
                } if &found == label => *fsid = Some(id),
                Probe::Btrfs { label: found, .. } => {
                    return Err(StepError::Unexpected(format!(
                        "{} holds a btrfs labelled {found:?}, not {label:?}: give --label {found:?} to adopt it, or choose another --lv",
                        device.display()
                    )))
                }
                Probe::Other(found) => {
                    return Err(StepError::Unexpected(other_signature(device, &found)))
                }
            }
        }
        Action::CreateMountPoint { path } => {
            std::fs::create_dir_all(path).map_err(|e| io("create", path, e))?;
        }
        Action::Mount {
            device,
            mount_point,
            options,
        } => {
            mount(device, mount_point, options)?;
            let fs = btrfs_kit::Filesystem::open(mount_point)?;
            let found = fs.info()?.fsid;
            if fsid.is_some_and(|f| f != found) {
                return Err(StepError::Unexpected(format!(
                    "{} shows filesystem {found}, expected {}",
                    mount_point.display(),
                    fsid.map(|f| f.to_string()).unwrap_or_default()
                )));
            }
            *fsid = Some(found);
        }
        Action::MountUnit {
            unit,
            wants,
            dropin,
            holder,
            mount_point: mp,
            options,
        } => {
            let id = fsid
                .ok_or_else(|| StepError::Unexpected("the filesystem's uuid is unknown".into()))?;
            let text = permanent::render_unit_for(*holder, id, mp, options);
            write_new(unit, &text)?;
            let (_, target) = permanent::wants_link(&req.paths.unit_dir, mp);
            if let Some(dir) = wants.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
            }
            match std::fs::read_link(wants) {
                Ok(t) if t == target => {}
                Ok(_) => {
                    std::fs::remove_file(wants).map_err(|e| io("replace", wants, e))?;
                    std::os::unix::fs::symlink(&target, wants).map_err(|e| io("link", wants, e))?;
                }
                Err(_) => {
                    std::os::unix::fs::symlink(&target, wants).map_err(|e| io("link", wants, e))?
                }
            }
            write_new(dropin, &permanent::render_dropin(*holder, mp))?;
        }
        Action::FstabLine {
            fstab,
            mount_point,
            options,
        } => {
            let id = fsid
                .ok_or_else(|| StepError::Unexpected("the filesystem's uuid is unknown".into()))?;
            let mut text = match std::fs::read_to_string(fstab) {
                Ok(t) => {
                    backup(fstab).map_err(|e| io("back up", fstab, e))?;
                    t
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(io("read", fstab, e)),
            };
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&permanent::fstab_line(id, mount_point, options));
            text.push('\n');
            opskit::write_atomically(fstab, text.as_bytes(), 0o644)
                .map_err(|e| io("write", fstab, e))?;
        }
        Action::StorageDriver { .. } => {
            let mut config = DaemonJson::read(&req.docker.config_dir)?;
            if config.set_storage_driver("btrfs") {
                config.write()?;
            }
        }
        Action::ImageStore { store, .. } => {
            let mut config = DaemonJson::read(&req.docker.config_dir)?;
            let enabled = *store == ImageStore::Containerd;
            let wanted = enabled
                || config
                    .feature(crate::docker::store::CONTAINERD_SNAPSHOTTER)
                    .is_some();
            if wanted && config.set_feature(crate::docker::store::CONTAINERD_SNAPSHOTTER, enabled) {
                config.write()?;
            }
        }
        Action::CreateSubvolume { path } => {
            if btrfs_kit::subvolume::info(path).is_err() {
                btrfs_kit::subvolume::create(path)?;
            }
        }
    }
    Ok(())
}

/// How to clear an existing signature the operator has decided to lose.
pub(super) fn wipe_hint(device: &Path, found: &str) -> String {
    let d = device.display();
    if found.contains("superblock copy") {
        format!("choose another --lv, or, if its data is not needed, zero the stale btrfs superblock copy (`dd if=/dev/zero of={d} bs=4096 seek=16384 count=1`, the copy at 64 MiB) and run again")
    } else {
        format!("choose another --lv, or, if its data is not needed, wipe it yourself (`wipefs -a {d}`) and run again")
    }
}

fn other_signature(device: &Path, found: &str) -> String {
    format!(
        "{} holds {found}: mkfs does not overwrite it; {}",
        device.display(),
        wipe_hint(device, found)
    )
}

/// Writes a generated file atomically, creating its directory.
fn write_new(path: &Path, text: &str) -> Result<(), StepError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| StepError::io("create", dir, e))?;
    }
    opskit::write_atomically(path, text.as_bytes(), 0o644)
        .map_err(|e| StepError::io("write", path, e))
}

/// Mounts btrfs `device` on `target` with `options` (flags like `noatime` become mount
/// flags, the rest filesystem options).
fn mount(device: &Path, target: &Path, options: &str) -> Result<(), StepError> {
    use nix::mount::MsFlags;
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for word in options.split(',') {
        match word {
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "lazytime" => flags |= MsFlags::MS_LAZYTIME,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" | "defaults" => {}
            other => data.push(other),
        }
    }
    let data = data.join(",");
    nix::mount::mount(
        Some(device),
        target,
        Some("btrfs"),
        flags,
        (!data.is_empty()).then_some(data.as_str()),
    )
    .map_err(|source| StepError::Mount {
        device: device.to_path_buf(),
        target: target.to_path_buf(),
        source,
    })
}
