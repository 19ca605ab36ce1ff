//! The lvm2 version, detected once per backend, and the behaviours that depend on it.

use std::fmt;

/// An lvm2 version such as 2.03.16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LvmVersion {
    /// Major (2).
    pub major: u32,
    /// Minor (3).
    pub minor: u32,
    /// Patch (16).
    pub patch: u32,
}

impl LvmVersion {
    /// Builds a version.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        LvmVersion {
            major,
            minor,
            patch,
        }
    }

    /// Parses the `LVM version:     2.03.16(2) (2022-05-18)` line of `lvm version`.
    pub fn from_version_output(text: &str) -> Option<Self> {
        let line = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("LVM version:"))?;
        let number: String = line
            .trim()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut parts = number.split('.').map(|p| p.parse::<u32>().ok());
        Some(LvmVersion::new(
            parts.next()??,
            parts.next()??,
            parts.next().flatten().unwrap_or(0),
        ))
    }

    /// `json_std` (numbers and arrays) exists from 2.03.17.
    pub fn has_json_std(self) -> bool {
        self >= LvmVersion::new(2, 3, 17)
    }

    /// `--devices` exists from 2.03.12; older versions are confined with a filter instead.
    pub fn has_devices_option(self) -> bool {
        self >= LvmVersion::new(2, 3, 12)
    }

    /// Up to 2.03.16 the JSON command log gets a trailing comma when entries are filtered out;
    /// `command_log_selection="all"` keeps every entry and so avoids it.
    pub fn needs_full_command_log(self) -> bool {
        self <= LvmVersion::new(2, 3, 16)
    }
}

impl fmt::Display for LvmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}.{:02}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lvm_version_output() {
        let out = "  LVM version:     2.03.16(2) (2022-05-18)\n  Library version: 1.02.185 (2022-05-18)\n";
        let v = LvmVersion::from_version_output(out).unwrap();
        assert_eq!(v, LvmVersion::new(2, 3, 16));
        assert_eq!(v.to_string(), "2.03.16");
        assert!(!v.has_json_std() && v.has_devices_option() && v.needs_full_command_log());
        let new = LvmVersion::from_version_output("LVM version: 2.03.22(2) (2023-08-02)").unwrap();
        assert!(new.has_json_std() && !new.needs_full_command_log());
        assert_eq!(LvmVersion::from_version_output("nonsense"), None);
    }
}
