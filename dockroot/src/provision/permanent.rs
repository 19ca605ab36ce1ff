//! Making the mount permanent: a systemd `.mount` unit keyed by the filesystem UUID (plus a
//! drop-in that makes docker.service wait for it), or an fstab line.

use std::path::{Component, Path, PathBuf};
use uuid::Uuid;

/// The characters a mount point may hold: enough for any sane path, nothing that needs
/// quoting in a unit file or fstab (no spaces, `%`, `\`, quotes, commas or newlines).
pub fn check_mount_point(path: &Path) -> Result<(), String> {
    let text = path
        .to_str()
        .ok_or_else(|| format!("mount point {path:?} is not UTF-8"))?;
    if !path.is_absolute() {
        return Err(format!("mount point {text:?} must be an absolute path"));
    }
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        || text.contains("//")
        || (text.len() > 1 && text.ends_with('/'))
    {
        return Err(format!(
            "mount point {text:?} must be a plain path (no `.`, `..`, `//` or trailing `/`)"
        ));
    }
    if text == "/" {
        return Err("the mount point cannot be `/`".into());
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/._-+@:".contains(*c)))
    {
        return Err(format!(
            "mount point {text:?} holds {bad:?}: use letters, digits and / . _ - + @ : only (it goes into a unit file and fstab unquoted)"
        ));
    }
    Ok(())
}

/// Mount options: comma-separated words of letters, digits, `_`, `=`, `.`, `-`, `:`, `/`.
/// Anything else (spaces, newlines, quotes, empty words) could smuggle options or lines into
/// fstab or a unit file.
pub fn check_mount_options(options: &str) -> Result<(), String> {
    if options.is_empty() {
        return Err("mount options must not be empty (use noatime)".into());
    }
    for word in options.split(',') {
        if word.is_empty()
            || !word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_=.-:/".contains(c))
        {
            return Err(format!(
                "mount option {word:?} (in {options:?}) is not a plain word: use comma-separated options such as noatime,compress=zstd:1"
            ));
        }
    }
    Ok(())
}

/// `systemd-escape --path`: `/var/lib/docker` → `var-lib-docker` ([`crate::units::escape_path`];
/// a path with `..`, which [`check_mount_point`] refuses first, is escaped as it stands).
pub fn escape_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    crate::units::escape_path(&text)
        .unwrap_or_else(|_| crate::units::escape(text.trim_matches('/')))
}

/// The mount unit's file name for `mount_point`, e.g. `var-lib-docker.mount`.
pub fn unit_name(mount_point: &Path) -> String {
    format!("{}.mount", escape_path(mount_point))
}

/// The device path systemd and fstab name the filesystem by.
pub fn by_uuid(fsid: Uuid) -> String {
    format!("/dev/disk/by-uuid/{fsid}")
}

/// Which daemon a mount serves: the service that must wait for it, and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Holder {
    /// Docker's data root, for docker.service.
    DockerDataRoot,
    /// A system containerd's root (the containerd image store's content and snapshots), for
    /// containerd.service.
    ContainerdRoot,
}

impl Holder {
    /// The systemd service that must not start before the mount.
    pub fn service(self) -> &'static str {
        match self {
            Holder::DockerDataRoot => "docker.service",
            Holder::ContainerdRoot => "containerd.service",
        }
    }

    /// What the mount holds, in words.
    pub fn what(self) -> &'static str {
        match self {
            Holder::DockerDataRoot => "Docker data root",
            Holder::ContainerdRoot => "containerd root (image store)",
        }
    }

    /// The unit file's comment line (the data root's text is what earlier versions wrote, so
    /// their units are recognised as ours).
    fn comment(self) -> &'static str {
        match self {
            Holder::DockerDataRoot => "Docker's data root on its own btrfs filesystem",
            Holder::ContainerdRoot => {
                "containerd's root on the btrfs filesystem of Docker's data root"
            }
        }
    }

    /// The drop-in's comment line, likewise.
    fn dropin_comment(self) -> &'static str {
        match self {
            Holder::DockerDataRoot => "start Docker only once its data root is mounted",
            Holder::ContainerdRoot => "start containerd only once its root is mounted",
        }
    }

    fn dropin_name(self) -> &'static str {
        match self {
            Holder::DockerDataRoot => "dockroot-data-root.conf",
            Holder::ContainerdRoot => "dockroot-containerd-root.conf",
        }
    }
}

/// The mount unit of Docker's data root.
pub fn render_unit(fsid: Uuid, mount_point: &Path, options: &str) -> String {
    render_unit_for(Holder::DockerDataRoot, fsid, mount_point, options)
}

