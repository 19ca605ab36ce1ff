//! [`plan`]: read the system and list the steps, each done or to do, or refuse before
//! anything changes.

use super::permanent::{self, Holder};
use super::{refuse, Action, Plan, ProvisionError, Request, Step};
use crate::docker::{DaemonJson, DaemonPresence};
use btrfs_kit::mkfs::{self, MkfsOptions, Probe};
use btrfs_kit::mounts::MountTable;
use lvm_kit::LvmBackend;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// Checks names and options before anything is looked at.
fn check_request(req: &Request) -> Result<(), ProvisionError> {
    let usage = |reason: String| refuse(reason, "give a plain name; see dockroot provision --help");
    lvm_kit::name::validate_vg_name(&req.vg).map_err(|e| usage(e.to_string()))?;
    lvm_kit::name::validate_lv_name(&req.vg, &req.lv).map_err(|e| usage(e.to_string()))?;
    let mut label = MkfsOptions::default();
    label.label = req.label.clone();
    label
        .validate()
        .map_err(|e| usage(format!("label {:?}: {e}", req.label)))?;
    permanent::check_mount_point(&req.mount_point).map_err(usage)?;
    permanent::check_mount_options(&req.mount_options).map_err(usage)?;
    if req.size.get() == 0 {
        return Err(usage("the size must not be zero".into()));
    }
    Ok(())
}

pub(super) fn lvm(req: &Request) -> Result<lvm_kit::CliBackend, ProvisionError> {
    crate::doctor::lvm_backend(&req.lvm_devices)
        .map_err(|e| refuse(e.to_string(), "give --devices as absolute device paths"))
}

