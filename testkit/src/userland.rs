//! Today's Docker without installing it: programs of a Debian sid userland (docker.io 28,
//! containerd 2.1, runc, btrfs-progs 7.x) made by `.ci/sid-userland prepare` and cached on the
//! machine, run on this kernel.
//!
//! Each [`Userland::command`] runs its program in a private mount namespace of its own
//! (`unshare --mount --propagation private`), chrooted into a read-only bind of the userland,
//! with the host's `/proc`, `/sys` and `/dev` bound in, fresh tmpfs on `/run`, `/tmp` and
//! `/var/tmp`, and the given host directories bound at the same paths (so a socket, a data root
//! or a build context has one path on both sides). Nothing it mounts is visible outside: the
//! mounts a daemon makes there (its containers' root filesystems, its network namespace) end
//! with its last process, and the cached userland is never written. `unshare` and the shell
//! `exec` into the program, so the child's pid is the program's.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming the userland's root (`tests/run.sh` sets it).
pub const ROOT_ENV: &str = "BTRFS_LVM_SID_ROOT";

/// The directories under which [`Userland::command`] can bind host paths: tmpfs in the
/// namespace, so the read-only userland gets no mount points.
const BINDABLE: &[&str] = &["/tmp", "/var/tmp", "/run"];

/// Sets up the namespace, then `exec chroot ROOT PROGRAM ARGS...`.
const ENTER: &str = r#"set -eu
root=$1; n=$2; shift 2
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount --rbind /proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount -t tmpfs -o mode=1777 tmpfs "$root/var/tmp"
while [ "$n" -gt 0 ]; do
  mkdir -p "$root$1"
  mount --rbind "$1" "$root$1"
  shift; n=$((n - 1))
done
exec chroot "$root" "$@"
"#;

/// A prepared sid userland; see the module docs.
#[derive(Debug, Clone)]
pub struct Userland {
    root: PathBuf,
}

impl Userland {
    /// The cached sid userland: `$BTRFS_LVM_SID_ROOT`, else what `.ci/sid-userland path` says.
    /// An error says how to make it.
    pub fn sid() -> Result<Self, String> {
        let root = match std::env::var_os(ROOT_ENV) {
            Some(root) => PathBuf::from(root),
            None => {
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/sid-userland");
                let out = Command::new("bash")
                    .arg(&script)
                    .arg("path")
                    .output()
                    .map_err(|e| format!("run {}: {e}", script.display()))?;
                if !out.status.success() {
                    return Err(format!(
                        "no sid userland is prepared: run `bash .ci/sid-userland prepare` as root \
                         (bash tests/run.sh does) or set {ROOT_ENV}"
                    ));
                }
                PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
            }
        };
        if !root.join(".btrfs-lvm-ready").is_file() {
            return Err(format!(
                "{} is not a prepared sid userland (no .btrfs-lvm-ready): run `bash .ci/sid-userland prepare`",
                root.display()
            ));
        }
        Ok(Userland { root })
    }

    /// The userland's root directory on the host.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The installed version of a Debian package of the userland (`dpkg-query -W` at build
    /// time), e.g. `28.5.2+dfsg4-5` for `docker.io`.
    pub fn version(&self, package: &str) -> Option<String> {
        let list = std::fs::read_to_string(self.root.join(".btrfs-lvm-versions")).ok()?;
        list.lines().find_map(|l| {
            let (name, version) = l.split_once('\t')?;
            (name == package).then(|| version.trim().to_string())
        })
    }

    /// The userland's path of a program, as seen on the host (to check it exists).
    pub fn host_path(&self, program: &str) -> PathBuf {
        self.root.join(program.trim_start_matches('/'))
    }

    /// A command running `program` (a path inside the userland) in the userland, with each of
    /// `binds` (host directories under `/tmp`, `/var/tmp` or `/run`) bound at its own path.
    /// Arguments added to the command go to `program`. Fails for a bind elsewhere.
    pub fn command(&self, program: &str, binds: &[&Path]) -> Result<Command, String> {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(ENTER)
            .arg("enter")
            .arg(&self.root)
            .arg(binds.len().to_string());
        for bind in binds {
            let bind = bind
                .canonicalize()
                .map_err(|e| format!("bind {}: {e}", bind.display()))?;
            if !BINDABLE.iter().any(|b| bind.starts_with(b)) {
                return Err(format!(
                    "{} cannot be bound into the userland: only paths under {BINDABLE:?} can",
                    bind.display()
                ));
            }
            cmd.arg(bind);
        }
        cmd.arg(program).env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
        Ok(cmd)
    }
}
