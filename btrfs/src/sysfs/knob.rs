//! One sysfs file: read (absent → `None`), parsed, written.

use crate::error::{Error, ErrorKind, Result};
use rustix::io::Errno;
use std::io::Write;
use std::path::PathBuf;

/// A sysfs attribute file.
pub(crate) struct Knob {
    path: PathBuf,
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw_os_error(e.raw_os_error().unwrap_or(Errno::IO.raw_os_error()))
}

impl Knob {
    pub fn new(path: PathBuf) -> Self {
        Knob { path }
    }

    /// The file's text, `None` when it does not exist (the running kernel lacks the knob).
    pub fn read(&self) -> Result<Option<String>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::from_errno("read sysfs", &self.path, errno_of(&e))),
        }
    }

    /// The file's text parsed with `parse` (given the trimmed text); an unparsable value is
    /// an [`ErrorKind::Decode`].
    pub fn parse<T>(&self, parse: impl FnOnce(&str) -> Option<T>) -> Result<Option<T>> {
        let Some(text) = self.read()? else {
            return Ok(None);
        };
        parse(text.trim()).map(Some).ok_or_else(|| {
            Error::new(
                "read sysfs",
                self.path.clone(),
                ErrorKind::Decode {
                    detail: format!("unexpected value {:?}", text.trim()),
                },
            )
        })
    }

    /// The file as an unsigned number.
    pub fn u64(&self) -> Result<Option<u64>> {
        self.parse(|s| s.parse().ok())
    }

    /// The file as a `0`/`1` flag.
    pub fn flag(&self) -> Result<Option<bool>> {
        self.parse(|s| match s {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        })
    }

    /// Writes a `0`/`1` flag.
    pub fn write_flag(&self, op: &'static str, on: bool, since: &'static str) -> Result<()> {
        self.write(op, if on { "1" } else { "0" }, since, "0 or 1")
    }

    /// The names in this directory, sorted; `None` when it does not exist.
    pub fn dir_names(&self) -> Result<Option<Vec<String>>> {
        let entries = match std::fs::read_dir(&self.path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::from_errno("read sysfs", &self.path, errno_of(&e))),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(Some(names))
    }

    /// Writes `value` (one write, as sysfs wants) with root's usual rights; see
    /// [`write_needing`](Self::write_needing).
    pub fn write(
        &self,
        op: &'static str,
        value: &str,
        since: &'static str,
        invalid: &'static str,
    ) -> Result<()> {
        self.write_needing(op, value, since, invalid, "root to write sysfs knobs")
    }

    /// Writes `value`. `since` names the kernel that added the knob, for the error when it is
    /// missing; `invalid` says what the kernel accepts, for EINVAL; `needs` what privilege the
    /// kernel checks, for EPERM/EACCES.
    pub fn write_needing(
        &self,
        op: &'static str,
        value: &str,
        since: &'static str,
        invalid: &'static str,
        needs: &'static str,
    ) -> Result<()> {
        let result = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(value.as_bytes()));
        let Err(e) = result else {
            return Ok(());
        };
        let path = self.path.clone();
        Err(match errno_of(&e) {
            Errno::NOENT => Error::new(op, path, ErrorKind::KernelLacks { needs: since }),
            errno @ (Errno::ACCESS | Errno::PERM) => {
                Error::new(op, path, ErrorKind::PermissionDenied { errno, needs })
            }
            Errno::INVAL => Error::new(
                op,
                path,
                ErrorKind::KernelRejected {
                    hint: Some(invalid),
                },
            ),
            errno => Error::from_errno(op, path, errno),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_read_as_absent_and_values_parse() {
        let dir = std::env::temp_dir().join(format!("btrfs-kit-knob-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("n"), "42\n").unwrap();
        std::fs::write(dir.join("f"), "1\n").unwrap();
        std::fs::write(dir.join("bad"), "x\n").unwrap();
        assert_eq!(Knob::new(dir.join("n")).u64().unwrap(), Some(42));
        assert_eq!(Knob::new(dir.join("f")).flag().unwrap(), Some(true));
        assert_eq!(Knob::new(dir.join("missing")).u64().unwrap(), None);
        assert!(matches!(
            Knob::new(dir.join("bad")).u64(),
            Err(e) if matches!(e.kind(), ErrorKind::Decode { .. })
        ));
        let err = Knob::new(dir.join("missing"))
            .write("set", "1", "Linux 6.11", "0 or 1")
            .unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::KernelLacks { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
