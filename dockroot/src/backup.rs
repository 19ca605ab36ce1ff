//! A backup of a configuration file before dockroot rewrites it (daemon.json, fstab), written
//! with [`opskit::write_atomically`] like every file dockroot writes.

use opskit::write_atomically;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Copies `path` to `path.dockroot-backup-SECONDS` (the current Unix time; `.N` appended if
/// that exists), atomically, and returns the backup's path.
pub fn backup(path: &Path) -> std::io::Result<PathBuf> {
    let content = std::fs::read(path)?;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let base = format!("{}.dockroot-backup-{secs}", path.display());
    let mut target = PathBuf::from(&base);
    let mut n = 1;
    while target.exists() {
        target = PathBuf::from(format!("{base}.{n}"));
        n += 1;
    }
    write_atomically(&target, &content, mode)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_keeps_mode_and_backs_up() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.json");
        write_atomically(&file, b"one", 0o600).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"one");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let saved = backup(&file).unwrap();
        let again = backup(&file).unwrap();
        assert_ne!(saved, again);
        write_atomically(&file, b"two", 0o644).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        assert_eq!(std::fs::read(&saved).unwrap(), b"one");
        // The old mode stays.
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // No temporary file is left.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }
}
