//! `dockroot provision` end to end on real device-mapper, in the QEMU guest of
//! `.ci/lvm-vm.sh` (this machine has no device-mapper).
//!
//! On the host this is one root test, `provision_vm::in_qemu`: it boots the guest with a 4 GiB
//! scratch disk and runs this same test binary inside (the dockroot binary built on the host
//! is visible there over the read-only 9p root). Inside, `LVM_KIT_VM_DISK` names the disk and
//! the guest trials run, one after another, each on its own VG:
//!
//! * a VG on the disk → provision → the mount is there with `noatime`, the unit, its wants
//!   link, the docker.service drop-in and daemon.json are right (other keys kept, a backup of
//!   the old file); a real dockerd started with that daemon.json runs btrfs there; `doctor`
//!   judges every check it can ok; data written survives an unmount and a mount of the device
//!   the unit names by UUID; running provision again changes nothing;
//! * each refusal (a non-empty mount point, a running dockerd, a name that would inject
//!   options, too little space in the VG) leaves the LVs, the files and the mounts untouched;
//! * a step that fails part-way (mount options the kernel rejects) names what was done and how
//!   to undo it, and running again continues from there;
//! * `--image-store containerd` with a system containerd: its root becomes subvolume
//!   `@containerd` of the LV's btrfs, and the real containerd 2.1 and dockerd 28 of the sid
//!   userland keep an imported image's content and snapshots there (`provision/containerd.rs`).
//!
//! The host test keeps the guest's provision → doctor transcript in
//! `target/tmp/provision-vm-transcript.txt`.

#[path = "provision/containerd.rs"]
mod containerd;
#[path = "support/dockerd.rs"]
#[allow(dead_code)]
mod dockerd;
#[path = "support/env_paths.rs"]
mod env_paths;
#[path = "support/scratch_vg.rs"]
mod scratch_vg;

use env_paths::EnvPaths;
use lvm_kit::LvmBackend;
use scratch_vg::{out_text, ScratchVg};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use testkit::ensure;
use testkit::harness::{ctx, Failed};

fn dockroot() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dockroot"))
}

/// A VG on the guest's disk with a private environment for the tool ([`EnvPaths`] in the
/// VG's directory); everything removed on drop. Its paths are the environment's (`Deref`).
struct Guest {
    scratch: ScratchVg,
    env: EnvPaths,
}

impl std::ops::Deref for Guest {
    type Target = EnvPaths;

    fn deref(&self) -> &EnvPaths {
        &self.env
    }
}

impl Guest {
    fn new(disk: &Path, vg: &str) -> Result<Guest, Failed> {
        let scratch = ScratchVg::new(disk, vg, "dockroot-vm-")?;
        let env = EnvPaths::prepare(scratch.root())?;
        Ok(Guest { scratch, env })
    }

    fn mount_point(&self) -> PathBuf {
        self.root().join("var/lib/docker")
    }

    /// `dockroot ARGS` pointed at this environment and confined to the disk.
    fn run(&self, args: &[&str]) -> Result<Output, Failed> {
        Ok(Command::new(dockroot())
            .args(self.env.args())
            .arg("--devices")
            .arg(&self.scratch.disk)
            .args(args)
            .stdin(Stdio::null())
            .output()?)
    }

    /// `provision --vg VG --size 2g --mount MP EXTRA`; a flag in `extra` replaces the default.
    fn provision(&self, extra: &[&str]) -> Result<Output, Failed> {
        let mp = self.mount_point();
        let mp = mp.to_str().ok_or("path")?;
        let mut args = vec!["provision"];
        for (flag, value) in [
            ("--vg", self.scratch.vg.as_str()),
            ("--size", "2g"),
            ("--mount", mp),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Everything a refusal must leave alone: the VG's LVs, every file under the environment
    /// (content and modification time), and the mounts under it.
    fn state(&self) -> Result<State, Failed> {
        let report = ctx("report", self.scratch.lvm.report())?;
        let lvs = report
            .lvs
            .iter()
            .filter(|l| l.vg_name == self.scratch.vg)
            .map(|l| (l.name.clone(), l.size.get(), l.active))
            .collect();
        let mut files = BTreeMap::new();
        walk(self.root(), &mut files)?;
        let mounts = btrfs_kit::mounts::MountTable::current()?
            .mounts
            .into_iter()
            .filter(|m| m.mount_point.starts_with(self.root()))
            .map(|m| m.mount_point)
            .collect();
        Ok(State { lvs, files, mounts })
    }
}

fn walk(
    dir: &Path,
    out: &mut BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)>,
) -> Result<(), Failed> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let meta = std::fs::symlink_metadata(e.path())?;
        if meta.is_dir() {
            out.insert(e.path(), (Vec::new(), meta.modified()?));
            walk(&e.path(), out)?;
        } else if meta.is_symlink() {
            let target = std::fs::read_link(e.path())?;
            out.insert(
                e.path(),
                (
                    target.into_os_string().into_encoded_bytes(),
                    meta.modified()?,
                ),
            );
        } else if meta.is_file() {
            out.insert(e.path(), (std::fs::read(e.path())?, meta.modified()?));
        }
    }
    Ok(())
}

