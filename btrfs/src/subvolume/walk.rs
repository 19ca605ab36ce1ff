//! The walk behind the subvolume iterator: one [`Frame`] per subvolume being walked, each
//! producing its children as [`Step`]s from one of the two sources ([`PrivilegedRefs`],
//! [`UnprivilegedRefs`]), and the [`Listing`] every frame of one listing shares.

use super::entry::{Mode, Subvolume, Unreachable, UnreachableReason};
use super::info::{from_ioctl, from_root_item, RootRef};
use super::lookup;
use super::paths::{id_of, join_bytes, open};
use super::privileged::PrivilegedRefs;
use super::unprivileged::UnprivilegedRefs;
use crate::errno_text::{desc, Shown};
use crate::error::{ErrorKind, Result};
use crate::fs::Filesystem;
use crate::ioctl;
use rustix::fs::{openat, Mode as FileMode, OFlags};
use rustix::io::Errno;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const OP: &str = "list subvolumes";

/// What every frame of one listing shares: the filesystem and where the listed path lies.
pub(crate) struct Listing<'a> {
    fs: &'a Filesystem,
    /// The listed path relative to the subvolume holding it (empty when it is that root).
    prefix: PathBuf,
    /// The path of that subvolume from the top level, when known.
    top: Option<PathBuf>,
}

impl Listing<'_> {
    /// The path shown for `rel` (relative to the walked root), or `None` if it lies outside
    /// the listed directory.
    fn shown(&self, rel: &Path) -> Option<PathBuf> {
        rel.strip_prefix(&self.prefix).ok().map(Path::to_path_buf)
    }

    /// The path from the top level for `rel`, when the walked root's is known.
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
    children: ChildSource<'a>,
}

/// Where a frame's children come from.
enum ChildSource<'a> {
    /// None: the subvolume is known to have no children, nothing to ask the kernel.
    Leaf,
    /// ROOT_REF items of this subvolume in the root tree.
    Privileged(Box<PrivilegedRefs<'a>>),
    /// GET_SUBVOL_ROOTREF on an open descriptor of this subvolume.
    Unprivileged(Box<UnprivilegedRefs>),
}

/// What a frame's next child turned out to be.
// Found is the common case; boxing it would cost an allocation per subvolume.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Step<'a> {
    /// A resolved subvolume and the frame to descend into it.
    Found(Subvolume, Frame<'a>),
    /// An unresolvable one.
    Unreachable(Unreachable),
    /// One outside the listed directory (only at the first level): skip it.
    Skip,
}

/// A walk just begun: the walked root's frame, the listing it belongs to and the mode chosen.
pub(crate) struct Walk<'a> {
    pub(crate) listing: Listing<'a>,
    pub(crate) root: Frame<'a>,
    pub(crate) mode: Mode,
}

fn reason(errno: Option<Errno>) -> UnreachableReason {
    match errno {
        Some(Errno::ACCESS | Errno::PERM) => UnreachableReason::PermissionDenied,
        Some(Errno::NOENT | Errno::STALE) => UnreachableReason::Vanished,
        Some(e) => UnreachableReason::Other(format!("{} ({})", Shown(e), desc(e))),
        None => UnreachableReason::Other("unknown error".into()),
    }
}

impl<'a> Walk<'a> {
    /// Begins the walk at subvolume root `root_path`, listing what lies below `prefix` in it.
    pub(crate) fn begin(
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
                Err(e) if matches!(e.kind(), ErrorKind::PermissionDenied { .. }) => false,
                Err(e) => return Err(e),
            },
        };
        let (top, children, mode) = if privileged {
            let top = lookup::top_path(fs, id)?;
            let children = ChildSource::Privileged(PrivilegedRefs::of(fs, id));
            (Some(top), children, Mode::Privileged)
        } else {
            let top = (id == super::TOP_LEVEL_ID).then(PathBuf::new);
            let children = ChildSource::Unprivileged(UnprivilegedRefs::new(root.into()));
            (top, children, Mode::Unprivileged)
        };
        Ok(Walk {
            listing: Listing { fs, prefix, top },
            root: Frame {
                id,
                rel: PathBuf::new(),
                depth: 0,
                children,
            },
            mode,
        })
    }
}

impl<'a> Frame<'a> {
    /// The next child of this subvolume.
    pub(crate) fn next_child(&mut self, listing: &Listing<'a>) -> Result<Option<Step<'a>>> {
        match &mut self.children {
            ChildSource::Leaf => Ok(None),
            ChildSource::Privileged(refs) => {
                let Some((child, r)) = refs.next_ref(listing.fs)? else {
                    return Ok(None);
                };
                self.privileged_child(listing, child, r).map(Some)
            }
            ChildSource::Unprivileged(refs) => {
                let Some((child, dir_id)) = refs.next_ref(listing.fs)? else {
                    return Ok(None);
                };
                Ok(Some(self.unprivileged_child(listing, child, dir_id)))
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

    fn child_frame(&self, id: u64, rel: PathBuf, children: ChildSource<'a>) -> Frame<'a> {
        Frame {
            id,
            rel,
            depth: self.depth + 1,
            children,
        }
    }

    fn privileged_child(
        &mut self,
        listing: &Listing<'a>,
        child: u64,
        r: RootRef,
    ) -> Result<Step<'a>> {
        let ChildSource::Privileged(refs) = &mut self.children else {
            unreachable!("called on privileged frames only")
        };
        let dir = match refs.dir_path(listing.fs, self.id, r.dir_id) {
            Ok(dir) => dir,
            Err(e) => return Ok(self.unreachable(child, None, e.errno())),
        };
        let rel = join_bytes(&self.rel, &dir, &r.name);
        let Some(shown) = listing.shown(&rel) else {
            return Ok(Step::Skip);
        };
        let items = refs.child_items(listing.fs, child)?;
        let Some(item) = items.root_item else {
            return Ok(self.unreachable(child, Some(shown), Some(Errno::NOENT)));
        };
        let mut info = from_root_item(child, Some((self.id, &r)), &item).map_err(|e| {
            listing
                .fs
                .decode_err(OP, format!("ROOT_ITEM of subvolume {child}: {e}"))
        })?;
        info.path = listing.top_path(&rel);
        let children = items
            .children
            .map_or(ChildSource::Leaf, ChildSource::Privileged);
        let frame = self.child_frame(child, rel, children);
        let sub = Subvolume {
            path: shown,
            depth: frame.depth,
            info,
        };
        Ok(Step::Found(sub, frame))
    }

    fn unprivileged_child(&self, listing: &Listing<'a>, child: u64, dir_id: u64) -> Step<'a> {
        let ChildSource::Unprivileged(refs) = &self.children else {
            unreachable!("called on unprivileged frames only")
        };
        let (dir, name) = match ioctl::ino_lookup_user(refs.fd.as_fd(), dir_id, child) {
            Ok(found) => found,
            Err(e) => return self.unreachable(child, None, Some(e)),
        };
        let rel = join_bytes(&self.rel, &dir, &name);
        let Some(shown) = listing.shown(&rel) else {
            return Step::Skip;
        };
        let below = join_bytes(Path::new(""), &dir, &name);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
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
        info.path = listing.top_path(&rel);
        let children = ChildSource::Unprivileged(UnprivilegedRefs::new(fd));
        let frame = self.child_frame(child, rel, children);
        let sub = Subvolume {
            path: shown,
            depth: frame.depth,
            info,
        };
        Step::Found(sub, frame)
    }
}
