//! Online resize of one device of a mounted filesystem: `BTRFS_IOC_RESIZE`.

use crate::error::{Error, ErrorKind, Result};
use crate::fs::Filesystem;
use crate::ioctl;
use crate::size::ByteSize;
use btrfs_sys as sys;
use rustix::io::Errno;

/// The new size of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeTarget {
    /// The whole underlying device, e.g. after `lvextend`.
    Max,
    /// Exactly this size.
    To(ByteSize),
    /// Grow by this much.
    Grow(ByteSize),
    /// Shrink by this much (relocates chunks off the removed range).
    Shrink(ByteSize),
}

impl std::fmt::Display for ResizeTarget {
    /// The kernel's syntax: `max`, `N`, `+N`, `-N`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResizeTarget::Max => f.write_str("max"),
            ResizeTarget::To(n) => write!(f, "{n:#}"),
            ResizeTarget::Grow(n) => write!(f, "+{n:#}"),
            ResizeTarget::Shrink(n) => write!(f, "-{n:#}"),
        }
    }
}

impl Filesystem {
    /// Resizes device `devid` (1 on a single-device filesystem) of the mounted filesystem, then
    /// returns the device's new size. Needs CAP_SYS_ADMIN.
    pub fn resize(&self, devid: u64, target: ResizeTarget) -> Result<ByteSize> {
        const OP: &str = "resize";
        let mut args = sys::btrfs_ioctl_vol_args::default();
        let spec = format!("{devid}:{target}");
        for (dst, src) in args.name.iter_mut().zip(spec.bytes()) {
            *dst = src as _;
        }
        match ioctl::resize(self.fd(), &args) {
            Ok(0) => {}
            Ok(code) => return Err(self.btrfs_error_code(OP, code)),
            Err(Errno::INVAL) => {
                return Err(Error::new(OP, self.path(), ErrorKind::KernelRejected { hint: Some("the size must be at least 256 MiB, within the device, and a whole number of sectors") }))
            }
            Err(Errno::NODEV) => {
                return Err(Error::invalid_arguments(OP, format!("no device with id {devid}")))
            }
            Err(e) => return Err(self.err(OP, e)),
        }
        let device = self.devices()?.into_iter().find(|d| d.devid == devid);
        Ok(device.map(|d| d.total_bytes).unwrap_or_default())
    }
}
