//! `provision`: Docker's data root on its own LVM logical volume formatted btrfs, in one
//! idempotent command.
//!
//! [`plan`] reads the system and lists the steps, each already done or to do, or refuses
//! with the reason and the way out before anything changes. [`apply`] runs the steps still
//! to do; a failure part-way names what was done and how to undo it, and running again
//! continues (every step first checks whether it is already done).
//!
//! The steps: create (or accept) the LV; activate it; format it with the native mkfs
//! (refusing existing signatures as mkfs does, or accepting a btrfs with our label); create
//! the mount point; mount it (`noatime` by default: snapshot-heavy Docker trees pay for atime
//! updates); make the mount permanent (a systemd `.mount` unit keyed by the filesystem UUID,
//! plus a `docker.service` drop-in with `RequiresMountsFor=`, or an fstab line); set
//! `"storage-driver": "btrfs"` in daemon.json, keeping every other key and a backup; select
//! the image store (graph driver or containerd), and with the containerd store on a system
//! containerd, put containerd's root on the same filesystem ([`store`]).

pub mod permanent;
pub mod store;

use crate::config::{DockerConfig, Paths};
use crate::docker::{DaemonJson, DaemonPresence, ImageStore};
use crate::files;
use btrfs_kit::mkfs::{self, MkfsOptions, Probe};
use btrfs_kit::mounts::MountTable;
use lvm_kit::{Bytes, LvCreate, LvmBackend};
use permanent::Holder;
use serde::Serialize;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// What to provision.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The volume group.
    pub vg: String,
    /// The LV's size (rounded up to whole extents by lvm2).
    pub size: Bytes,
    /// The LV's name.
    pub lv: String,
    /// The filesystem label.
    pub label: String,
    /// The data root to mount it on.
    pub mount_point: PathBuf,
    /// Mount options.
    pub mount_options: String,
    /// An fstab line instead of a systemd mount unit.
    pub fstab: bool,
    /// The image store to set up (None: what the installed dockerd picks).
    pub image_store: Option<ImageStore>,
    /// Docker's configuration directory, socket and pidfile.
    pub docker: DockerConfig,
    /// The unit directory and fstab.
    pub paths: Paths,
    /// Confine LVM to these devices (empty: every device).
    pub lvm_devices: Vec<PathBuf>,
}

/// One step and what it changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Action {
    /// `lvcreate`.
    CreateLv {
        /// The VG.
        vg: String,
        /// The LV.
        lv: String,
        /// Its size in bytes.
        size: u64,
    },
    /// `lvchange -ay`.
    ActivateLv {
        /// The VG.
        vg: String,
        /// The LV.
        lv: String,
    },
    /// The native mkfs (or accepting a btrfs already there).
    Format {
        /// The LV's device.
        device: PathBuf,
        /// The label.
        label: String,
        /// The fsid it will get.
        fsid: Uuid,
        /// The LV is created by this run: whatever its extents held before (a filesystem of a
        /// removed LV) is not data, and is overwritten.
        new_lv: bool,
    },
    /// `mkdir -p`.
    CreateMountPoint {
        /// The directory.
        path: PathBuf,
    },
    /// `mount`.
    Mount {
        /// The LV's device.
        device: PathBuf,
        /// The mount point.
        mount_point: PathBuf,
        /// The options.
        options: String,
    },
    /// The systemd mount unit, its `local-fs.target.wants` link and the drop-in of the service
    /// that must wait for it.
    MountUnit {
        /// The unit file.
        unit: PathBuf,
        /// The wants link.
        wants: PathBuf,
        /// The drop-in.
        dropin: PathBuf,
        /// What the mount holds.
        holder: Holder,
        /// Its mount point.
        mount_point: PathBuf,
        /// Its options.
        options: String,
    },
    /// An fstab line.
    FstabLine {
        /// The fstab file.
        fstab: PathBuf,
        /// Its mount point.
        mount_point: PathBuf,
        /// Its options.
        options: String,
    },
    /// `btrfs subvolume create` (the system containerd's root).
    CreateSubvolume {
        /// The new subvolume.
        path: PathBuf,
    },
    /// `"storage-driver": "btrfs"` in daemon.json.
    StorageDriver {
        /// The file.
        daemon_json: PathBuf,
        /// The driver it selected before, if any.
        previous: Option<String>,
    },
    /// `features.containerd-snapshotter` in daemon.json, as the image store needs.
    ImageStore {
        /// The file.
        daemon_json: PathBuf,
        /// The store set up.
        store: ImageStore,
        /// The feature's value before, if set.
        previous: Option<bool>,
    },
}

