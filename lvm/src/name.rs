//! LVM name rules, checked before any process starts so a bad name never reaches argv.
//!
//! The rules are lvm2's own (`lib/misc/lvm-string.c`, `lib/metadata/metadata.c`): characters
//! `[A-Za-z0-9+_.-]`, no leading `-`, not `.` or `..`, at most 127 characters, LV names not starting
//! with `snapshot` or `pvmove` and free of the reserved internal suffixes, and `vg + lv + 3 < 128`
//! so that `/dev/mapper/VG-LV` device names fit.

use crate::error::{Error, ObjectKind};

/// The longest VG or LV name lvm2 accepts.
pub const MAX_NAME_LEN: usize = 127;

/// Substrings lvm2 reserves for its internal (hidden) sub-LVs.
const RESERVED_LV_SUBSTRINGS: [&str; 17] = [
    "_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_wcorig", "_mimage", "_mlog", "_rimage",
    "_rmeta", "_tdata", "_tmeta", "_vdata", "_imeta", "_iorig", "_pmspare", "_vorigin",
];

/// LV name prefixes lvm2 reserves.
const RESERVED_LV_PREFIXES: [&str; 2] = ["snapshot", "pvmove"];

fn invalid(object: ObjectKind, name: &str, reason: String) -> Error {
    Error::InvalidName {
        object,
        name: name.to_owned(),
        reason,
    }
}

fn check_common(object: ObjectKind, name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(invalid(object, name, "it is empty".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(
            object,
            name,
            format!(
                "it is {} characters long, the limit is {MAX_NAME_LEN}",
                name.len()
            ),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '_' | '.' | '-')))
    {
        return Err(invalid(
            object,
            name,
            format!("it contains {bad:?}; only A-Z a-z 0-9 + _ . - are allowed"),
        ));
    }
    if name.starts_with('-') {
        return Err(invalid(object, name, "it starts with '-'".into()));
    }
    if name == "." || name == ".." {
        return Err(invalid(object, name, "'.' and '..' are reserved".into()));
    }
    Ok(())
}

/// Checks a volume group name against lvm2's rules.
pub fn validate_vg_name(name: &str) -> Result<(), Error> {
    check_common(ObjectKind::VolumeGroup, name)
}

/// Checks a logical volume name (and, with its VG, the combined length) against lvm2's rules.
pub fn validate_lv_name(vg: &str, name: &str) -> Result<(), Error> {
    validate_vg_name(vg)?;
    check_common(ObjectKind::LogicalVolume, name)?;
    if let Some(prefix) = RESERVED_LV_PREFIXES.iter().find(|p| name.starts_with(*p)) {
        return Err(invalid(
            ObjectKind::LogicalVolume,
            name,
            format!("names starting with {prefix:?} are reserved by lvm2"),
        ));
    }
    if let Some(sub) = RESERVED_LV_SUBSTRINGS.iter().find(|s| name.contains(*s)) {
        return Err(invalid(
            ObjectKind::LogicalVolume,
            name,
            format!("{sub:?} is reserved by lvm2 for internal volumes"),
        ));
    }
    if vg.len() + name.len() + 3 >= 128 {
        return Err(invalid(
            ObjectKind::LogicalVolume,
            name,
            format!(
                "VG and LV names together are {} characters; lvm2 needs vg + lv + 3 < 128",
                vg.len() + name.len()
            ),
        ));
    }
    Ok(())
}

/// Splits `VG/LV` into its parts and checks both names.
pub fn split_full_name(full: &str) -> Result<(&str, &str), Error> {
    let (vg, lv) = full.split_once('/').ok_or_else(|| {
        invalid(
            ObjectKind::LogicalVolume,
            full,
            "expected VG/LV (one '/')".into(),
        )
    })?;
    validate_lv_name(vg, lv)?;
    Ok((vg, lv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_lvm_names() {
        for ok in ["vg0", "docker", "a.b+c_d-e", "x", &"a".repeat(127)] {
            validate_vg_name(ok).unwrap();
        }
        validate_lv_name("vg", "docker").unwrap();
        validate_lv_name("vg", "my_tdata_x").unwrap_err();
    }

    #[test]
    fn rejects_bad_names() {
        let bad = [
            "",
            "-rf",
            "a b",
            ".",
            "..",
            "a/b",
            "ä",
            "x;rm",
            &"a".repeat(128),
        ];
        for name in bad {
            let err = validate_vg_name(name).unwrap_err();
            assert!(
                matches!(err, Error::InvalidName { name: ref n, .. } if n == name),
                "{name:?}: {err}"
            );
        }
        for lv in ["snapshot1", "pvmove0", "x_rimage_0", "a_pmspare", "-x"] {
            assert!(validate_lv_name("vg", lv).is_err(), "{lv}");
        }
        assert!(validate_lv_name(&"v".repeat(60), &"l".repeat(65)).is_err());
        assert!(validate_lv_name(&"v".repeat(60), &"l".repeat(64)).is_ok());
    }

    #[test]
    fn splits_full_names() {
        assert_eq!(split_full_name("vg/lv").unwrap(), ("vg", "lv"));
        assert!(split_full_name("vglv").is_err());
        assert!(split_full_name("vg/-lv").is_err());
    }
}