#[derive(Debug, PartialEq)]
struct State {
    lvs: Vec<(String, u64, bool)>,
    files: BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)>,
    mounts: Vec<PathBuf>,
}

/// Deterministic data to write and check.
fn pattern(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// dockerd needs a cgroup hierarchy; the guest has none mounted.
fn ensure_cgroups() -> Result<(), Failed> {
    let table = btrfs_kit::mounts::MountTable::current()?;
    if table.at(Path::new("/sys/fs/cgroup")).is_none() {
        nix::mount::mount(
            Some("cgroup2"),
            "/sys/fs/cgroup",
            Some("cgroup2"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )?;
    }
    Ok(())
}

fn provision_end_to_end_and_again(disk: &Path) -> Result<(), Failed> {
    let g = Guest::new(disk, "dockrootvm")?;
    let mp = g.mount_point();
    // The trust key dockerd 20.10 writes goes to the environment, not the guest's /etc.
    let old_json = format!(
        r#"{{"log-level": "warn", "storage-driver": "overlay2", "deprecated-key-path": "{}"}}"#,
        g.root().join("key.json").display()
    );
    std::fs::write(g.daemon_json(), &old_json)?;
    let mut transcript = String::new();
    let mut record = |cmd: &str, out: &Output| {
        transcript.push_str(&format!(
            "# dockroot {cmd}\n{}{}(exit {})\n\n",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            out.status.code().unwrap_or(-1)
        ));
    };

    let dry = g.provision(&["--dry-run"])?;
    ensure!(dry.status.code() == Some(0), "dry run: {}", out_text(&dry));
    ensure!(!mp.exists(), "the dry run created the mount point");
    ensure!(g.state()?.lvs.is_empty(), "the dry run created an LV");

    let out = g.provision(&[])?;
    record(
        &format!(
            "provision --vg {} --size 2g --mount {}",
            g.scratch.vg,
            mp.display()
        ),
        &out,
    );
    ensure!(
        out.status.code() == Some(0),
        "provision: {}",
        out_text(&out)
    );

    // The mount, with noatime, of the LV.
    let table = btrfs_kit::mounts::MountTable::current()?;
    let m = table.at(&mp).ok_or("nothing mounted on the mount point")?;
    let lv = ctx("lv", g.scratch.lvm.lv(&g.scratch.vg, "docker"))?;
    ensure!(
        m.fstype == "btrfs" && m.options.iter().any(|o| o == "noatime"),
        "{m:?}"
    );
    ensure!(
        Path::new(&m.source).canonicalize()? == lv.path.canonicalize()?,
        "mounted {} instead of {}",
        m.source.display(),
        lv.path.display(),
    );
    let info = btrfs_kit::Filesystem::open(&mp)?.info()?;
    ensure!(info.label == "docker", "label {:?}", info.label);

    // The unit, keyed by the UUID; its wants link; the drop-in.
    let unit = std::fs::read_to_string(g.unit_dir().join(format!(
        "{}.mount",
        dockroot::provision::permanent::escape_path(&mp)
    )))?;
    for line in [
        format!("What=/dev/disk/by-uuid/{}", info.fsid),
        format!("Where={}", mp.display()),
        "Type=btrfs".into(),
        "Options=noatime".into(),
        "WantedBy=local-fs.target".into(),
        "Before=docker.service".into(),
    ] {
        ensure!(
            unit.lines().any(|l| l == line),
            "unit lacks {line:?}:\n{unit}"
        );
    }
    let (wants, target) = dockroot::provision::permanent::wants_link(&g.unit_dir(), &mp);
    ensure!(std::fs::read_link(&wants)? == target, "wants link");
    ensure!(
        wants.parent().ok_or("parent")?.join(&target).exists(),
        "the wants link dangles"
    );
    let dropin = std::fs::read_to_string(dockroot::provision::permanent::docker_dropin_path(
        &g.unit_dir(),
    ))?;
    ensure!(
        dropin.contains(&format!("RequiresMountsFor={}", mp.display())),
        "{dropin}"
    );

    // daemon.json: btrfs, the other keys in their order, a backup of the old file.
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(g.daemon_json())?)?;
    let keys: Vec<&str> = json.keys().map(String::as_str).collect();
    ensure!(
        keys == ["log-level", "storage-driver", "deprecated-key-path"],
        "{keys:?}"
    );
    ensure!(
        json["storage-driver"] == "btrfs" && json["log-level"] == "warn",
        "{json:?}"
    );
    let backups: Vec<PathBuf> = std::fs::read_dir(g.root().join("etc/docker"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("daemon.json.dockroot-backup-"))
        .collect();
    ensure!(backups.len() == 1, "backups {backups:?}");
    ensure!(
        std::fs::read_to_string(&backups[0])? == old_json,
        "the backup differs"
    );

    // Docker restarted with that daemon.json runs btrfs on the new filesystem, and the
    // doctor judges every check it can ok.
    ensure_cgroups()?;
    {
        let daemon = dockerd::Dockerd::start_with(
            &mp,
            None,
            Some(&g.daemon_json()),
            &g.socket(),
            &g.pidfile(),
        )?;
        let out = g.run(&["doctor", mp.to_str().ok_or("path")?])?;
        record(&format!("doctor {}", mp.display()), &out);
        let json_out = g.run(&["doctor", mp.to_str().ok_or("path")?, "--json"])?;
        let report: serde_json::Value = serde_json::from_slice(&json_out.stdout)?;
        // The guest runs Debian 12's 6.1 kernel, which lacks fixes of the kernel table.
        let kernel = dockroot::kernel::check().status.to_string();
        for c in report["checks"].as_array().ok_or("no checks")? {
            let (id, status) = (
                c["id"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or(""),
            );
            let expected = if id == "kernel" {
                kernel.as_str()
            } else {
                "ok"
            };
            ensure!(
                status == expected,
                "{id}: {status}: {}\n{}",
                c["summary"],
                daemon.log()
            );
        }
        let summary = report["checks"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["id"] == "lvm.vg-free"))
            .map(|c| c["summary"].to_string())
            .unwrap_or_default();
        ensure!(
            summary.contains(&g.scratch.vg),
            "lvm.vg-free does not name the VG: {summary}"
        );
        let out = g.run(&["check", mp.to_str().ok_or("path")?])?;
        record(&format!("check {}", mp.display()), &out);
        ensure!(out.status.code() == Some(0), "check: {}", out_text(&out));
        drop(daemon);
    }

    // An lvextend without a filesystem resize, and a VG with less room than wanted: the two
    // LVM checks warn.
    let extended = ctx(
        "lvextend",
        g.scratch.lvm.lv_extend(
            &g.scratch.vg,
            "docker",
            lvm_kit::NewSize::Add(lvm_kit::Bytes::mib(512)),
        ),
    )?;
    std::fs::write(
        g.root().join("dockroot.toml"),
        "[thresholds]\nvg_free_warn = \"2g\"\n",
    )?;
    let json_out = g.run(&["doctor", mp.to_str().ok_or("path")?, "--json"])?;
    let report: serde_json::Value = serde_json::from_slice(&json_out.stdout)?;
    let status_of = |id: &str| {
        report["checks"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["id"] == id))
            .map(|c| (c["status"].to_string(), c["summary"].to_string()))
            .unwrap_or_default()
    };
    let (fills, fills_text) = status_of("lvm.fs-fills-lv");
    ensure!(
        fills == "\"warning\"" && fills_text.contains("512.00 MiB unused"),
        "{fills}: {fills_text} (LV {})",
        extended.size,
    );
    let (free, free_text) = status_of("lvm.vg-free");
    ensure!(free == "\"warning\"", "{free}: {free_text}");
    std::fs::write(g.root().join("dockroot.toml"), "")?;
    btrfs_kit::Filesystem::open(&mp)?.resize(1, btrfs_kit::ResizeTarget::Max)?;
    let json_out = g.run(&["doctor", mp.to_str().ok_or("path")?, "--json"])?;
    let report: serde_json::Value = serde_json::from_slice(&json_out.stdout)?;
    let fills = report["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == "lvm.fs-fills-lv"))
        .map(|c| c["status"].to_string())
        .unwrap_or_default();
    ensure!(fills == "\"ok\"", "after resize max: {fills}");

    // Data survives an unmount and a mount of the device the unit names by UUID.
    let data = pattern(8 << 20);
    std::fs::write(mp.join("survivor"), &data)?;
    btrfs_kit::Filesystem::open(&mp)?.sync()?;
    nix::mount::umount2(&mp, nix::mount::MntFlags::empty())?;
    let by_uuid = match btrfs_kit::mkfs::probe(&lv.path)? {
        btrfs_kit::mkfs::Probe::Btrfs { fsid, .. } if fsid == info.fsid => lv.path.clone(),
        other => return Err(format!("the LV does not hold the unit's UUID: {other:?}").into()),
    };
    nix::mount::mount(
        Some(&by_uuid),
        &mp,
        Some("btrfs"),
        nix::mount::MsFlags::MS_NOATIME,
        None::<&str>,
    )?;
    ensure!(
        std::fs::read(mp.join("survivor"))? == data,
        "data lost across the remount"
    );

    // Again: nothing to do, nothing changed.
    let before = g.state()?;
    let again = g.provision(&[])?;
    record("provision (again)", &again);
    ensure!(
        again.status.code() == Some(0),
        "second run: {}",
        out_text(&again)
    );
    ensure!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to do"),
        "second run: {}",
        out_text(&again),
    );
    ensure!(g.state()? == before, "the second run changed something");
    testkit::vm::print_transcript(&transcript);
    Ok(())
}

/// Runs `provision` with `extra` and checks it refused (exit 4, the reason and the way out)
/// and changed nothing.
fn refused(g: &Guest, extra: &[&str], reason: &str) -> Result<(), Failed> {
    let before = g.state()?;
    let out = g.provision(extra)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(4) && stderr.contains(reason) && stderr.contains("way out:"),
        "{extra:?}: expected a refusal naming {reason:?}: {}",
        out_text(&out),
    );
    ensure!(
        g.state()? == before,
        "{extra:?}: the refusal changed something"
    );
    Ok(())
}