/// A planned step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// What it does, with its data.
    #[serde(flatten)]
    pub action: Action,
    /// In words.
    pub description: String,
    /// Already done: the step changes nothing.
    pub done: bool,
    /// How to undo it.
    pub undo: String,
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The LV's device.
    pub device: PathBuf,
    /// The filesystem's uuid: the existing one, or the one mkfs will write (`None` while an
    /// inactive LV has not been looked into).
    pub fsid: Option<Uuid>,
}

impl Plan {
    /// Whether every step is already done.
    pub fn nothing_to_do(&self) -> bool {
        self.steps.iter().all(|s| s.done)
    }
}

/// Why provisioning did not happen or stopped.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum ProvisionError {
    /// Refused before any change.
    #[error("refused: {reason}\nway out: {way_out}")]
    Refused {
        /// Why.
        reason: String,
        /// What to do.
        way_out: String,
    },
    /// A step failed after earlier ones changed the system.
    #[error("{}", failure_text(*step, *total, what, error, done))]
    Failed {
        /// The failed step (1-based).
        step: usize,
        /// How many steps there are.
        total: usize,
        /// The failed step, in words.
        what: String,
        /// The error.
        error: String,
        /// Steps done by this run, each with how to undo it.
        done: Vec<(String, String)>,
    },
    /// Stopped between two steps on SIGINT or SIGTERM.
    #[error("{}", stop_text(done))]
    Interrupted {
        /// Steps done by this run, each with how to undo it.
        done: Vec<(String, String)>,
    },
}

fn done_text(done: &[(String, String)]) -> String {
    if done.is_empty() {
        return "nothing was changed by this run".into();
    }
    let mut text = String::from("done by this run, and how to undo each (last first):");
    for (what, undo) in done.iter().rev() {
        text.push_str(&format!("\n  {what}: undo with {undo}"));
    }
    text
}

fn failure_text(
    step: usize,
    total: usize,
    what: &str,
    error: &str,
    done: &[(String, String)],
) -> String {
    format!(
        "step {step}/{total} ({what}) failed: {error}\n{}\nfix the cause and run provision again: it continues where it stopped",
        done_text(done)
    )
}

fn stop_text(done: &[(String, String)]) -> String {
    format!(
        "stopped on a signal between two steps\n{}\nrun provision again to continue",
        done_text(done)
    )
}

pub(crate) fn refuse(reason: impl Into<String>, way_out: impl Into<String>) -> ProvisionError {
    ProvisionError::Refused {
        reason: reason.into(),
        way_out: way_out.into(),
    }
}

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

fn lvm(req: &Request) -> Result<lvm_kit::CliBackend, ProvisionError> {
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
                    wipe_hint(&device, &found),
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
    store::plan(req, &device, fsid, &mut steps)?;
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
fn plan_permanent_mount(
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
pub(crate) fn read_optional(path: &Path) -> Result<String, ProvisionError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(refuse(
            format!("cannot read {}: {e}", path.display()),
            "check its permissions",
        )),
    }
}

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
                    error,
                    done,
                })
            }
        }
    }
    Ok(())
}

