//! The two sources of the subvolume iterator: one [`Frame`] per subvolume being walked.

use super::info::{from_ioctl, from_root_item, RootRef};
use super::iter::{Mode, Step, Subvolume, Unreachable, UnreachableReason};
use super::lookup;
use super::paths::{id_of, join_bytes, open};
use super::window::{refs_cursor, PrivRefs};
use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::ioctl;
use btrfs_sys as sys;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode as FileMode;
use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const OP: &str = "list subvolumes";

/// What every frame of one listing shares.
pub(crate) struct Ctx<'a> {
    fs: &'a Filesystem,
    /// The listed path relative to the subvolume holding it (empty when it is that root).
    prefix: PathBuf,
    /// The path of that subvolume from the top level, when known.
    top: Option<PathBuf>,
}

impl Ctx<'_> {
    /// The path shown for `rel` (relative to the walked root), or `None` if it lies outside
    /// the listed directory.
    fn shown(&self, rel: &Path) -> Option<PathBuf> {
        rel.strip_prefix(&self.prefix).ok().map(Path::to_path_buf)
    }

    fn top_path(&self, rel: &Path) -> Option<PathBuf> {
        self.top.as_ref().map(|t| t.join(rel))
    }
}

/// One subvolume being walked: its id, its path relative to the walked root, its depth and
/// where its children come from.
pub(crate) struct Frame<'a> {
    id: u64,
    rel: PathBuf,
    depth: usize,
    kind: Kind<'a>,
}

enum Kind<'a> {
    /// A subvolume known to have no children: nothing to ask the kernel.
    Leaf,
    /// ROOT_REF items of this subvolume in the root tree.
    Privileged(Box<PrivRefs<'a>>),
    /// GET_SUBVOL_ROOTREF on an open descriptor of this subvolume.
    Unprivileged(Box<RootRefs>),
}

struct RootRefs {
    fd: OwnedFd,
    args: sys::btrfs_ioctl_get_subvol_rootref_args,
    next: usize,
    started: bool,
    more: bool,
}

/// The start of a listing: the walked root's frame, the shared context and the mode chosen.
pub(crate) struct Start<'a> {
    pub(crate) ctx: Ctx<'a>,
    pub(crate) frame: Frame<'a>,
    pub(crate) mode: Mode,
}

fn reason(errno: Option<Errno>) -> UnreachableReason {
    match errno {
        Some(Errno::EACCES | Errno::EPERM) => UnreachableReason::PermissionDenied,
        Some(Errno::ENOENT | Errno::ESTALE) => UnreachableReason::Vanished,
        Some(e) => UnreachableReason::Other(format!("{e} ({})", e.desc())),
        None => UnreachableReason::Other("unknown error".into()),
    }
}

impl<'a> Start<'a> {
    /// Opens the walk at subvolume root `root_path`, listing what lies below `prefix` in it.
    pub(crate) fn open(
        fs: &'a Filesystem,
        root_path: &Path,
        prefix: PathBuf,
        mode: Mode,
    ) -> Result<Self> {
        let root = open(OP, root_path)?;
        let id = id_of(OP, root_path, &root)?;
        let privileged = match mode {
            Mode::Privileged => true,
            Mode::Unprivileged => false,
            Mode::Auto => match lookup::root_item(fs, id) {
                Ok(_) => true,
                Err(Error::PermissionDenied { .. }) => false,
                Err(e) => return Err(e),
            },
        };
        let (top, kind, mode) = if privileged {
            let top = lookup::top_path(fs, id)?;
            (
                Some(top),
                Kind::Privileged(PrivRefs::new(VecDeque::new(), Some(refs_cursor(fs, id, 0)))),
                Mode::Privileged,
            )
        } else {
            let top = (id == super::TOP_LEVEL_ID).then(PathBuf::new);
            (
                top,
                Kind::Unprivileged(RootRefs::new(root.into())),
                Mode::Unprivileged,
            )
        };
        Ok(Start {
            ctx: Ctx { fs, prefix, top },
            frame: Frame {
                id,
                rel: PathBuf::new(),
                depth: 0,
                kind,
            },
            mode,
        })
    }
}

impl RootRefs {
    fn new(fd: OwnedFd) -> Box<Self> {
        Box::new(RootRefs {
            fd,
            args: Default::default(),
            next: 0,
            started: false,
            more: false,
        })
    }

