//! The mount table and the active swap files, as the kernel lists them for this process
//! (`/proc/self/mountinfo`, `/proc/swaps`), with their octal escapes undone.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    /// The filesystem's device number (`major:minor` of its superblock): one per filesystem,
    /// shared by every mount of it (btrfs subvolumes have their own `st_dev` besides).
    pub dev: (u64, u64),
    /// The directory of the filesystem that is the mount's root (`/a/b` for `subvol=a/b`).
    pub root: PathBuf,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The filesystem type, e.g. `btrfs`.
    pub fstype: String,
    /// The mount source, e.g. `/dev/loop3`.
    pub source: PathBuf,
    /// The superblock options, e.g. `rw,space_cache=v2,subvolid=256,subvol=/a`.
    pub super_options: String,
}

impl MountEntry {
    /// Whether the superblock options include `name` (alone or as `name=value`).
    pub fn has_option(&self, name: &str) -> bool {
        self.super_options
            .split(',')
            .any(|o| o == name || o.split_once('=').is_some_and(|(n, _)| n == name))
    }

    /// The subvolume a btrfs mount shows (its `subvolid=` option).
    pub fn subvolid(&self) -> Option<u64> {
        self.super_options
            .split(',')
            .find_map(|o| o.strip_prefix("subvolid="))
            .and_then(|v| v.parse().ok())
    }
}

/// Undoes the kernel's octal escapes (`\040` for a space, `\134` for a backslash...).
fn unescape(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
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
    PathBuf::from(OsString::from_vec(out))
}

/// Parses one line of mountinfo: `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE
/// SOURCE SUPER_OPTIONS`.
fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split(' ').collect();
    let (major, minor) = fields.get(2)?.split_once(':')?;
    let sep = fields.iter().position(|f| *f == "-")?;
    Some(MountEntry {
        dev: (major.parse().ok()?, minor.parse().ok()?),
        root: unescape(fields.get(3)?),
        mount_point: unescape(fields.get(4)?),
        fstype: (*fields.get(sep + 1)?).to_string(),
        source: unescape(fields.get(sep + 2)?),
        super_options: (*fields.get(sep + 3)?).to_string(),
    })
}

/// The mounts this process sees.
pub(crate) fn mount_table() -> std::io::Result<Vec<MountEntry>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text.lines().filter_map(parse_mountinfo_line).collect())
}

/// The mount holding `path` (canonical): the entry with the longest mount point above it.
pub(crate) fn mount_of<'a>(table: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    table
        .iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
}

/// The active swap files and partitions (`/proc/swaps`); none when it cannot be read.
pub(crate) fn swap_files() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/swaps")
        .map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().next().map(unescape))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_with_escapes_and_optional_fields() {
        let line = "47 27 0:40 /a\\040b /mnt/with\\040space rw,relatime shared:1 - btrfs /dev/loop0 rw,space_cache=v2,user_subvol_rm_allowed,subvolid=256,subvol=/a b";
        let m = parse_mountinfo_line(line).unwrap();
        assert_eq!(m.dev, (0, 40));
        assert_eq!(m.root, Path::new("/a b"));
        assert_eq!(m.mount_point, Path::new("/mnt/with space"));
        assert_eq!(
            (m.fstype.as_str(), m.source.as_path()),
            ("btrfs", Path::new("/dev/loop0"))
        );
        assert_eq!(m.subvolid(), Some(256));
        assert!(m.has_option("user_subvol_rm_allowed") && m.has_option("space_cache"));
        assert!(!m.has_option("space"));
        let table = vec![
            m.clone(),
            parse_mountinfo_line("1 0 0:2 / / rw - ext4 /dev/sda1 rw").unwrap(),
        ];
        assert_eq!(
            mount_of(&table, Path::new("/mnt/with space/x")),
            Some(&table[0])
        );
        assert_eq!(mount_of(&table, Path::new("/srv")), Some(&table[1]));
        assert_eq!(unescape("back\\134slash"), Path::new("back\\slash"));
        assert_eq!(unescape("odd\\9"), Path::new("odd\\9"));
    }
}