fn each_refusal_changes_nothing(disk: &Path) -> Result<(), Failed> {
    let g = Guest::new(disk, "dockrootref")?;
    std::fs::write(g.daemon_json(), r#"{"storage-driver": "overlay2"}"#)?;
    refused(&g, &["--size", "100g"], "free")?;
    refused(&g, &["--lv", "docker,ro"], "docker,ro")?;
    refused(&g, &["--mount-options", "noatime,x\ny"], "mount option")?;
    refused(&g, &["--vg", "nosuchvg"], "no volume group")?;
    // Existing Docker data where the mount would go.
    std::fs::create_dir_all(g.mount_point().join("overlay2"))?;
    std::fs::write(g.mount_point().join("engine-id"), "x")?;
    refused(&g, &[], "not empty")?;
    std::fs::remove_dir_all(g.mount_point())?;
    // A running Docker daemon.
    ensure_cgroups()?;
    let elsewhere = g.root().join("elsewhere");
    std::fs::create_dir_all(&elsewhere)?;
    let daemon = dockerd::Dockerd::start(&elsewhere, "vfs", &g.socket(), &g.pidfile())?;
    refused(&g, &[], "Docker is running")?;
    drop(daemon);
    Ok(())
}

fn a_failed_step_says_what_was_done_and_a_rerun_continues(disk: &Path) -> Result<(), Failed> {
    let g = Guest::new(disk, "dockrootfail")?;
    // The kernel refuses this btrfs option at mount time, after the LV, mkfs and mkdir.
    let out = g.provision(&["--mount-options", "noatime,nosuchoption"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.code() == Some(1), "{}", out_text(&out));
    for needle in [
        "failed",
        "mount",
        "lvremove",
        "wipefs",
        "rmdir",
        "run provision again",
    ] {
        ensure!(stderr.contains(needle), "no {needle:?} in: {stderr}");
    }
    ensure!(
        g.scratch.lvm.lv(&g.scratch.vg, "docker").is_ok(),
        "the LV is gone"
    );
    // The second run finds the LV, the filesystem and the directory done, and finishes.
    let out = g.provision(&[])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.code() == Some(0), "{}", out_text(&out));
    ensure!(
        // LV, activation, filesystem, directory; and the image store step, which the graph
        // driver's daemon.json (storage-driver btrfs, no feature key) leaves done.
        stdout.matches("[done ]").count() == 5
            && stdout.contains("holds btrfs")
            && stdout.contains("selects the btrfs graph driver"),
        "the rerun did not continue: {stdout}",
    );
    ensure!(
        btrfs_kit::mounts::MountTable::current()?
            .at(&g.mount_point())
            .is_some(),
        "not mounted after the rerun",
    );
    Ok(())
}

const GUEST_TESTS: [(&str, testkit::vm::GuestTest); 4] = [
    (
        "provision_vm::guest::provision_end_to_end_and_again",
        provision_end_to_end_and_again,
    ),
    (
        "provision_vm::guest::each_refusal_changes_nothing",
        each_refusal_changes_nothing,
    ),
    (
        "provision_vm::guest::a_failed_step_says_what_was_done_and_a_rerun_continues",
        a_failed_step_says_what_was_done_and_a_rerun_continues,
    ),
    (
        "provision_vm::guest::provision_with_a_system_containerd",
        containerd::provision_with_a_system_containerd,
    ),
];

fn main() {
    testkit::vm::guest_tier_main(testkit::vm::GuestTier {
        host_trial: "provision_vm::in_qemu",
        workspace: Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        disk_size: Some("4G"),
        guest_trials: testkit::vm::guest_table(&GUEST_TESTS),
        transcript: Some(
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("provision-vm-transcript.txt"),
        ),
    })
}
