//! What a delete checks before it deletes anything: the plan (every subvolume to delete,
//! innermost first, the target last) and every problem that would stop it part-way.
//!
//! Checked: subvolumes that cannot be resolved; the default subvolume (needs CAP_SYS_ADMIN to
//! read, so unprivileged callers rely on the kernel); mounts (a subvolume of the tree mounted
//! elsewhere with `subvol=`/`subvolid=`, or anything mounted inside the tree); active swap
//! files; a read-only filesystem, or a read-only subvolume holding the target (read-only
//! subvolumes inside the tree are made writable when needed, and made read-only again if the
//! delete fails); append-only or immutable attributes (`chattr +a`, `+i`) that make the kernel
//! refuse even root; and for callers without CAP_SYS_ADMIN the `user_subvol_rm_allowed`
//! mount option, directory access, the sticky bit and ownership of read-only subvolumes.
//!
//! Not checkable beforehand: a `btrfs send` of a subvolume in the tree (the kernel says EPERM),
//! and changes made by others while the delete runs.

use super::delete_problem::DeleteProblem;
use super::entry::{Entry, Order};
use super::paths::{check_btrfs, containing_root, open, open_subvolume};
use crate::error::{Error, ErrorKind, Result};
use crate::fs::Filesystem;
use crate::ioctl;
use crate::mounts::{swap_files, MountTable, MOUNTINFO};
use btrfs_sys as sys;
use rustix::fs::{accessat, fstatvfs, Access, AtFlags, StatVfsMountFlags, CWD};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const RDONLY: u64 = sys::BTRFS_SUBVOL_RDONLY as u64;

/// One subvolume to delete.
#[derive(Debug, Clone)]
pub(crate) struct Victim {
    /// Its path, through the delete's target.
    pub path: PathBuf,
    /// Its id.
    pub id: u64,
    /// The subvolume holding it, when known.
    pub parent_id: Option<u64>,
    /// Whether it is read-only.
    pub read_only: bool,
}

/// A checked delete: the subvolumes in deletion order (innermost first, the target last).
pub(crate) struct Plan {
    pub victims: Vec<Victim>,
}

impl Plan {
    /// The victim with subvolume id `id`.
    pub fn position(&self, id: u64) -> Option<usize> {
        self.victims.iter().position(|v| v.id == id)
    }
}

/// Plans the delete of the subvolume `id` at `target` (and, when `recursive`, every subvolume
/// nested in it) and checks it; fails with [`ErrorKind::DeleteRefused`] listing every problem.
pub(crate) fn plan(op: &'static str, target: &Path, id: u64, recursive: bool) -> Result<Plan> {
    let fs = Filesystem::open(target)?;
    let mut problems = Vec::new();
    let mut victims = Vec::new();
    if recursive {
        for entry in fs.subvolumes().order(Order::PostOrder).iter()? {
            match entry? {
                Entry::Subvolume(sub) => victims.push(Victim {
                    path: target.join(&sub.path),
                    id: sub.info.id,
                    parent_id: sub.info.parent_id,
                    read_only: sub.info.read_only,
                }),
                Entry::Unreachable(u) => problems.push(DeleteProblem::Unreachable {
                    id: u.id,
                    path: u.path.map(|p| target.join(p)),
                    reason: u.reason.to_string(),
                }),
            }
        }
    }
    let root = open_subvolume(op, target)?;
    let flags =
        ioctl::subvol_getflags(root.as_fd()).map_err(|e| Error::from_errno(op, target, e))?;
    victims.push(Victim {
        path: target.to_path_buf(),
        id,
        parent_id: None,
        read_only: flags & RDONLY != 0,
    });
    let plan = Plan { victims };
    Checks {
        op,
        fs: &fs,
        target,
        plan: &plan,
        problems: &mut problems,
    }
    .run()?;
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(Error::new(
            op,
            target,
            ErrorKind::DeleteRefused { problems },
        ))
    }
}

/// The checks of one plan, adding to `problems`.
struct Checks<'a> {
    op: &'static str,
    fs: &'a Filesystem,
    target: &'a Path,
    plan: &'a Plan,
    problems: &'a mut Vec<DeleteProblem>,
}

