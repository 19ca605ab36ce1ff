//! Names of filesystem types, from `statfs(2)`'s `f_type` magic numbers.

/// `BTRFS_SUPER_MAGIC` as reported by `statfs(2)`.
pub const BTRFS_SUPER_MAGIC: i64 = 0x9123_683E;

/// A readable name for a `statfs` magic number, e.g. `ext4` or `tmpfs`; unknown magics are
/// shown in hex.
pub fn name_of_magic(magic: i64) -> String {
    let name = match magic {
        BTRFS_SUPER_MAGIC => "btrfs",
        0xEF53 => "ext2/ext3/ext4",
        0x0102_1994 => "tmpfs",
        0x5846_5342 => "xfs",
        0x794C_7630 => "overlayfs",
        0x9FA0 => "proc",
        0x6265_6572 => "sysfs",
        0x1373 => "devtmpfs/devfs",
        0x2FC1_2FC1 => "zfs",
        0xCA45_1A4E => "bcachefs",
        0xF2F5_2010 => "f2fs",
        0x6969 => "nfs",
        0xFF53_4D42 => "cifs/smb",
        0x6573_5546 => "fuse",
        0x0187 => "autofs",
        0x2721_0801 => "cgroup",
        0x6367_7270 => "cgroup2",
        0x4D44 => "vfat",
        0x5346_544E => "ntfs",
        0x0102_1997 => "9p",
        0x8584_58F6 => "ramfs",
        0x7371_7368 => "squashfs",
        _ => return format!("unknown filesystem (magic {magic:#x})"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_common_filesystems() {
        assert_eq!(super::name_of_magic(0xEF53), "ext2/ext3/ext4");
        assert_eq!(super::name_of_magic(super::BTRFS_SUPER_MAGIC), "btrfs");
        assert!(super::name_of_magic(0x1234).contains("0x1234"));
    }
}
