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

/// The LV forms lvm2's tools accept, for error messages.
const LV_FORMS: &str =
    "expected VG/LV, /dev/VG/LV or /dev/mapper/VG-LV (with '-' in names doubled)";

/// Reads an LV given the ways lvm2's commands accept one: `VG/LV`, `/dev/VG/LV`, or the
/// device-mapper name `/dev/mapper/VG-LV`, where a `-` inside a name is written `--` (lvm2's
/// `skip_dev_dir` and libdevmapper's `dm_split_lvm_name`). Returns `(VG, LV)`, both checked.
/// Repeated slashes are tolerated as lvm2 tolerates them; a device-mapper name with a layer
/// suffix (`VG-pool-tpool`, an LV's internal part) is refused.
pub fn parse_lv_name(text: &str) -> Result<(String, String), Error> {
    let refuse = |reason: String| invalid(ObjectKind::LogicalVolume, text, reason);
    let under_dev = text
        .strip_prefix('/')
        .map(|t| t.trim_start_matches('/'))
        .and_then(|t| t.strip_prefix("dev/"))
        .map(|t| t.trim_start_matches('/'));
    let relative = match under_dev {
        None if text.starts_with('/') => {
            return Err(refuse(format!("{text:?} is not under /dev; {LV_FORMS}")))
        }
        None => text,
        Some(rest) => match rest.strip_prefix("mapper/") {
            Some(dm_name) => {
                let (vg, lv, layer) = split_dm_name(dm_name.trim_start_matches('/'));
                if !layer.is_empty() {
                    return Err(refuse(format!(
                        "the device-mapper name has the layer {layer:?}: it is an internal part of LV {vg}/{lv}; name the LV itself"
                    )));
                }
                if lv.is_empty() {
                    return Err(refuse(format!(
                        "no LV name after the VG {vg:?}; {LV_FORMS}"
                    )));
                }
                validate_lv_name(&vg, &lv)?;
                return Ok((vg, lv));
            }
            None => rest,
        },
    };
    let (vg, lv) = relative
        .split_once('/')
        .filter(|(_, lv)| !lv.contains('/'))
        .ok_or_else(|| refuse(LV_FORMS.into()))?;
    validate_lv_name(vg, lv)?;
    Ok((vg.to_owned(), lv.to_owned()))
}

/// Splits a device-mapper name `VG-LV-LAYER` at single dashes, turning `--` back into `-`.
/// As in libdevmapper, a dash that ends the name is part of it.
fn split_dm_name(name: &str) -> (String, String, String) {
    fn component(text: &str) -> (String, &str) {
        let mut out = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '-' {
                match chars.peek() {
                    Some((_, '-')) => {
                        chars.next();
                    }
                    Some(_) => return (out, &text[i + 1..]),
                    None => {}
                }
            }
            out.push(c);
        }
        (out, "")
    }
    let (vg, rest) = component(name);
    let (lv, rest) = component(rest);
    let (layer, _) = component(rest);
    (vg, lv, layer)
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
    fn reads_the_lv_forms_lvm2_accepts() {
        let ok = |text: &str| {
            let (vg, lv) = parse_lv_name(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            format!("{vg}/{lv}")
        };
        // The real-lvm2 check is tests/lvm_cli/main.rs (cli::example_accepts_lvm2_lv_paths).
        assert_eq!(ok("vg/lv"), "vg/lv");
        assert_eq!(ok("/dev/vg/lv"), "vg/lv");
        assert_eq!(ok("//dev//vg/lv"), "vg/lv");
        assert_eq!(ok("/dev/mapper/vg-lv"), "vg/lv");
        assert_eq!(ok("/dev/mapper/my--vg-my--lv"), "my-vg/my-lv");
        assert_eq!(ok("/dev/mapper/a---b--c"), "a-/b-c");
        assert_eq!(ok("/dev/mapper/a-b--"), "a/b-");
        for bad in [
            "vglv",
            "vg/-lv",
            "/dev/vglv",
            "/dev/vg/lv/x",
            "/tmp/vg/lv",
            "/dev/mapper/vglv",
            "/dev/mapper/vg-pool-tpool",
            "/dev/mapper/vg-",
            "/dev//lv",
            "/dev/vg/-rf",
        ] {
            let e = parse_lv_name(bad).expect_err(bad);
            assert!(matches!(e, Error::InvalidName { .. }), "{bad}: {e}");
        }
        let e = parse_lv_name("/dev/mapper/vg-pool-tpool")
            .unwrap_err()
            .to_string();
        assert!(e.contains("internal part"), "{e}");
        let e = parse_lv_name("/tmp/x").unwrap_err().to_string();
        assert!(e.contains("/dev/mapper/VG-LV"), "{e}");
    }
}
