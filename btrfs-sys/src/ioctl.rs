//! `BTRFS_IOC_*` ioctl request numbers, computed with nix's `request_code_*!` macros from the same
//! magic, number and argument type as the kernel header. `tests/ioctl_numbers.rs` checks each one
//! against the C header.

use crate::bindings::*;
use core::mem::size_of;
use nix::{request_code_none, request_code_read, request_code_readwrite, request_code_write};

/// The request number type of `ioctl(2)` on this target.
pub type Request = nix::sys::ioctl::ioctl_num_type;

/// `BTRFS_IOCTL_MAGIC` (0x94) as the type nix's macros take.
const M: u8 = BTRFS_IOCTL_MAGIC as u8;
/// `BTRFS_LABEL_SIZE`: the size of the label buffer of GET/SET_FSLABEL.
const LABEL: usize = BTRFS_LABEL_SIZE as usize;

macro_rules! requests {
    ($($(#[$doc:meta])* $name:ident = $code:expr;)*) => {
        $($(#[$doc])* pub const $name: Request = $code;)*
        /// Every request number of this module, by its C name, for the header check.
        pub const ALL: &[(&str, Request)] = &[$((stringify!($name), $name)),*];
    };
}

requests! {
    /// `_IOW(0x94, 3, struct btrfs_ioctl_vol_args)`: resize a device.
    BTRFS_IOC_RESIZE = request_code_write!(M, 3, size_of::<btrfs_ioctl_vol_args>());
    /// `_IOW(0x94, 4, struct btrfs_ioctl_vol_args)`: register a device (on /dev/btrfs-control).
    BTRFS_IOC_SCAN_DEV = request_code_write!(M, 4, size_of::<btrfs_ioctl_vol_args>());
    /// `_IOW(0x94, 5, struct btrfs_ioctl_vol_args)`: unregister a device (on /dev/btrfs-control).
    BTRFS_IOC_FORGET_DEV = request_code_write!(M, 5, size_of::<btrfs_ioctl_vol_args>());
    /// `_IO(0x94, 8)`: commit the current transaction.
    BTRFS_IOC_SYNC = request_code_none!(M, 8);
    /// `_IOW(0x94, 15, struct btrfs_ioctl_vol_args)`: delete a subvolume by name.
    BTRFS_IOC_SNAP_DESTROY = request_code_write!(M, 15, size_of::<btrfs_ioctl_vol_args>());
    /// `_IOW(0x94, 10, struct btrfs_ioctl_vol_args)`: add a device to a mounted filesystem.
    BTRFS_IOC_ADD_DEV = request_code_write!(M, 10, size_of::<btrfs_ioctl_vol_args>());
    /// `_IOW(0x94, 16, struct btrfs_ioctl_defrag_range_args)`: defragment a file's range.
    BTRFS_IOC_DEFRAG_RANGE = request_code_write!(M, 16, size_of::<btrfs_ioctl_defrag_range_args>());
    /// `_IOWR(0x94, 17, struct btrfs_ioctl_search_args)`: search a tree (v1).
    BTRFS_IOC_TREE_SEARCH = request_code_readwrite!(M, 17, size_of::<btrfs_ioctl_search_args>());
    /// `_IOWR(0x94, 17, struct btrfs_ioctl_search_args_v2)`: search a tree into a buffer of the
    /// caller's size (v2).
    BTRFS_IOC_TREE_SEARCH_V2 = request_code_readwrite!(M, 17, size_of::<btrfs_ioctl_search_args_v2>());
    /// `_IOWR(0x94, 18, struct btrfs_ioctl_ino_lookup_args)`: path of an inode in a subvolume.
    BTRFS_IOC_INO_LOOKUP = request_code_readwrite!(M, 18, size_of::<btrfs_ioctl_ino_lookup_args>());
    /// `_IOW(0x94, 19, __u64)`: set the default subvolume.
    BTRFS_IOC_DEFAULT_SUBVOL = request_code_write!(M, 19, size_of::<u64>());
    /// `_IOWR(0x94, 20, struct btrfs_ioctl_space_args)`: space info per block group type.
    BTRFS_IOC_SPACE_INFO = request_code_readwrite!(M, 20, size_of::<btrfs_ioctl_space_args>());
    /// `_IOW(0x94, 22, __u64)`: wait for a transaction to commit.
    BTRFS_IOC_WAIT_SYNC = request_code_write!(M, 22, size_of::<u64>());
    /// `_IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)`: create a snapshot.
    BTRFS_IOC_SNAP_CREATE_V2 = request_code_write!(M, 23, size_of::<btrfs_ioctl_vol_args_v2>());
    /// `_IOR(0x94, 24, __u64)`: start a transaction commit, return its id.
    BTRFS_IOC_START_SYNC = request_code_read!(M, 24, size_of::<u64>());
    /// `_IOW(0x94, 24, struct btrfs_ioctl_vol_args_v2)`: create a subvolume.
    BTRFS_IOC_SUBVOL_CREATE_V2 = request_code_write!(M, 24, size_of::<btrfs_ioctl_vol_args_v2>());
    /// `_IOR(0x94, 25, __u64)`: read subvolume flags.
    BTRFS_IOC_SUBVOL_GETFLAGS = request_code_read!(M, 25, size_of::<u64>());
    /// `_IOW(0x94, 26, __u64)`: set subvolume flags.
    BTRFS_IOC_SUBVOL_SETFLAGS = request_code_write!(M, 26, size_of::<u64>());
    /// `_IOWR(0x94, 27, struct btrfs_ioctl_scrub_args)`: scrub one device (blocks until done).
    BTRFS_IOC_SCRUB = request_code_readwrite!(M, 27, size_of::<btrfs_ioctl_scrub_args>());
    /// `_IO(0x94, 28)`: cancel every running scrub of the filesystem.
    BTRFS_IOC_SCRUB_CANCEL = request_code_none!(M, 28);
    /// `_IOWR(0x94, 29, struct btrfs_ioctl_scrub_args)`: progress of one device's scrub.
    BTRFS_IOC_SCRUB_PROGRESS = request_code_readwrite!(M, 29, size_of::<btrfs_ioctl_scrub_args>());
    /// `_IOWR(0x94, 30, struct btrfs_ioctl_dev_info_args)`: one device's info.
    BTRFS_IOC_DEV_INFO = request_code_readwrite!(M, 30, size_of::<btrfs_ioctl_dev_info_args>());
    /// `_IOR(0x94, 31, struct btrfs_ioctl_fs_info_args)`: filesystem info.
    BTRFS_IOC_FS_INFO = request_code_read!(M, 31, size_of::<btrfs_ioctl_fs_info_args>());
    /// `_IOWR(0x94, 32, struct btrfs_ioctl_balance_args)`: start or resume a balance.
    BTRFS_IOC_BALANCE_V2 = request_code_readwrite!(M, 32, size_of::<btrfs_ioctl_balance_args>());
    /// `_IOW(0x94, 33, int)`: pause or cancel a balance (the int is passed by value).
    BTRFS_IOC_BALANCE_CTL = request_code_write!(M, 33, size_of::<core::ffi::c_int>());
    /// `_IOR(0x94, 34, struct btrfs_ioctl_balance_args)`: progress of the running balance.
    BTRFS_IOC_BALANCE_PROGRESS = request_code_read!(M, 34, size_of::<btrfs_ioctl_balance_args>());
    /// `_IOWR(0x94, 35, struct btrfs_ioctl_ino_path_args)`: the paths of an inode.
    BTRFS_IOC_INO_PATHS = request_code_readwrite!(M, 35, size_of::<btrfs_ioctl_ino_path_args>());
    /// `_IOWR(0x94, 36, struct btrfs_ioctl_logical_ino_args)`: the inodes at a logical address.
    BTRFS_IOC_LOGICAL_INO = request_code_readwrite!(M, 36, size_of::<btrfs_ioctl_logical_ino_args>());
    /// `_IOWR(0x94, 37, struct btrfs_ioctl_received_subvol_args)`: set the received uuid.
    BTRFS_IOC_SET_RECEIVED_SUBVOL = request_code_readwrite!(M, 37, size_of::<btrfs_ioctl_received_subvol_args>());
    /// `_IOR(0x94, 39, struct btrfs_ioctl_vol_args)`: are all devices of a filesystem present.
    BTRFS_IOC_DEVICES_READY = request_code_read!(M, 39, size_of::<btrfs_ioctl_vol_args>());
    /// `_IOWR(0x94, 40, struct btrfs_ioctl_quota_ctl_args)`: enable or disable quotas.
    BTRFS_IOC_QUOTA_CTL = request_code_readwrite!(M, 40, size_of::<btrfs_ioctl_quota_ctl_args>());
    /// `_IOW(0x94, 41, struct btrfs_ioctl_qgroup_assign_args)`: assign a qgroup to a parent.
    BTRFS_IOC_QGROUP_ASSIGN = request_code_write!(M, 41, size_of::<btrfs_ioctl_qgroup_assign_args>());
    /// `_IOW(0x94, 42, struct btrfs_ioctl_qgroup_create_args)`: create or destroy a qgroup.
    BTRFS_IOC_QGROUP_CREATE = request_code_write!(M, 42, size_of::<btrfs_ioctl_qgroup_create_args>());
    /// `_IOR(0x94, 43, struct btrfs_ioctl_qgroup_limit_args)`: limit a qgroup.
    BTRFS_IOC_QGROUP_LIMIT = request_code_read!(M, 43, size_of::<btrfs_ioctl_qgroup_limit_args>());
    /// `_IOW(0x94, 44, struct btrfs_ioctl_quota_rescan_args)`: start a quota rescan.
    BTRFS_IOC_QUOTA_RESCAN = request_code_write!(M, 44, size_of::<btrfs_ioctl_quota_rescan_args>());
    /// `_IOR(0x94, 45, struct btrfs_ioctl_quota_rescan_args)`: quota rescan status.
    BTRFS_IOC_QUOTA_RESCAN_STATUS = request_code_read!(M, 45, size_of::<btrfs_ioctl_quota_rescan_args>());
    /// `_IO(0x94, 46)`: wait for a quota rescan to finish.
    BTRFS_IOC_QUOTA_RESCAN_WAIT = request_code_none!(M, 46);
    /// `_IOR(0x94, 49, char[256])` (`FS_IOC_GETFSLABEL`): read the label.
    BTRFS_IOC_GET_FSLABEL = request_code_read!(M, 49, LABEL);
    /// `_IOW(0x94, 50, char[256])` (`FS_IOC_SETFSLABEL`): set the label.
    BTRFS_IOC_SET_FSLABEL = request_code_write!(M, 50, LABEL);
    /// `_IOWR(0x94, 52, struct btrfs_ioctl_get_dev_stats)`: a device's error counters.
    BTRFS_IOC_GET_DEV_STATS = request_code_readwrite!(M, 52, size_of::<btrfs_ioctl_get_dev_stats>());
    /// `_IOR(0x94, 57, struct btrfs_ioctl_feature_flags)`: enabled features.
    BTRFS_IOC_GET_FEATURES = request_code_read!(M, 57, size_of::<btrfs_ioctl_feature_flags>());
    /// `_IOR(0x94, 57, struct btrfs_ioctl_feature_flags[3])`: supported features.
    BTRFS_IOC_GET_SUPPORTED_FEATURES = request_code_read!(M, 57, 3 * size_of::<btrfs_ioctl_feature_flags>());
    /// `_IOW(0x94, 58, struct btrfs_ioctl_vol_args_v2)`: remove a device by path or devid.
    BTRFS_IOC_RM_DEV_V2 = request_code_write!(M, 58, size_of::<btrfs_ioctl_vol_args_v2>());
    /// `_IOWR(0x94, 59, struct btrfs_ioctl_logical_ino_args)`: LOGICAL_INO with flags (e.g.
    /// `BTRFS_LOGICAL_INO_ARGS_IGNORE_OFFSET`) and buffers up to 16 MiB.
    BTRFS_IOC_LOGICAL_INO_V2 = request_code_readwrite!(M, 59, size_of::<btrfs_ioctl_logical_ino_args>());
    /// `_IOR(0x94, 60, struct btrfs_ioctl_get_subvol_info_args)`: info of the fd's subvolume.
    BTRFS_IOC_GET_SUBVOL_INFO = request_code_read!(M, 60, size_of::<btrfs_ioctl_get_subvol_info_args>());
    /// `_IOWR(0x94, 61, struct btrfs_ioctl_get_subvol_rootref_args)`: child subvolume refs.
    BTRFS_IOC_GET_SUBVOL_ROOTREF = request_code_readwrite!(M, 61, size_of::<btrfs_ioctl_get_subvol_rootref_args>());
    /// `_IOWR(0x94, 62, struct btrfs_ioctl_ino_lookup_user_args)`: unprivileged path lookup.
    BTRFS_IOC_INO_LOOKUP_USER = request_code_readwrite!(M, 62, size_of::<btrfs_ioctl_ino_lookup_user_args>());
    /// `_IOW(0x94, 63, struct btrfs_ioctl_vol_args_v2)`: delete a subvolume by name or id.
    BTRFS_IOC_SNAP_DESTROY_V2 = request_code_write!(M, 63, size_of::<btrfs_ioctl_vol_args_v2>());
    /// `_IOWR('X', 121, struct fstrim_range)` (linux/fs.h): discard unused space.
    FITRIM = request_code_readwrite!(b'X', 121, size_of::<fstrim_range>());
    /// `_IOWR('f', 11, struct fiemap)` (linux/fs.h): map a file's extents.
    FS_IOC_FIEMAP = request_code_readwrite!(b'f', 11, size_of::<fiemap>());
    /// `_IOR(0x12, 114, size_t)` (linux/fs.h): a block device's size in bytes (the kernel
    /// writes a u64 whatever `size_t` is).
    BLKGETSIZE64 = request_code_read!(0x12, 114, size_of::<usize>());
    /// `_IOR('f', 1, long)` (linux/fs.h): an inode's attribute flags (`FS_*_FL`; the kernel
    /// writes an int whatever `long` is).
    FS_IOC_GETFLAGS = request_code_read!(b'f', 1, size_of::<core::ffi::c_long>());
}