/// The mount unit of what `holder` keeps on the filesystem.
pub fn render_unit_for(holder: Holder, fsid: Uuid, mount_point: &Path, options: &str) -> String {
    format!(
        "# Written by dockroot provision: {}.\n\
[Unit]\n\
Description={} on btrfs ({fsid})\n\
Before={}\n\
\n\
[Mount]\n\
What={}\n\
Where={}\n\
Type=btrfs\n\
Options={options}\n\
\n\
[Install]\n\
WantedBy=local-fs.target\n",
        holder.comment(),
        holder.what(),
        holder.service(),
        by_uuid(fsid),
        mount_point.display()
    )
}

/// The drop-in for docker.service: never start on the bare directory, which would write
/// Docker's data into the root filesystem under the mount point.
pub fn render_docker_dropin(mount_point: &Path) -> String {
    render_dropin(Holder::DockerDataRoot, mount_point)
}

/// The drop-in that makes `holder`'s service wait for its mount.
pub fn render_dropin(holder: Holder, mount_point: &Path) -> String {
    format!(
        "# Written by dockroot provision: {}.\n\
[Unit]\n\
RequiresMountsFor={}\n",
        holder.dropin_comment(),
        mount_point.display()
    )
}

/// Where the docker.service drop-in goes.
pub fn docker_dropin_path(unit_dir: &Path) -> PathBuf {
    dropin_path(Holder::DockerDataRoot, unit_dir)
}

/// Where `holder`'s drop-in goes.
pub fn dropin_path(holder: Holder, unit_dir: &Path) -> PathBuf {
    unit_dir
        .join(format!("{}.d", holder.service()))
        .join(holder.dropin_name())
}

/// The `local-fs.target.wants` link `systemctl enable` would make, and what it points to.
pub fn wants_link(unit_dir: &Path, mount_point: &Path) -> (PathBuf, PathBuf) {
    let name = unit_name(mount_point);
    (
        unit_dir.join("local-fs.target.wants").join(&name),
        PathBuf::from("..").join(name),
    )
}

/// The fstab line.
pub fn fstab_line(fsid: Uuid, mount_point: &Path, options: &str) -> String {
    format!("UUID={fsid} {} btrfs {options} 0 0", mount_point.display())
}

/// What an fstab already says about `mount_point`: the first line that mounts something there.
pub fn fstab_entry(fstab: &str, mount_point: &Path) -> Option<String> {
    fstab
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find(|l| l.split_whitespace().nth(1) == mount_point.to_str())
        .map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_systemd() {
        assert_eq!(escape_path(Path::new("/var/lib/docker")), "var-lib-docker");
        assert_eq!(
            unit_name(Path::new("/srv/docker-data")),
            "srv-docker\\x2ddata.mount"
        );
        assert_eq!(escape_path(Path::new("/.hidden/x")), "\\x2ehidden-x");
        assert_eq!(escape_path(Path::new("/a+b")), "a\\x2bb");
        assert_eq!(escape_path(Path::new("/")), "-");
    }

    #[test]
    fn refuses_paths_and_options_that_could_inject() {
        assert!(check_mount_point(Path::new("/var/lib/docker")).is_ok());
        for bad in [
            "var/lib", "/", "/a/../b", "/a b", "/a\nb", "/a,b", "/a%b", "/a/", "/a//b",
        ] {
            assert!(check_mount_point(Path::new(bad)).is_err(), "{bad:?}");
        }
        assert!(check_mount_options("noatime").is_ok());
        assert!(check_mount_options("noatime,compress=zstd:1").is_ok());
        for bad in [
            "",
            "noatime,",
            ",ro",
            "noatime 0 0\n/dev/sda / ext4",
            "a\"b",
            "user_subvol_rm_allowed x",
        ] {
            assert!(check_mount_options(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn renders_the_unit_and_finds_fstab_entries() {
        let id = Uuid::from_u128(0x1234);
        let unit = render_unit(id, Path::new("/var/lib/docker"), "noatime");
        assert!(unit.contains("What=/dev/disk/by-uuid/00000000-0000-0000-0000-000000001234\n"));
        assert!(unit.contains("Where=/var/lib/docker\nType=btrfs\nOptions=noatime\n"));
        assert!(unit.contains("WantedBy=local-fs.target"));
        let fstab = "# /var/lib/docker here is a comment\nUUID=x / ext4 defaults 0 1\nUUID=y /var/lib/docker btrfs noatime 0 0\n";
        assert_eq!(
            fstab_entry(fstab, Path::new("/var/lib/docker")).as_deref(),
            Some("UUID=y /var/lib/docker btrfs noatime 0 0")
        );
        assert_eq!(fstab_entry(fstab, Path::new("/srv")), None);
        assert_eq!(
            fstab_line(id, Path::new("/var/lib/docker"), "noatime"),
            "UUID=00000000-0000-0000-0000-000000001234 /var/lib/docker btrfs noatime 0 0"
        );
    }
}