/// Whether `a` and `b` name the same device node.
pub(crate) fn same_device(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Reads the system and plans; refuses (changing nothing) when provisioning cannot or must
/// not go ahead.
pub fn plan(req: &Request) -> Result<Plan, ProvisionError> {
    check_request(req)?;
    if !nix::unistd::geteuid().is_root() {
        return Err(refuse(
            "provision needs root (LVM, mkfs, mount, /etc)",
            "run it as root (sudo dockroot provision ...)",
        ));
    }
    let presence = DaemonPresence::detect(&req.docker.pidfile, &req.docker.socket);
    if presence.running() {
        return Err(refuse(
            format!("Docker is running ({})", presence.evidence()),
            "stop it first (`systemctl stop docker docker.socket`): a mount under a running daemon hides its data and breaks its containers; start it again after provision",
        ));
    }
    let lvm = lvm(req)?;
    let report = lvm.report().map_err(|e| {
        refuse(
            format!("cannot read the LVM state: {e}"),
            "check that lvm2 is installed and works (`lvs`)",
        )
    })?;
    let vg = report.vg(&req.vg).ok_or_else(|| {
        refuse(
            format!("there is no volume group {:?}", req.vg),
            format!(
                "create it on a spare disk (`pvcreate DISK && vgcreate {} DISK`) or give --vg with an existing one ({})",
                req.vg,
                report.vgs.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let full = format!("{}/{}", req.vg, req.lv);
    let mut steps = Vec::new();
    let existing = report.lv(&req.vg, &req.lv);
    let device = existing
        .map(|lv| lv.path.clone())
        .unwrap_or_else(|| PathBuf::from(format!("/dev/{}/{}", req.vg, req.lv)));
    let size = req.size.round_up_to(vg.extent_size);
    match existing {
        None if size > vg.free => {
            return Err(refuse(
                format!(
                    "volume group {} has {} free; a {} LV needs {size}",
                    vg.name, vg.free, req.size
                ),
                format!(
                    "add a disk (`pvcreate DISK && vgextend {} DISK`) or ask for less (--size)",
                    vg.name
                ),
            ))
        }
        None => steps.push(Step {
            description: format!(
                "create LV {full} of {size} ({} free in {})",
                vg.free, vg.name
            ),
            action: Action::CreateLv {
                vg: req.vg.clone(),
                lv: req.lv.clone(),
                size: size.get(),
            },
            done: false,
            undo: format!("lvremove {full} (destroys everything on it)"),
        }),
        Some(lv) => steps.push(Step {
            description: format!("LV {full} exists ({}): kept as it is", lv.size),
            action: Action::CreateLv {
                vg: req.vg.clone(),
                lv: req.lv.clone(),
                size: lv.size.get(),
            },
            done: true,
            undo: "nothing (it existed before)".into(),
        }),
    }
    let active = existing.is_some_and(|lv| lv.active);
    if existing.is_some() {
        steps.push(Step {
            description: format!("activate LV {full}"),
            action: Action::ActivateLv {
                vg: req.vg.clone(),
                lv: req.lv.clone(),
            },
            done: active,
            undo: format!("lvchange -an {full}"),
        });
    }
    // What the LV holds, when it can be read now.
    let mut fsid = None;
    let mut formatted = false;
    if active {
        match mkfs::probe(&device).map_err(|e| refuse(e.to_string(), "check the LV's device"))? {
            Probe::Empty => {}
            Probe::Btrfs {
                fsid: id, label, ..
            } if label == req.label => {
                fsid = Some(id);
                formatted = true;
            }
            Probe::Btrfs { label, .. } => {
                return Err(refuse(
                    format!(
                        "{} already holds a btrfs filesystem labelled {label:?}, not {:?}",
                        device.display(),
                        req.label
                    ),
                    format!("give --label {label:?} to adopt it, or choose another --lv"),
                ))
            }
            Probe::Other(found) => {
                return Err(refuse(
                    format!(
                        "{} holds {found}: mkfs does not overwrite existing signatures",
                        device.display()
                    ),
                    super::apply::wipe_hint(&device, &found),
                ))
            }
        }
    }
    let planned = fsid.unwrap_or_else(Uuid::new_v4);
    let fsid = if existing.is_some() && !active {
        None
    } else {
        Some(planned)
    };
    steps.push(Step {
        description: if formatted {
            format!(
                "{} holds btrfs {planned} labelled {:?}: kept",
                device.display(),
                req.label
            )
        } else {
            format!(
                "format {} as btrfs, label {:?}, fsid {planned} (native mkfs; {})",
                device.display(),
                req.label,
                if existing.is_none() {
                    "the new LV is overwritten, whatever its extents held before"
                } else {
                    "refuses existing signatures"
                }
            )
        },
        action: Action::Format {
            device: device.clone(),
            label: req.label.clone(),
            fsid: planned,
            new_lv: existing.is_none(),
        },
        done: formatted,
        undo: format!("`wipefs -a {}` (or lvremove the LV)", device.display()),
    });
    plan_mount(req, &device, &mut steps)?;
    plan_permanent_mount(
        req,
        fsid,
        Holder::DockerDataRoot,
        &req.mount_point,
        &req.mount_options,
        &mut steps,
    )?;
    plan_daemon_json(req, &mut steps)?;
    super::store::plan(req, &device, fsid, &mut steps)?;
    Ok(Plan {
        steps,
        device,
        fsid,
    })
}

fn plan_mount(req: &Request, device: &Path, steps: &mut Vec<Step>) -> Result<(), ProvisionError> {
    let mp = &req.mount_point;
    let table = MountTable::read(&req.paths.mountinfo).map_err(|e| {
        refuse(
            format!("cannot read {}: {e}", req.paths.mountinfo.display()),
            "check /proc",
        )
    })?;
    let mounted = match table.at(mp) {
        Some(m) if same_device(Path::new(&m.source), device) => true,
        Some(m) => {
            return Err(refuse(
                format!(
                    "{} is already a mount point ({} {})",
                    mp.display(),
                    m.fstype,
                    m.source.display()
                ),
                "unmount it (and move its data aside) or give another --mount",
            ))
        }
        None => false,
    };
    let exists = match std::fs::symlink_metadata(mp) {
        Ok(meta) if meta.is_dir() => true,
        Ok(_) => {
            return Err(refuse(
                format!("{} exists and is not a directory", mp.display()),
                "move it away or give another --mount",
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(refuse(
                format!("cannot look at {}: {e}", mp.display()),
                "check the path",
            ))
        }
    };
    if exists && !mounted {
        let entries = std::fs::read_dir(mp)
            .map_err(|e| {
                refuse(
                    format!("cannot list {}: {e}", mp.display()),
                    "check the path",
                )
            })?
            .count();
        if entries > 0 {
            return Err(refuse(
                format!(
                    "{} is not empty ({entries} entries): the mount would hide that data, and Docker would lose sight of it",
                    mp.display()
                ),
                format!(
                    "with Docker stopped, move it aside (`mv {0} {0}.old`), run provision again, then start Docker; images stored by another storage driver cannot be reused on btrfs: pull them again (or `docker save` them before and `docker load` after)",
                    mp.display()
                ),
            ));
        }
    }
    steps.push(Step {
        description: format!("create the mount point {}", mp.display()),
        action: Action::CreateMountPoint { path: mp.clone() },
        done: exists,
        undo: format!("rmdir {}", mp.display()),
    });
    steps.push(Step {
        description: format!(
            "mount {} on {} with {}",
            device.display(),
            mp.display(),
            req.mount_options
        ),
        action: Action::Mount {
            device: device.into(),
            mount_point: mp.clone(),
            options: req.mount_options.clone(),
        },
        done: mounted,
        undo: format!("umount {}", mp.display()),
    });
    Ok(())
}

/// Plans making the mount of `holder`'s `mount_point` permanent: a mount unit keyed by the
/// filesystem's UUID, its wants link and the drop-in of the holder's service, or an fstab line.
pub(crate) fn plan_permanent_mount(
    req: &Request,
    fsid: Option<Uuid>,
    holder: Holder,
    mp: &Path,
    options: &str,
    steps: &mut Vec<Step>,
) -> Result<(), ProvisionError> {
    let shown = fsid.map_or("<uuid known after activation>".to_string(), |f| {
        f.to_string()
    });
    if req.fstab {
        let fstab = &req.paths.fstab;
        let text = read_optional(fstab)?;
        let line = fsid.map(|f| permanent::fstab_line(f, mp, options));
        let done = match permanent::fstab_entry(&text, mp) {
            None => false,
            Some(entry) if line.as_deref() == Some(entry.as_str()) => true,
            Some(entry) => {
                return Err(refuse(
                    format!(
                        "{} already mounts something on {}: {entry}",
                        fstab.display(),
                        mp.display()
                    ),
                    "remove or fix that line, or use the systemd unit (drop --fstab)",
                ))
            }
        };
        steps.push(Step {
            description: format!(
                "add to {}: UUID={shown} {} btrfs {options} 0 0",
                fstab.display(),
                mp.display(),
            ),
            action: Action::FstabLine {
                fstab: fstab.clone(),
                mount_point: mp.to_path_buf(),
                options: options.to_string(),
            },
            done,
            undo: format!(
                "delete that line from {} (a backup of the old file is kept beside it)",
                fstab.display()
            ),
        });
        return Ok(());
    }
    let dir = &req.paths.unit_dir;
    let unit = dir.join(permanent::unit_name(mp));
    let (wants, wants_target) = permanent::wants_link(dir, mp);
    let dropin = permanent::dropin_path(holder, dir);
    let unit_text = read_optional(&unit)?;
    let done = match fsid {
        Some(f) if !unit_text.is_empty() => {
            if unit_text != permanent::render_unit_for(holder, f, mp, options) {
                return Err(refuse(
                    format!(
                        "{} exists with other content (another filesystem or options)",
                        unit.display()
                    ),
                    "move it away (and `systemctl daemon-reload`) or use --fstab",
                ));
            }
            std::fs::read_link(&wants).is_ok_and(|t| t == wants_target)
                && read_optional(&dropin)? == permanent::render_dropin(holder, mp)
        }
        _ => false,
    };
    steps.push(Step {
        description: format!(
            "write {} (What=/dev/disk/by-uuid/{shown}, Options={options}), enable it ({}), and make {} wait for the mount ({})",
            unit.display(),
            wants.display(),
            holder.service(),
            dropin.display()
        ),
        action: Action::MountUnit {
            unit: unit.clone(),
            wants: wants.clone(),
            dropin: dropin.clone(),
            holder,
            mount_point: mp.to_path_buf(),
            options: options.to_string(),
        },
        done,
        undo: format!("rm {} {} {} && systemctl daemon-reload", unit.display(), wants.display(), dropin.display()),
    });
    Ok(())
}

fn plan_daemon_json(req: &Request, steps: &mut Vec<Step>) -> Result<(), ProvisionError> {
    let config = DaemonJson::read(&req.docker.config_dir)
        .map_err(|e| refuse(e.to_string(), "fix daemon.json by hand, then run again"))?;
    let previous = config.storage_driver().map(str::to_string);
    let path = config.path.clone();
    steps.push(Step {
        description: match &previous {
            Some(d) if d == "btrfs" => format!("{} selects the btrfs storage driver", path.display()),
            Some(d) => format!("set \"storage-driver\": \"btrfs\" in {} (was {d:?}; other keys kept, old file backed up)", path.display()),
            None => format!("set \"storage-driver\": \"btrfs\" in {} (other keys kept, old file backed up)", path.display()),
        },
        done: previous.as_deref() == Some("btrfs"),
        action: Action::StorageDriver {
            daemon_json: path.clone(),
            previous,
        },
        undo: format!("restore {} from its backup ({}.dockroot-backup-*), or remove the key", path.display(), path.display()),
    });
    Ok(())
}

/// A file's text, empty when it does not exist.
fn read_optional(path: &Path) -> Result<String, ProvisionError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(refuse(
            format!("cannot read {}: {e}", path.display()),
            "check its permissions",
        )),
    }
}