    /// The next (child id, directory id), fetching up to 255 at a time.
    fn next_ref(&mut self, ctx: &Ctx<'_>) -> Result<Option<(u64, u64)>> {
        loop {
            if self.next < self.args.num_items as usize {
                let r = self.args.rootref[self.next];
                self.next += 1;
                return Ok(Some((r.treeid, r.dirid)));
            }
            if self.started && !self.more {
                return Ok(None);
            }
            self.more = ioctl::get_subvol_rootref(self.fd.as_fd(), &mut self.args)
                .map_err(|e| ctx.fs.err("list child subvolumes", e))?;
            self.started = true;
            self.next = 0;
        }
    }
}

impl<'a> Frame<'a> {
    /// The next child of this subvolume.
    pub(crate) fn next_child(&mut self, ctx: &Ctx<'a>) -> Result<Option<Step<'a>>> {
        match &mut self.kind {
            Kind::Leaf => Ok(None),
            Kind::Privileged(refs) => {
                let Some((child, r)) = refs.next_ref(ctx.fs)? else {
                    return Ok(None);
                };
                self.privileged_child(ctx, child, r).map(Some)
            }
            Kind::Unprivileged(refs) => {
                let Some((child, dir_id)) = refs.next_ref(ctx)? else {
                    return Ok(None);
                };
                Ok(Some(self.unprivileged_child(ctx, child, dir_id)))
            }
        }
    }

    fn unreachable(&self, id: u64, path: Option<PathBuf>, errno: Option<Errno>) -> Step<'a> {
        Step::Unreachable(Unreachable {
            id,
            parent_id: self.id,
            path,
            reason: reason(errno),
        })
    }

    fn child_frame(&self, id: u64, rel: PathBuf, kind: Kind<'a>) -> Frame<'a> {
        Frame {
            id,
            rel,
            depth: self.depth + 1,
            kind,
        }
    }

    fn privileged_child(&mut self, ctx: &Ctx<'a>, child: u64, r: RootRef) -> Result<Step<'a>> {
        let Kind::Privileged(refs) = &mut self.kind else {
            unreachable!("called on privileged frames only")
        };
        let dir = match refs.dir_path(ctx.fs, self.id, r.dir_id) {
            Ok(dir) => dir,
            Err(e) => return Ok(self.unreachable(child, None, e.errno())),
        };
        let rel = join_bytes(&self.rel, &dir, &r.name);
        let Some(shown) = ctx.shown(&rel) else {
            return Ok(Step::Skip);
        };
        let items = refs.child_items(ctx.fs, child)?;
        let Some(item) = items.root_item else {
            return Ok(self.unreachable(child, Some(shown), Some(Errno::ENOENT)));
        };
        let mut info = from_root_item(child, Some((self.id, &r)), &item).map_err(|e| {
            ctx.fs
                .decode_err(OP, format!("ROOT_ITEM of subvolume {child}: {e}"))
        })?;
        info.path = ctx.top_path(&rel);
        let kind = items.children.map_or(Kind::Leaf, Kind::Privileged);
        let frame = self.child_frame(child, rel, kind);
        let sub = Subvolume {
            path: shown,
            depth: frame.depth,
            info,
        };
        Ok(Step::Found(sub, frame))
    }

    fn unprivileged_child(&self, ctx: &Ctx<'a>, child: u64, dir_id: u64) -> Step<'a> {
        let Kind::Unprivileged(refs) = &self.kind else {
            unreachable!("called on unprivileged frames only")
        };
        let (dir, name) = match ioctl::ino_lookup_user(refs.fd.as_fd(), dir_id, child) {
            Ok(found) => found,
            Err(e) => return self.unreachable(child, None, Some(e)),
        };
        let rel = join_bytes(&self.rel, &dir, &name);
        let Some(shown) = ctx.shown(&rel) else {
            return Step::Skip;
        };
        let below = join_bytes(Path::new(""), &dir, &name);
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        let fd = match openat(
            refs.fd.as_fd(),
            below.as_os_str().as_bytes(),
            flags,
            FileMode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => return self.unreachable(child, Some(shown), Some(e)),
        };
        let args = match ioctl::get_subvol_info(fd.as_fd()) {
            Ok(args) => args,
            Err(e) => return self.unreachable(child, Some(shown), Some(e)),
        };
        if args.treeid != child {
            return Step::Unreachable(Unreachable {
                id: child,
                parent_id: self.id,
                path: Some(shown),
                reason: UnreachableReason::Covered,
            });
        }
        let mut info = from_ioctl(&args);
        info.path = ctx.top_path(&rel);
        let frame = self.child_frame(child, rel, Kind::Unprivileged(RootRefs::new(fd)));
        let sub = Subvolume {
            path: shown,
            depth: frame.depth,
            info,
        };
        Step::Found(sub, frame)
    }
}
