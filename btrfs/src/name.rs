//! Names and paths as Linux has them: bytes, not necessarily UTF-8.
//!
//! The crate's types carry them as [`PathBuf`](std::path::PathBuf) and [`OsString`](std::ffi::OsString), never as
//! lossy strings, and nothing fails on a name that is not UTF-8. Two ways to show one:
//!
//! * as text, [`escaped`]: valid UTF-8 as it is, except that a backslash is doubled and
//!   control characters are escaped (`\x0a`, `\u{85}`), and each byte that is not UTF-8 is
//!   `\xNN` — so a listing stays one line per name and two names never print alike;
//! * in JSON (feature `serde`): a field `path` (or `name`) holds the string when it is UTF-8,
//!   exactly; when it is not, the string holds the [`escaped`] form and a second field
//!   `path_bytes` (or `name_bytes`) holds the raw bytes, so the exact name is never lost.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;

/// A name shown as text: see the [module documentation](self).
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(&'a [u8]);

/// `name` shown as text, escaped (see the [module documentation](self)):
/// `escaped(OsStr::from_bytes(b"a\xffb"))` displays as `a\xffb`.
pub fn escaped(name: &OsStr) -> Escaped<'_> {
    Escaped(name.as_bytes())
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    c if c.is_control() && (c as u32) < 0x80 => write!(f, "\\x{:02x}", c as u32)?,
                    c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                    c => fmt::Write::write_char(f, c)?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

#[cfg(feature = "serde")]
mod json {
    use super::escaped;
    use serde::ser::{SerializeMap, Serializer};
    use std::ffi::{OsStr, OsString};
    use std::path::PathBuf;

    /// Writes `key` (the string, or the escaped form) and, for a name that is not UTF-8,
    /// `bytes_key` with its bytes; `None` writes `key: null`.
    fn entries<S: Serializer>(
        serializer: S,
        key: &str,
        bytes_key: &str,
        name: Option<&OsStr>,
    ) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match name.map(|n| (n, n.to_str())) {
            None => map.serialize_entry(key, &None::<&str>)?,
            Some((_, Some(text))) => map.serialize_entry(key, text)?,
            Some((name, None)) => {
                map.serialize_entry(key, &escaped(name).to_string())?;
                map.serialize_entry(bytes_key, std::os::unix::ffi::OsStrExt::as_bytes(name))?;
            }
        }
        map.end()
    }

    /// `#[serde(flatten, serialize_with = "crate::name::path_field")]` on a field `path:
    /// PathBuf`: `path`, plus `path_bytes` when it is not UTF-8.
    // serde hands `serialize_with` functions a reference to the field's own type.
    #[allow(clippy::ptr_arg)]
    pub(crate) fn path_field<S: Serializer>(path: &PathBuf, s: S) -> Result<S::Ok, S::Error> {
        entries(s, "path", "path_bytes", Some(path.as_os_str()))
    }

    /// As [`path_field`], for `path: Option<PathBuf>` (`None` is `"path": null`).
    pub(crate) fn opt_path_field<S: Serializer>(
        path: &Option<PathBuf>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        entries(
            s,
            "path",
            "path_bytes",
            path.as_deref().map(|p| p.as_os_str()),
        )
    }

    /// As [`path_field`], for `name: OsString`: `name`, plus `name_bytes` when not UTF-8.
    pub(crate) fn name_field<S: Serializer>(name: &OsString, s: S) -> Result<S::Ok, S::Error> {
        entries(s, "name", "name_bytes", Some(name))
    }
}

#[cfg(feature = "serde")]
pub(crate) use json::{name_field, opt_path_field, path_field};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_is_not_plain_text() {
        let show = |b: &[u8]| escaped(OsStr::from_bytes(b)).to_string();
        assert_eq!(show(b"docker"), "docker");
        assert_eq!(show("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(show(b"a\xffb"), "a\\xffb");
        assert_eq!(show(b"\xc3"), "\\xc3", "a truncated sequence");
        assert_eq!(show(b"two\nlines\t"), "two\\x0alines\\x09");
        assert_eq!(show("\u{85}".as_bytes()), "\\u{85}");
        // A literal backslash cannot be mistaken for an escape.
        assert_eq!(show(b"a\\xffb"), "a\\\\xffb");
        assert_ne!(show(b"a\\xffb"), show(b"a\xffb"));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn json_keeps_the_exact_bytes() {
        #[derive(serde::Serialize)]
        struct Named {
            id: u64,
            #[serde(flatten, serialize_with = "path_field")]
            path: std::path::PathBuf,
        }
        #[derive(serde::Serialize)]
        struct Maybe {
            #[serde(flatten, serialize_with = "opt_path_field")]
            path: Option<std::path::PathBuf>,
        }
        fn json(v: &impl serde::Serialize) -> serde_json::Value {
            serde_json::to_value(v).unwrap()
        }
        assert_eq!(
            json(&Named {
                id: 1,
                path: "a/b".into()
            }),
            serde_json::json!({"id": 1, "path": "a/b"})
        );
        assert_eq!(
            json(&Named {
                id: 2,
                path: OsStr::from_bytes(b"a/\xff").into()
            }),
            serde_json::json!({"id": 2, "path": "a/\\xff", "path_bytes": [97, 47, 255]})
        );
        assert_eq!(
            json(&Maybe { path: None }),
            serde_json::json!({"path": null})
        );
    }
}