impl Checks<'_> {
    fn run(&mut self) -> Result<()> {
        let canonical = self
            .target
            .canonicalize()
            .map_err(|e| Error::from_errno(self.op, self.target, super::paths::errno_of(&e)))?;
        // Reading the default subvolume needs CAP_SYS_ADMIN, as deleting without the mount
        // option does: so it also tells whether the caller is privileged.
        let default = match self.fs.default_subvolume() {
            Ok(id) => Some(id),
            Err(e) if matches!(e.kind(), ErrorKind::PermissionDenied { .. }) => None,
            Err(e) => return Err(e),
        };
        if let Some(default) = default {
            for v in self.plan.victims.iter().filter(|v| v.id == default) {
                self.problems.push(DeleteProblem::DefaultSubvolume {
                    path: v.path.clone(),
                    id: v.id,
                });
            }
        }
        let privileged = default.is_some();
        self.mounts(&canonical, privileged)?;
        for file in swap_files() {
            if file.starts_with(&canonical) {
                self.problems.push(DeleteProblem::Swapfile { file });
            }
        }
        let stat = fstatvfs(self.fs.fd()).map_err(|e| self.fs.err(self.op, e))?;
        if stat.f_flag.contains(StatVfsMountFlags::RDONLY) {
            self.problems.push(DeleteProblem::ReadOnlyFilesystem);
        }
        self.holder()?;
        self.attributes();
        if !privileged {
            self.access();
        }
        Ok(())
    }

    /// Mounts on or inside the tree, and subvolumes of the tree mounted elsewhere. Without
    /// the mount option user_subvol_rm_allowed, an unprivileged caller cannot delete at all.
    fn mounts(&mut self, canonical: &Path, privileged: bool) -> Result<()> {
        let table = MountTable::current()
            .map_err(|e| Error::from_errno(self.op, MOUNTINFO, super::paths::errno_of(&e)))?;
        let ours = table.containing(canonical);
        for m in &table {
            if m.mount_point.starts_with(canonical) {
                self.problems.push(DeleteProblem::MountInside {
                    mount_point: m.mount_point.clone(),
                });
                continue;
            }
            let same_fs = ours.is_some_and(|o| o.device == m.device) && m.fstype == "btrfs";
            let shown = m.subvolid().and_then(|id| self.plan.position(id));
            if let (true, Some(i)) = (same_fs, shown) {
                self.problems.push(DeleteProblem::MountedElsewhere {
                    path: self.plan.victims[i].path.clone(),
                    mount_point: m.mount_point.clone(),
                });
            }
        }
        if !privileged && !ours.is_some_and(|o| o.has_super_option("user_subvol_rm_allowed")) {
            self.problems.push(DeleteProblem::NotPermitted {
                path: self.target.into(),
                needs: "CAP_SYS_ADMIN (run as root), or the filesystem mounted with user_subvol_rm_allowed",
            });
        }
        Ok(())
    }

    /// The subvolume holding the target must be writable: the kernel removes the target's
    /// entry from it (EROFS otherwise), after having deleted everything nested.
    fn holder(&mut self) -> Result<()> {
        let Some(parent) = self.target.parent() else {
            return Ok(());
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        let dir = open(self.op, parent)?;
        if check_btrfs(self.op, parent, &dir).is_err() {
            // The target is a mount's root: reported as a mount on it.
            return Ok(());
        }
        let (holder, _) = containing_root(self.op, parent)?;
        let file = open_subvolume(self.op, &holder)?;
        let flags = ioctl::subvol_getflags(file.as_fd())
            .map_err(|e| Error::from_errno(self.op, &holder, e))?;
        if flags & RDONLY != 0 {
            self.problems.push(DeleteProblem::ReadOnlyHolder { holder });
        }
        Ok(())
    }

    /// Append-only and immutable flags on each subvolume root and on the directories holding
    /// them: the kernel refuses those deletes with EPERM, even for root.
    fn attributes(&mut self) {
        const FLAGS: [(u32, &str); 2] = [
            (sys::FS_IMMUTABLE_FL, "immutable"),
            (sys::FS_APPEND_FL, "append-only"),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for v in &self.plan.victims {
            let dir = v.path.parent().unwrap_or(Path::new("."));
            for path in [v.path.as_path(), dir] {
                if !seen.insert(path.to_path_buf()) {
                    continue;
                }
                // Unreadable or not supported: nothing to report here; the kernel decides.
                let Ok(file) = std::fs::File::open(path) else {
                    continue;
                };
                let Ok(flags) = ioctl::inode_flags(file.as_fd()) else {
                    continue;
                };
                for (bit, flag) in FLAGS {
                    if flags & bit != 0 {
                        self.problems.push(DeleteProblem::Attribute {
                            path: path.to_path_buf(),
                            flag,
                        });
                    }
                }
            }
        }
    }

    /// What the kernel asks of a caller without CAP_SYS_ADMIN: write and search access to the
    /// subvolume root and its directory (as for rmdir, sticky bit included), and ownership of
    /// each read-only subvolume that must be made writable.
    fn access(&mut self) {
        let uid = rustix::process::geteuid().as_raw();
        let wx = Access::WRITE_OK | Access::EXEC_OK;
        let can = |p: &Path| accessat(CWD, p, wx, AtFlags::EACCESS).is_ok();
        for v in &self.plan.victims {
            let dir = v.path.parent().unwrap_or(Path::new("."));
            if !can(&v.path) {
                self.problems.push(DeleteProblem::NotPermitted {
                    path: v.path.clone(),
                    needs: "write and search access to the subvolume's root directory",
                });
            }
            if !can(dir) {
                self.problems.push(DeleteProblem::NotPermitted {
                    path: dir.to_path_buf(),
                    needs: "write and search access to the directory holding a subvolume",
                });
            }
            let owner = |p: &Path| std::fs::metadata(p).map(|m| m.uid()).ok();
            let sticky = std::fs::metadata(dir).is_ok_and(|m| m.mode() & 0o1000 != 0);
            if sticky && owner(dir) != Some(uid) && owner(&v.path) != Some(uid) {
                self.problems.push(DeleteProblem::NotPermitted {
                    path: v.path.clone(),
                    needs: "ownership of the subvolume or of its sticky directory",
                });
            }
            let holds_others = self.plan.victims.iter().any(|c| c.parent_id == Some(v.id));
            if v.read_only && holds_others && owner(&v.path) != Some(uid) {
                self.problems.push(DeleteProblem::NotPermitted {
                    path: v.path.clone(),
                    needs: "ownership of this read-only subvolume, to make it writable for deleting what it holds",
                });
            }
        }
    }
}
