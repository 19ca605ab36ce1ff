//! The mount table and the active swap files, as the kernel lists them for this process
//! (`/proc/self/mountinfo`, `/proc/swaps`), with their octal escapes undone.
//!
//! Paths stay byte-exact (a mount point or device named in any encoding is kept as the kernel
//! gave it); options are text.
//!
//! ```no_run
//! use btrfs_kit::mounts::MountTable;
//! use std::path::Path;
//!
//! let table = MountTable::current()?;
//! if let Some(m) = table.containing(Path::new("/var/lib/docker")) {
//!     println!("{} on {} ({})", m.source.display(), m.mount_point.display(), m.fstype);
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Where the kernel lists the mounts of this process's mount namespace.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount id.
    pub id: u64,
    /// The parent mount's id.
    pub parent: u64,
    /// The `major:minor` of the filesystem's superblock: one per filesystem, shared by every
    /// mount of it (for btrfs an anonymous device; its subvolumes have their own `st_dev`).
    pub device: (u32, u32),
    /// The directory of the filesystem that is the mount's root (`/a/b` for `subvol=a/b`,
    /// `/` unless a bind or subvolume mount).
    pub root: PathBuf,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw`, `noatime`, ...).
    pub options: Vec<String>,
    /// The filesystem type, e.g. `btrfs`.
    pub fstype: String,
    /// The mount source, e.g. `/dev/loop3` (a device for disk filesystems).
    pub source: PathBuf,
    /// Per-superblock options, e.g. `rw`, `space_cache=v2`, `subvolid=256` (`ro` here means
    /// the filesystem itself went read-only).
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

    /// Whether the superblock options include `name` (alone or as `name=value`).
    pub fn has_super_option(&self, name: &str) -> bool {
        self.super_options
            .iter()
            .any(|o| o == name || o.split_once('=').is_some_and(|(n, _)| n == name))
    }

    /// The value of a superblock option such as `subvol`, if set.
    pub fn super_option(&self, name: &str) -> Option<&str> {
        self.super_options
            .iter()
            .find_map(|o| o.strip_prefix(name)?.strip_prefix('='))
    }

    /// The subvolume a btrfs mount shows (its `subvolid=` option).
    pub fn subvolid(&self) -> Option<u64> {
        self.super_option("subvolid")?.parse().ok()
    }
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash); a backslash not followed by three octal digits stays.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (field[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn path(field: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape(field)))
}

fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(&unescape(field)).into_owned()
}

fn number<T: std::str::FromStr>(field: &[u8]) -> Option<T> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

fn options(field: &[u8]) -> Vec<String> {
    field
        .split(|b| *b == b',')
        .filter(|o| !o.is_empty())
        .map(text)
        .collect()
}

/// Parses one mountinfo line: `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE
/// SOURCE SUPER_OPTIONS`. `None` for a malformed line.
pub fn parse_line(line: &[u8]) -> Option<Mount> {
    let fields: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
    let sep = fields.iter().position(|f| *f == b"-")?;
    let devno = fields.get(2)?;
    let colon = devno.iter().position(|b| *b == b':')?;
    Some(Mount {
        id: number(fields.first()?)?,
        parent: number(fields.get(1)?)?,
        device: (number(&devno[..colon])?, number(&devno[colon + 1..])?),
        root: path(fields.get(3)?),
        mount_point: path(fields.get(4)?),
        options: options(fields.get(5)?),
        fstype: text(fields.get(sep + 1)?),
        source: path(fields.get(sep + 2)?),
        super_options: fields.get(sep + 3).map(|f| options(f)).unwrap_or_default(),
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
    /// The mounts this process sees ([`MOUNTINFO`]).
    pub fn current() -> std::io::Result<MountTable> {
        MountTable::read(Path::new(MOUNTINFO))
    }

    /// Reads a mountinfo file (normally [`MOUNTINFO`]).
    pub fn read(path: &Path) -> std::io::Result<MountTable> {
        Ok(MountTable::parse(&std::fs::read(path)?))
    }

    /// Parses mountinfo text; malformed lines are skipped.
    pub fn parse(text: &[u8]) -> MountTable {
        MountTable {
            mounts: text.split(|b| *b == b'\n').filter_map(parse_line).collect(),
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

    /// Mounts whose source is `source` (a device path, compared as written).
    pub fn of_source<'a>(&'a self, source: &'a Path) -> impl Iterator<Item = &'a Mount> + 'a {
        self.mounts.iter().filter(move |m| m.source == source)
    }

    /// Iterates over the mounts.
    pub fn iter(&self) -> std::slice::Iter<'_, Mount> {
        self.mounts.iter()
    }
}

impl<'a> IntoIterator for &'a MountTable {
    type Item = &'a Mount;
    type IntoIter = std::slice::Iter<'a, Mount>;
    fn into_iter(self) -> Self::IntoIter {
        self.mounts.iter()
    }
}

/// The active swap files and partitions (`/proc/swaps`); none when it cannot be read.
pub fn swap_files() -> Vec<PathBuf> {
    std::fs::read("/proc/swaps")
        .map(|text| {
            text.split(|b| *b == b'\n')
                .skip(1)
                .filter_map(|l| {
                    l.split(|b| b.is_ascii_whitespace())
                        .find(|f| !f.is_empty())
                        .map(path)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    const SAMPLE: &[u8] = b"\
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
        assert_eq!((docker.id, docker.parent, docker.device), (90, 25, (0, 45)));
        assert_eq!(docker.mount_point, Path::new("/var/lib/docker"));
        assert_eq!(docker.fstype, "btrfs");
        assert_eq!(docker.source, Path::new("/dev/mapper/vg0-docker"));
        assert!(docker.options.iter().any(|o| o == "noatime"));
        assert_eq!(docker.super_option("subvolid"), Some("5"));
        assert_eq!(docker.subvolid(), Some(5));
        assert!(docker.has_super_option("space_cache") && !docker.has_super_option("space"));
        assert!(!docker.is_read_only());
        assert_eq!(t.mounts[3].root, Path::new("/btrfs/subvolumes/abc"));
        let spaced = &t.mounts[4];
        assert_eq!(spaced.mount_point, Path::new("/mnt/with space"));
        assert!(spaced.is_read_only() && !spaced.filesystem_went_read_only());
        assert!(t.mounts[5].filesystem_went_read_only());
    }

    #[test]
    fn keeps_paths_that_are_not_utf8() {
        let t = MountTable::parse(b"40 25 0:50 /sub\\040\xff /mnt/caf\xe9 rw - btrfs /dev/loop9 rw,subvolid=256,subvol=/sub\\040\xff\n");
        let m = &t.mounts[0];
        assert_eq!(m.mount_point.as_os_str().as_bytes(), b"/mnt/caf\xe9");
        assert_eq!(m.root.as_os_str().as_bytes(), b"/sub \xff");
        assert_eq!(m.subvolid(), Some(256));
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
        assert_eq!(t.of_source(Path::new("/dev/mapper/vg0-docker")).count(), 2);
        assert_eq!((&t).into_iter().count(), 6);
    }

    #[test]
    fn skips_malformed_lines_and_keeps_lone_backslashes() {
        let t = MountTable::parse(b"garbage\n1 2 x / / rw - ext4 /dev/a rw\n");
        assert!(t.mounts.is_empty());
        assert_eq!(unescape(b"back\\134slash"), b"back\\slash");
        assert_eq!(unescape(b"odd\\9"), b"odd\\9");
    }
}
