//! Guest trial: `provision --image-store containerd` with a **system containerd**, then the real
//! containerd 2.1 and dockerd 28 of the sid userland (testkit::userland) started on what it made.
//!
//! The environment's containerd configuration names a root under the environment; provision
//! must make subvolume `@containerd` of the LV's btrfs, mount it there (and write the unit that
//! does so at boot), and set the containerd store in daemon.json. Then containerd must load its
//! btrfs snapshotter (`ctr plugins ls`: ok), and an image imported through dockerd must land as
//! btrfs subvolumes of the LV: content store, snapshots and metadata all on the LV's
//! filesystem, nothing on the guest's root. Running provision again changes nothing.

use super::{out_text, Guest};
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::daemon::Daemon;
use testkit::ensure;
use testkit::harness::Failed;
use testkit::userland::Userland;

/// How long a daemon of the userland may take to answer in the TCG guest.
const START: Duration = Duration::from_secs(120);

fn answers(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// The filesystem id of the btrfs holding `path` (an error if it is not btrfs).
fn fsid_of(path: &Path) -> Result<uuid::Uuid, Failed> {
    Ok(btrfs_kit::Filesystem::open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .info()?
        .fsid)
}

/// A busybox-static root filesystem as a tarball, for `docker import`.
fn busybox_tarball(dir: &Path) -> Result<PathBuf, Failed> {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin"))?;
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .map_err(|e| format!("copy /bin/busybox (install busybox-static): {e}"))?;
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh"))?;
    let tarball = dir.join("rootfs.tar");
    let out = std::process::Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .output()?;
    ensure!(out.status.success(), "tar: {}", out_text(&out));
    Ok(tarball)
}

pub fn provision_with_a_system_containerd(disk: &Path) -> Result<(), Failed> {
    let userland = Userland::sid()?;
    let g = Guest::new(disk, "dockrootctd")?;
    let env = g.root().to_path_buf();
    let mp = g.mount_point();
    let ctd_root = env.join("var/lib/containerd");
    let ctd_run = env.join("run/containerd");
    let ctd_socket = ctd_run.join("containerd.sock");
    let ctd_config = env.join("etc/containerd/config.toml");
    std::fs::create_dir_all(ctd_config.parent().ok_or("parent")?)?;
    std::fs::create_dir_all(&ctd_run)?;
    std::fs::write(
        &ctd_config,
        format!(
            "version = 3\nroot = \"{}\"\nstate = \"{}\"\n[grpc]\n  address = \"{}\"\n[ttrpc]\n  address = \"{}\"\n[debug]\n  address = \"{}\"\n",
            ctd_root.display(),
            ctd_run.join("state").display(),
            ctd_socket.display(),
            ctd_run.join("containerd.sock.ttrpc").display(),
            ctd_run.join("debug.sock").display(),
        ),
    )?;
    let flags = [
        "--image-store",
        "containerd",
        "--containerd-config",
        ctd_config.to_str().ok_or("path")?,
        "--containerd-socket",
        ctd_socket.to_str().ok_or("path")?,
    ];
    let out = g.provision(&flags)?;
    ensure!(
        out.status.code() == Some(0),
        "provision: {}",
        out_text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "@containerd",
        "containerd.service",
        "containerd-snapshotter",
    ] {
        ensure!(
            stdout.contains(needle),
            "the plan does not mention {needle}: {stdout}"
        );
    }

    // The subvolume, mounted on containerd's root, from the LV; the unit and drop-in.
    let table = btrfs_kit::mounts::MountTable::current()?;
    let m = table
        .at(&ctd_root)
        .ok_or("nothing mounted on containerd's root")?;
    ensure!(
        m.fstype == "btrfs" && m.root == Path::new("/@containerd"),
        "containerd's root: {m:?}"
    );
    let fsid = fsid_of(&mp)?;
    ensure!(
        fsid_of(&ctd_root)? == fsid,
        "containerd's root is another filesystem"
    );
    let unit_dir = env.join("etc/systemd/system");
    let unit = std::fs::read_to_string(
        unit_dir.join(dockroot::provision::permanent::unit_name(&ctd_root)),
    )?;
    for line in [
        format!("What=/dev/disk/by-uuid/{fsid}"),
        format!("Where={}", ctd_root.display()),
        "Options=noatime,subvol=@containerd".to_string(),
        "Before=containerd.service".to_string(),
    ] {
        ensure!(
            unit.lines().any(|l| l == line),
            "unit lacks {line:?}:\n{unit}"
        );
    }
    let dropin = std::fs::read_to_string(
        unit_dir.join("containerd.service.d/dockroot-containerd-root.conf"),
    )?;
    ensure!(
        dropin.contains(&format!("RequiresMountsFor={}", ctd_root.display())),
        "{dropin}"
    );
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(g.daemon_json())?)?;
    ensure!(
        json["storage-driver"] == "btrfs" && json["features"]["containerd-snapshotter"] == true,
        "daemon.json: {json}"
    );

    // The real containerd on that configuration loads its btrfs snapshotter.
    super::ensure_cgroups()?;
    let binds = [env.as_path()];
    let mut cmd = userland.command("/usr/bin/containerd", &binds)?;
    cmd.arg("--config").arg(&ctd_config);
    let containerd = Daemon::start(
        "containerd",
        cmd,
        &env.join("containerd.log"),
        START,
        || answers(&ctd_socket),
    )?;
    let mut ctr = userland.command("/usr/bin/ctr", &binds)?;
    let plugins = ctr
        .arg("--address")
        .arg(&ctd_socket)
        .args(["plugins", "ls"])
        .output()?;
    let plugins = String::from_utf8_lossy(&plugins.stdout);
    ensure!(
        dockroot::docker::containerd::ctr::parse_plugin_status(
            &plugins,
            "io.containerd.snapshotter.v1",
            "btrfs"
        )
        .as_deref()
            == Some("ok"),
        "containerd's btrfs snapshotter is not loaded:\n{plugins}\n{}",
        containerd.log_tail()
    );

    // dockerd 28 with the provisioned daemon.json on that containerd: an import lands on the LV.
    let exec_root = env.join("run/docker-exec");
    let socket = g.socket();
    let mut cmd = userland.command("/usr/sbin/dockerd", &binds)?;
    cmd.arg("--config-file")
        .arg(g.daemon_json())
        .arg("--data-root")
        .arg(&mp)
        .arg("--exec-root")
        .arg(&exec_root)
        .arg("--pidfile")
        .arg(g.pidfile())
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .arg("--containerd")
        .arg(&ctd_socket)
        .args(["--iptables=false", "--bridge=none"])
        .args(["--exec-opt", "native.cgroupdriver=cgroupfs"]);
    let dockerd = Daemon::start("dockerd", cmd, &env.join("dockerd.log"), START, || {
        dockroot::docker::Engine::new(&socket).ping()
    })?;
    let info = dockroot::docker::Engine::new(&socket).info()?;
    ensure!(
        info.driver == "btrfs" && info.uses_containerd_snapshotter(),
        "dockerd 28 runs {} {:?}",
        info.driver,
        info.driver_status
    );
    ensure!(
        info.containerd.as_ref().map(|c| c.address.as_path()) == Some(ctd_socket.as_path()),
        "dockerd uses containerd {:?}",
        info.containerd
    );
    let tarball = busybox_tarball(&env)?;
    let mut docker = userland.command("/usr/bin/docker", &binds)?;
    let out = docker
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .env("DOCKER_CONFIG", env.join("client"))
        .arg("import")
        .arg(&tarball)
        .arg("dockroot-vm:1")
        .output()?;
    ensure!(
        out.status.success(),
        "docker import: {}\n{}",
        out_text(&out),
        dockerd.log_tail()
    );
    let snapshots = ctd_root.join("io.containerd.snapshotter.v1.btrfs/snapshots");
    let layers: Vec<PathBuf> = std::fs::read_dir(&snapshots)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    ensure!(
        !layers.is_empty(),
        "no snapshot under {}",
        snapshots.display()
    );
    for layer in &layers {
        let info = btrfs_kit::subvolume::info(layer)
            .map_err(|e| format!("{} is not a subvolume: {e}", layer.display()))?;
        ensure!(info.id > 256, "{}: {info:?}", layer.display());
        ensure!(fsid_of(layer)? == fsid, "{} is off the LV", layer.display());
    }
    let blobs = ctd_root.join("io.containerd.content.v1.content/blobs/sha256");
    ensure!(
        std::fs::read_dir(&blobs)?.next().is_some() && fsid_of(&blobs)? == fsid,
        "the content store {} is empty or off the LV",
        blobs.display()
    );
    drop(dockerd);
    drop(containerd);

    // Again: nothing to do.
    let again = g.provision(&flags)?;
    ensure!(
        again.status.code() == Some(0)
            && String::from_utf8_lossy(&again.stdout).contains("nothing to do"),
        "second run: {}",
        out_text(&again)
    );
    Ok(())
}
