//! The mount table (`/proc/self/mountinfo`): which mount holds a path, what is under it,
//! and its options.

use std::path::{Path, PathBuf};

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount id.
    pub id: u64,
    /// The parent mount's id.
    pub parent: u64,
    /// The `major:minor` of the filesystem (for btrfs an anonymous device shared by every
    /// mount of the same filesystem).
    pub device: (u32, u32),
    /// The directory of the filesystem mounted here (`/` unless a bind or subvolume mount).
    pub root: PathBuf,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw`, `noatime`, ...).
    pub options: Vec<String>,
    /// The filesystem type.
    pub fstype: String,
    /// The mount source (a device for disk filesystems).
    pub source: String,
    /// Per-superblock options (`ro` here means the filesystem itself went read-only).
    pub super_options: Vec<String>,
}

impl Mount {
    /// Whether this mount is read-only, or its filesystem is (e.g. after a transaction abort).
    pub fn is_read_only(&self) -> bool {
        self.options.iter().any(|o| o == "ro") || self.super_options.iter().any(|o| o == "ro")
    }

    /// Whether the filesystem itself is read-only although the mount was asked read-write:
    /// what btrfs does after it aborts a transaction.
    pub fn filesystem_went_read_only(&self) -> bool {
        self.options.iter().any(|o| o == "rw") && self.super_options.iter().any(|o| o == "ro")
    }

    /// The value of a superblock option such as `subvol`, if set.
    pub fn super_option(&self, name: &str) -> Option<&str> {
        self.super_options
            .iter()
            .find_map(|o| o.strip_prefix(name)?.strip_prefix('='))
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\012` newline, `\134` backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one mountinfo line.
pub fn parse_line(line: &str) -> Option<Mount> {
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields.iter().position(|f| *f == "-")?;
    let (major, minor) = fields.get(2)?.split_once(':')?;
    Some(Mount {
        id: fields.first()?.parse().ok()?,
        parent: fields.get(1)?.parse().ok()?,
        device: (major.parse().ok()?, minor.parse().ok()?),
        root: unescape(fields.get(3)?).into(),
        mount_point: unescape(fields.get(4)?).into(),
        options: fields.get(5)?.split(',').map(str::to_string).collect(),
        fstype: fields.get(sep + 1)?.to_string(),
        source: unescape(fields.get(sep + 2)?),
        super_options: fields
            .get(sep + 3)
            .map(|o| o.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// The mounts of a mount namespace, in mountinfo order (later mounts on the same point cover
/// earlier ones).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MountTable {
    /// The mounts.
    pub mounts: Vec<Mount>,
}

impl MountTable {
    /// Reads a mountinfo file (normally `/proc/self/mountinfo`).
    pub fn read(path: &Path) -> std::io::Result<MountTable> {
        Ok(MountTable::parse(&std::fs::read_to_string(path)?))
    }

    /// Parses mountinfo text; malformed lines are skipped.
    pub fn parse(text: &str) -> MountTable {
        MountTable {
            mounts: text.lines().filter_map(parse_line).collect(),
        }
    }

    /// The mount that holds `path` (an absolute path without symlinks, e.g. canonicalised):
    /// the one with the longest mount point above it; of several on the same point, the last.
    pub fn containing(&self, path: &Path) -> Option<&Mount> {
        self.mounts
            .iter()
            .enumerate()
            .filter(|(_, m)| path.starts_with(&m.mount_point))
            .max_by_key(|(i, m)| (m.mount_point.components().count(), *i))
            .map(|(_, m)| m)
    }

    /// The mount mounted exactly on `path`, if any (the topmost).
    pub fn at(&self, path: &Path) -> Option<&Mount> {
        self.mounts.iter().rev().find(|m| m.mount_point == path)
    }

    /// Mounts of the filesystem on `source` (a device path).
    pub fn of_source<'a>(&'a self, source: &'a str) -> impl Iterator<Item = &'a Mount> + 'a {
        self.mounts.iter().filter(move |m| m.source == source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
25 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
90 25 0:45 / /var/lib/docker rw,noatime shared:50 - btrfs /dev/mapper/vg0-docker rw,space_cache=v2,subvolid=5,subvol=/
91 90 0:45 /btrfs/subvolumes/abc /var/lib/docker/btrfs/subvolumes/abc rw,noatime - btrfs /dev/mapper/vg0-docker rw,subvolid=258,subvol=/btrfs/subvolumes/abc
92 25 0:46 / /mnt/with\\040space ro,relatime - btrfs /dev/loop3 ro,subvolid=5,subvol=/
93 25 0:47 / /srv rw,relatime - btrfs /dev/loop4 ro,subvolid=5,subvol=/
";

    #[test]
    fn parses_fields_and_escapes() {
        let t = MountTable::parse(SAMPLE);
        assert_eq!(t.mounts.len(), 6);
        let docker = &t.mounts[2];
        assert_eq!(docker.device, (0, 45));
        assert_eq!(docker.mount_point, Path::new("/var/lib/docker"));
        assert_eq!(docker.fstype, "btrfs");
        assert_eq!(docker.source, "/dev/mapper/vg0-docker");
        assert!(docker.options.contains(&"noatime".to_string()));
        assert_eq!(docker.super_option("subvolid"), Some("5"));
        assert!(!docker.is_read_only());
        let spaced = &t.mounts[4];
        assert_eq!(spaced.mount_point, Path::new("/mnt/with space"));
        assert!(spaced.is_read_only() && !spaced.filesystem_went_read_only());
        assert!(t.mounts[5].filesystem_went_read_only());
    }

    #[test]
    fn finds_the_mount_holding_a_path() {
        let t = MountTable::parse(SAMPLE);
        let m = |p: &str| t.containing(Path::new(p)).map(|m| m.id);
        assert_eq!(m("/var/lib/docker"), Some(90));
        assert_eq!(m("/var/lib/docker/image/btrfs"), Some(90));
        assert_eq!(m("/var/lib/docker/btrfs/subvolumes/abc/etc"), Some(91));
        assert_eq!(m("/var/lib/dockerx"), Some(25));
        assert_eq!(m("/var/lib"), Some(25));
        assert_eq!(t.at(Path::new("/var/lib/docker")).map(|m| m.id), Some(90));
        assert_eq!(t.at(Path::new("/var/lib")), None);
        assert_eq!(t.of_source("/dev/mapper/vg0-docker").count(), 2);
    }

    #[test]
    fn skips_malformed_lines() {
        let t = MountTable::parse("garbage\n1 2 x / / rw - ext4 /dev/a rw\n");
        assert!(t.mounts.is_empty());
    }
}
