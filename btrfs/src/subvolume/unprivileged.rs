//! The unprivileged source of one subvolume's children (kernel 4.18+):
//! `BTRFS_IOC_GET_SUBVOL_ROOTREF` on an open descriptor of the subvolume, up to 255 refs a call.

use crate::error::Result;
use crate::fs::Filesystem;
use crate::ioctl;
use btrfs_sys as sys;
use std::os::fd::{AsFd, OwnedFd};

/// The child refs of one open subvolume, fetched from the kernel a batch at a time.
pub(crate) struct UnprivilegedRefs {
    /// The open subvolume: children are asked of it, and opened relative to it.
    pub(crate) fd: OwnedFd,
    /// The last batch; the kernel resumes after its last ref when asked again.
    args: sys::btrfs_ioctl_get_subvol_rootref_args,
    /// The next ref of the batch to hand out.
    next: usize,
    /// Whether a batch was fetched at all.
    started: bool,
    /// Whether the kernel said more refs follow the batch (EOVERFLOW).
    more: bool,
}

impl UnprivilegedRefs {
    /// The children of the subvolume open as `fd`.
    pub(crate) fn new(fd: OwnedFd) -> Box<Self> {
        Box::new(UnprivilegedRefs {
            fd,
            args: Default::default(),
            next: 0,
            started: false,
            more: false,
        })
    }

    /// The next (child id, directory id), fetching up to 255 at a time.
    pub(crate) fn next_ref(&mut self, fs: &Filesystem) -> Result<Option<(u64, u64)>> {
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
                .map_err(|e| fs.err("list child subvolumes", e))?;
            self.started = true;
            self.next = 0;
        }
    }
}