fn run_step(req: &Request, action: &Action, fsid: &mut Option<Uuid>) -> Result<(), String> {
    let io = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    match action {
        Action::CreateLv { vg, lv, size } => {
            let lvm = lvm(req).map_err(|e| e.to_string())?;
            lvm.lv_create(vg, lv, LvCreate::size(Bytes(*size)))
                .map_err(|e| e.to_string())?;
        }
        Action::ActivateLv { vg, lv } => {
            let lvm = lvm(req).map_err(|e| e.to_string())?;
            lvm.lv_activate(vg, lv).map_err(|e| e.to_string())?;
        }
        Action::Format {
            device,
            label,
            fsid: planned,
            new_lv,
        } => {
            let make = |force: bool| -> Result<Uuid, String> {
                let mut opts = MkfsOptions::default();
                opts.label = label.clone();
                opts.fsid = Some(*planned);
                opts.force = force;
                Ok(mkfs::mkfs(device, &opts).map_err(|e| e.to_string())?.fsid)
            };
            // A new LV may hold what its extents held under a removed LV (lvcreate zeroes
            // 4 KiB only): never adopt that, overwrite it.
            if *new_lv {
                *fsid = Some(make(true)?);
                return Ok(());
            }
            match mkfs::probe(device).map_err(|e| e.to_string())? {
                Probe::Empty => *fsid = Some(make(false)?),
                Probe::Btrfs {
                    fsid: id,
                    label: found,
                    ..
                } if &found == label => *fsid = Some(id),
                Probe::Btrfs { label: found, .. } => {
                    return Err(format!(
                        "{} holds a btrfs labelled {found:?}, not {label:?}: give --label {found:?} to adopt it, or choose another --lv",
                        device.display()
                    ))
                }
                Probe::Other(found) => return Err(other_signature(device, &found)),
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
            let fs = btrfs_kit::Filesystem::open(mount_point).map_err(|e| e.to_string())?;
            let found = fs.info().map_err(|e| e.to_string())?.fsid;
            if fsid.is_some_and(|f| f != found) {
                return Err(format!(
                    "{} shows filesystem {found}, expected {}",
                    mount_point.display(),
                    fsid.map(|f| f.to_string()).unwrap_or_default()
                ));
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
            let id = fsid.ok_or("the filesystem's uuid is unknown")?;
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
            let id = fsid.ok_or("the filesystem's uuid is unknown")?;
            let mut text = match std::fs::read_to_string(fstab) {
                Ok(t) => {
                    files::backup(fstab).map_err(|e| io("back up", fstab, e))?;
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
            files::write_atomically(fstab, text.as_bytes(), 0o644)
                .map_err(|e| io("write", fstab, e))?;
        }
        Action::StorageDriver { .. } => {
            let mut config = DaemonJson::read(&req.docker.config_dir).map_err(|e| e.to_string())?;
            if config.set_storage_driver("btrfs") {
                config.write().map_err(|e| e.to_string())?;
            }
        }
        Action::ImageStore { store, .. } => {
            let mut config = DaemonJson::read(&req.docker.config_dir).map_err(|e| e.to_string())?;
            let enabled = *store == ImageStore::Containerd;
            let wanted = enabled
                || config
                    .feature(crate::docker::store::CONTAINERD_SNAPSHOTTER)
                    .is_some();
            if wanted && config.set_feature(crate::docker::store::CONTAINERD_SNAPSHOTTER, enabled) {
                config.write().map_err(|e| e.to_string())?;
            }
        }
        Action::CreateSubvolume { path } => {
            if btrfs_kit::subvolume::info(path).is_err() {
                btrfs_kit::subvolume::create(path).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

/// How to clear an existing signature the operator has decided to lose.
fn wipe_hint(device: &Path, found: &str) -> String {
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
fn write_new(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    files::write_atomically(path, text.as_bytes(), 0o644)
        .map_err(|e| format!("write {}: {e}", path.display()))
}

/// Mounts btrfs `device` on `target` with `options` (flags like `noatime` become mount
/// flags, the rest filesystem options).
fn mount(device: &Path, target: &Path, options: &str) -> Result<(), String> {
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
    .map_err(|e| {
        format!(
            "mount {} on {}: {e} ({})",
            device.display(),
            target.display(),
            e.desc()
        )
    })
}
