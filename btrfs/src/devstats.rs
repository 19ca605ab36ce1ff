//! Device error counters (`BTRFS_IOC_GET_DEV_STATS`): what `btrfs device stats` shows and
//! node_exporter exports as `node_btrfs_device_errors_total`.
//!
//! The kernel counts, per device and persistently (in the device tree, at each commit): write,
//! read and flush I/O errors, checksum or header mismatches found on reads (corruption) and
//! tree blocks with an unexpected generation. Reading needs no privileges; resetting needs
//! CAP_SYS_ADMIN and is a separate, explicit call.

use crate::error::{Error, ErrorKind, Result};
use crate::fs::Filesystem;
use crate::ioctl;
use btrfs_sys as sys;
use rustix::io::Errno;

/// The error counters of one device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DeviceStats {
    /// The device id.
    pub devid: u64,
    /// Failed writes.
    pub write_errs: u64,
    /// Failed reads.
    pub read_errs: u64,
    /// Failed cache flushes.
    pub flush_errs: u64,
    /// Blocks read whose checksum (data) or header (metadata) did not match.
    pub corruption_errs: u64,
    /// Tree blocks read with an unexpected generation (lost writes).
    pub generation_errs: u64,
}

impl DeviceStats {
    /// The sum of all counters: nonzero means the device has had problems.
    pub fn total(&self) -> u64 {
        self.write_errs
            + self.read_errs
            + self.flush_errs
            + self.corruption_errs
            + self.generation_errs
    }

    /// The counters by the names `btrfs device stats` prints (`write_io_errs`, ...), in its
    /// order.
    pub fn named(&self) -> [(&'static str, u64); 5] {
        [
            ("write_io_errs", self.write_errs),
            ("read_io_errs", self.read_errs),
            ("flush_io_errs", self.flush_errs),
            ("corruption_errs", self.corruption_errs),
            ("generation_errs", self.generation_errs),
        ]
    }

    fn from_sys(args: &sys::btrfs_ioctl_get_dev_stats) -> Self {
        // Counters the kernel did not fill (nr_items below 5, older kernels) stay 0.
        let n = (args.nr_items as usize).min(args.values.len());
        let v = |i: u32| {
            if (i as usize) < n {
                args.values[i as usize]
            } else {
                0
            }
        };
        DeviceStats {
            devid: args.devid,
            write_errs: v(sys::BTRFS_DEV_STAT_WRITE_ERRS),
            read_errs: v(sys::BTRFS_DEV_STAT_READ_ERRS),
            flush_errs: v(sys::BTRFS_DEV_STAT_FLUSH_ERRS),
            corruption_errs: v(sys::BTRFS_DEV_STAT_CORRUPTION_ERRS),
            generation_errs: v(sys::BTRFS_DEV_STAT_GENERATION_ERRS),
        }
    }
}

impl Filesystem {
    /// The error counters of device `devid` (no privileges needed).
    pub fn device_stats(&self, devid: u64) -> Result<DeviceStats> {
        self.get_dev_stats("device stats", devid, false)
    }

    /// The error counters of every device, by ascending device id.
    pub fn device_stats_all(&self) -> Result<Vec<DeviceStats>> {
        self.device_ids()?
            .into_iter()
            .map(|devid| self.device_stats(devid))
            .collect()
    }

    /// Zeroes the error counters of device `devid` and returns their values before the reset
    /// (CAP_SYS_ADMIN). The kernel logs "device stats zeroed by ...".
    pub fn reset_device_stats(&self, devid: u64) -> Result<DeviceStats> {
        self.get_dev_stats("reset device stats", devid, true)
    }

    fn get_dev_stats(&self, op: &'static str, devid: u64, reset: bool) -> Result<DeviceStats> {
        match ioctl::get_dev_stats(self.fd(), devid, reset) {
            Ok(args) => Ok(DeviceStats::from_sys(&args)),
            Err(Errno::NODEV) => Err(Error::new(
                op,
                self.path(),
                ErrorKind::NoSuchDevice { devid },
            )),
            Err(errno) => Err(self.err(op, errno)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_only_the_counters_the_kernel_filled() {
        let mut args = sys::btrfs_ioctl_get_dev_stats {
            devid: 2,
            nr_items: 5,
            ..Default::default()
        };
        args.values = [1, 2, 3, 4, 5];
        let s = DeviceStats::from_sys(&args);
        assert_eq!((s.devid, s.write_errs, s.generation_errs), (2, 1, 5));
        assert_eq!(s.total(), 15);
        args.nr_items = 2;
        let s = DeviceStats::from_sys(&args);
        assert_eq!((s.read_errs, s.flush_errs, s.total()), (2, 0, 3));
        assert_eq!(s.named()[1], ("read_io_errs", 2));
    }
}
