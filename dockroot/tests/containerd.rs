//! The containerd image store against today's containerd and dockerd (Debian sid's containerd
//! 2.1 and docker.io 28 from `testkit::userland`): the bbolt reader on files the real
//! containerd wrote, checked against `ctr`'s listings; the doctor on a managed containerd
//! store on our btrfs and on a system containerd whose root is not btrfs; the snapshotter's
//! orphans found and removed.

mod support;

use dockroot::docker::containerd::bolt::{BoltError, Db};
use dockroot::docker::containerd::ctr::parse_snapshots;
use dockroot::docker::containerd::meta::{self, Owner};
use dockroot::docker::containerd::snapshotter;
use std::collections::BTreeMap;
use std::path::Path;
use support::modern::{Containerd, Dockerd};
use support::{check, Env};
use testkit::ensure;
use testkit::fixture::{FsKind, Scratch};
use testkit::harness::Failed;

const MIB: u64 = 1 << 20;

fn main() {
    testkit::harness::run(testkit::harness::registered())
}

/// The path as text.
fn s(p: &Path) -> Result<&str, Failed> {
    p.to_str().ok_or_else(|| "non-UTF-8 path".into())
}

testkit::register!(prefix "containerd"; root: the_bolt_reader_agrees_with_ctr_on_files_containerd_wrote);
fn the_bolt_reader_agrees_with_ctr_on_files_containerd_wrote() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let root = scratch.path().join("containerd");
    std::fs::create_dir(&root)?;
    let mut c = Containerd::start(&root)?;
    // Every kind, parents and a chain, in two namespaces.
    for (ns, cmds) in [
        (
            "moby",
            vec![
                vec!["prepare", "a"],
                vec!["commit", "base", "a"],
                vec!["prepare", "b", "base"],
                vec!["commit", "top", "b"],
                vec!["prepare", "rw", "top"],
            ],
        ),
        ("other", vec![vec!["prepare", "lone"]]),
    ] {
        for cmd in cmds {
            let mut args = vec!["-n", ns, "snapshots", "--snapshotter", "btrfs"];
            args.extend(cmd);
            c.ctr_ok(&args)?;
        }
    }
    // Enough keys for branch pages, and a label longer than a page holds for an overflow page.
    let snap = ["-n", "moby", "snapshots", "--snapshotter", "btrfs"];
    let mut parent = "top".to_string();
    for i in 0..40 {
        let key = format!("sha256:{i:064x}");
        let tmp = format!("tmp-{i}");
        c.ctr_ok(&[&snap[..], &["prepare", &tmp, &parent]].concat())?;
        c.ctr_ok(&[&snap[..], &["commit", &key, &tmp]].concat())?;
        parent = key;
    }
    // A view last, after the commits (whose removals of the active keys run containerd's
    // garbage collector, which removed a view made earlier), kept as a GC root.
    c.ctr_ok(&[&snap[..], &["view", "ro", "base"]].concat())?;
    c.ctr_ok(&[&snap[..], &["label", "ro", "containerd.io/gc.root=test"]].concat())?;
    let long = "x".repeat(3000);
    c.ctr_ok(&[&snap[..], &["label", "top", &format!("test.long={long}")]].concat())?;
    let listing = c.ctr_ok(&[&snap[..], &["ls"]].concat())?;
    let oracle = parse_snapshots(&listing)?;
    ensure!(oracle.len() == 44, "ctr lists {listing}");
    let plugins = c.ctr_ok(&["plugins", "ls"])?;
    let snap_root = root.join("io.containerd.snapshotter.v1.btrfs");
    let meta_path = root.join("io.containerd.metadata.v1.bolt/meta.db");
    // While containerd runs it holds both files: they are not read.
    for f in [snap_root.join("metadata.db"), meta_path.clone()] {
        match Db::open(&f) {
            Err(BoltError::InUse { .. }) => {}
            other => return Err(format!("{}: {other:?} while containerd runs", f.display()).into()),
        }
    }
    c.stop();
    ensure!(
        dockroot::docker::containerd::ctr::parse_plugin_status(
            &plugins,
            "io.containerd.snapshotter.v1",
            "btrfs"
        )
        .as_deref()
            == Some("ok"),
        "{plugins}"
    );
    let db = Db::open(&meta_path)?;
    let namespaces = meta::all_namespaces(&db, "btrfs")?;
    let moby = namespaces
        .iter()
        .find(|n| n.name == "moby")
        .ok_or("no moby namespace")?;
    ensure!(
        namespaces
            .iter()
            .any(|n| n.name == "other" && n.snapshots.contains_key("lone")),
        "{namespaces:?}"
    );
    // Same keys and parents as ctr (the oracle).
    let ours: BTreeMap<&str, Option<&str>> = moby
        .snapshots
        .iter()
        .map(|(k, v)| (k.as_str(), v.parent.as_deref()))
        .collect();
    let theirs: BTreeMap<&str, Option<&str>> = oracle
        .iter()
        .map(|s| (s.key.as_str(), s.parent.as_deref()))
        .collect();
    ensure!(ours == theirs, "meta.db {ours:?} vs ctr {theirs:?}");
    let label = db
        .bucket(&[b"v1", b"moby", b"snapshots", b"btrfs", b"top", b"labels"])?
        .ok_or("no labels of top")?
        .value(b"test.long")?;
    ensure!(
        label == Some(long.as_bytes()),
        "the long label reads {:?}",
        label.map(<[u8]>::len)
    );
    // The backend's records: same kinds and parents, through meta.db's names.
    let sdb = Db::open(&snap_root.join(snapshotter::METADATA_DB))?;
    let records = snapshotter::records(&sdb)?;
    let stats = sdb.stats()?;
    ensure!(stats.branch > 0 && stats.leaf > 1, "metadata.db: {stats:?}");
    let by_name: BTreeMap<&str, &snapshotter::Record> =
        records.iter().map(|r| (r.key.as_str(), r)).collect();
    for s in &oracle {
        let name = &moby.snapshots[&s.key].name;
        let r = by_name
            .get(name.as_str())
            .ok_or(format!("no record {name}"))?;
        ensure!(r.kind == s.kind, "{name}: {:?} vs ctr {:?}", r.kind, s.kind);
        let parent_name = s.parent.as_ref().map(|p| moby.snapshots[p].name.clone());
        ensure!(
            r.parent == parent_name,
            "{name}: parent {:?} vs {parent_name:?}",
            r.parent
        );
        ensure!(
            snap_root.join(r.subvolume()).is_dir(),
            "{} missing",
            r.subvolume().display()
        );
    }
    // Ids come from the bucket's sequence: none above it.
    let seq = sdb
        .bucket(&[b"v1", b"snapshots"])?
        .ok_or("no v1/snapshots")?
        .sequence();
    ensure!(
        records.iter().all(|r| r.id <= seq) && records.len() == 45,
        "{records:?} seq {seq}"
    );
    // The layout of the real snapshotter has nothing orphaned, nothing missing.
    let (_, report) = snapshotter::analyse(&snap_root)?;
    ensure!(
        report.orphans.is_empty() && report.removing.is_empty() && report.missing.is_empty(),
        "{report:?}"
    );
    ensure!(report.subvolumes == 45, "{report:?}");
    // A damaged copy is an error naming the file and the page, never a panic.
    let bytes = std::fs::read(&meta_path)?;
    let copy = scratch.path().join("damaged.db");
    let page = sdb.page_size();
    for (what, data) in [
        (
            "truncated",
            bytes[..bytes.len().min(page * 2 + 100)].to_vec(),
        ),
        ("meta pages zeroed", {
            let mut d = bytes.clone();
            d[..page * 2].fill(0);
            d
        }),
        ("data pages scrambled", {
            let mut d = bytes.clone();
            for (i, b) in d.iter_mut().enumerate().skip(page * 2) {
                *b = (i % 251) as u8;
            }
            d
        }),
    ] {
        std::fs::write(&copy, &data)?;
        let result = Db::open(&copy).and_then(|db| meta::all_namespaces(&db, "btrfs").map(|_| ()));
        let e = result.err().ok_or(format!("{what}: read without error"))?;
        let e = e.to_string();
        ensure!(e.contains("damaged.db"), "{what}: {e}");
        ensure!(
            what != "data pages scrambled" || e.contains("page "),
            "{what}: {e}"
        );
    }
    Ok(())
}

/// Waits until the managed containerd of `data_root` (stopped with its dockerd) has released
/// its snapshotter's metadata.db.
fn wait_until_managed_containerd_released(data_root: &Path) -> Result<(), Failed> {
    let sdb = data_root.join("containerd/daemon/io.containerd.snapshotter.v1.btrfs/metadata.db");
    testkit::daemon::wait_for(
        std::time::Duration::from_secs(30),
        "containerd released metadata.db",
        || !matches!(Db::open(&sdb), Err(BoltError::InUse { .. })),
    )?;
    Ok(())
}

/// The daemon.json of the containerd image store with the btrfs snapshotter.
const CONTAINERD_STORE: &str =
    r#"{"storage-driver": "btrfs", "features": {"containerd-snapshotter": true}}"#;

/// doctor's arguments for a private dockerd.
fn doctor_args(d: &Dockerd, ctr: &Path, containerd_config: &Path) -> Result<Vec<String>, Failed> {
    Ok(vec![
        "--docker-socket".into(),
        s(&d.socket)?.into(),
        "--docker-pidfile".into(),
        s(&d.pidfile)?.into(),
        "--docker-config-dir".into(),
        s(d.dir.path())?.into(),
        "--ctr".into(),
        s(ctr)?.into(),
        "--containerd-config".into(),
        s(containerd_config)?.into(),
    ])
}

testkit::register!(prefix "containerd"; root: a_managed_containerd_store_on_our_btrfs_passes_and_its_orphans_are_removed);
fn a_managed_containerd_store_on_our_btrfs_passes_and_its_orphans_are_removed() -> Result<(), Failed>
{
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let env = Env::new()?;
    let mut d = Dockerd::start(scratch.path(), CONTAINERD_STORE, None)?;
    d.import("base:1", "base layer\n")?;
    d.import("app:1", "app layer\n")?;
    let container = d
        .docker_ok(&["create", "--name", "c1", "app:1", "/x"])?
        .trim()
        .to_string();
    let ctr = d.ctr_script()?;
    let none = env.root().join("no-system-containerd.toml");
    let args = doctor_args(&d, &ctr, &none)?;
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (report, _) = env.doctor(scratch.path(), &a)?;
    for id in [
        "docker.storage-driver.configured",
        "docker.storage-driver.running",
        "docker.image-store",
        "containerd.roots",
        "containerd.snapshotter",
        "containerd.orphans",
        "docker.orphans",
    ] {
        let (status, summary) = check(&report, id)?;
        ensure!(status == "ok", "{id}: {status} {summary}\n{}", d.log());
    }
    let (_, summary) = check(&report, "containerd.orphans")?;
    ensure!(summary.contains("needs containerd stopped"), "{summary}");
    let (_, summary) = check(&report, "containerd.roots")?;
    ensure!(summary.contains("dockerd's own containerd"), "{summary}");
    // With Docker (and its containerd) running, --fix-orphans refuses.
    let mut fix_args = a.clone();
    fix_args.push("--fix-orphans");
    let (fixed, _) = env.doctor(scratch.path(), &fix_args)?;
    let refused = fixed["fixes"]["orphans"]["refused"].as_str().unwrap_or("");
    ensure!(refused.contains("Docker is running"), "{fixed}");
    d.stop();
    wait_until_managed_containerd_released(scratch.path())?;
    // Stopped: the full check reads the snapshotter's metadata.db and meta.db.
    let sroot = scratch
        .path()
        .join("containerd/daemon/io.containerd.snapshotter.v1.btrfs");
    let (records, report) = snapshotter::analyse(&sroot)?;
    ensure!(
        report.orphans.is_empty() && report.missing.is_empty(),
        "{report:?}"
    );
    let owners = meta::snapshot_owners(
        &sroot,
        &scratch
            .path()
            .join("containerd/daemon/io.containerd.metadata.v1.bolt/meta.db"),
        "btrfs",
    )?;
    ensure!(owners.len() == records.len(), "{owners:?}");
    ensure!(
        !owners
            .values()
            .any(|o| matches!(o, Owner::Orphan | Owner::Unreferenced { .. })),
        "{owners:?}"
    );
    let images: Vec<&Vec<String>> = owners
        .values()
        .filter_map(|o| match o {
            Owner::Image { images, .. } => Some(images),
            _ => None,
        })
        .collect();
    ensure!(
        images.iter().any(|i| i.iter().any(|n| n.contains("app:1")))
            && images
                .iter()
                .any(|i| i.iter().any(|n| n.contains("base:1"))),
        "{owners:?}"
    );
    ensure!(
        owners
            .values()
            .any(|o| matches!(o, Owner::Container { id, .. } if *id == container)),
        "{owners:?}"
    );
    let (report, _) = env.doctor(scratch.path(), &a)?;
    let (status, summary) = check(&report, "containerd.orphans")?;
    ensure!(
        status == "ok" && summary.contains("each named by a record"),
        "{status} {summary}"
    );
    // A crash of the snapshotter's Remove (simulated: killing containerd between its snapshot
    // to rm-<id> and the delete is not reproducible) leaves an rm-* subvolume; a subvolume no
    // record names is an orphan. Both made with btrfs-kit where containerd makes them.
    let leftover = sroot.join("snapshots/rm-9999");
    let orphan = sroot.join("active/9998");
    btrfs_kit::subvolume::create(&leftover)?;
    btrfs_kit::subvolume::create(&orphan)?;
    let (report, code) = env.doctor(scratch.path(), &a)?;
    let (status, summary) = check(&report, "containerd.orphans")?;
    ensure!(
        status == "warning" && summary.contains("rm-*") && summary.contains("no record"),
        "{status} {summary}"
    );
    // Docker is stopped: its own checks are unknown (3), which ranks above the warning.
    ensure!(code == 3, "exit {code}");
    let (fixed, _) = env.doctor(scratch.path(), &fix_args)?;
    let removed: Vec<&str> = fixed["fixes"]["orphans"]["snapshots_removed"]
        .as_array()
        .ok_or(format!("{fixed}"))?
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    ensure!(
        removed == ["active/9998", "snapshots/rm-9999"],
        "{removed:?}: {fixed}"
    );
    ensure!(!leftover.exists() && !orphan.exists(), "still there");
    let (status, _) = check(&fixed, "containerd.orphans")?;
    ensure!(status == "ok", "{fixed}");
    // The images still work after the fix.
    d.spawn()?;
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])?;
    ensure!(
        images.contains("app:1") && images.contains("base:1"),
        "{images}"
    );
    d.docker_ok(&["create", "--name", "c2", "base:1", "/x"])?;
    Ok(())
}

testkit::register!(prefix "containerd"; root: a_system_containerd_off_btrfs_is_critical);
fn a_system_containerd_off_btrfs_is_critical() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let ext4 = Scratch::new(256 * MIB, FsKind::Ext4)?;
    let env = Env::new()?;
    let root = ext4.path().join("containerd");
    std::fs::create_dir(&root)?;
    let c = Containerd::start(&root)?;
    let d = Dockerd::start(
        scratch.path(),
        CONTAINERD_STORE,
        Some((&c.socket, c.config.parent().ok_or("dir")?)),
    )?;
    let ctr = c.ctr_script()?;
    let args = doctor_args(&d, &ctr, &c.config)?;
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (report, code) = env.doctor(scratch.path(), &a)?;
    // dockerd still says btrfs: the trap.
    let (status, summary) = check(&report, "docker.storage-driver.running")?;
    ensure!(status == "ok", "{status} {summary}");
    let (status, summary) = check(&report, "containerd.roots")?;
    ensure!(
        status == "critical" && summary.contains("system containerd") && summary.contains("ext4"),
        "{status} {summary}"
    );
    let (status, summary) = check(&report, "containerd.snapshotter")?;
    ensure!(
        status == "critical" && summary.contains("skip"),
        "{status} {summary}"
    );
    ensure!(code == 2, "exit {code}");
    // What the trap looks like to the user: unpacking fails.
    ensure!(
        c.log().contains("must be a btrfs filesystem"),
        "containerd did not say it skipped the plugin: {}",
        c.log()
    );
    // And what the trap does: unpacking an image fails.
    let e = d.import("base:1", "base\n").err().ok_or("import worked")?;
    ensure!(
        format!("{e:?}").contains("snapshotter not loaded"),
        "import failed otherwise: {e:?}"
    );
    // The probe sees it too.
    let out = env.run(&[&["check", s(scratch.path())?][..], &a].concat())?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.code() == Some(2) && text.contains("roots_off_filesystem=3"),
        "{text}"
    );
    drop(d);
    Ok(())
}

testkit::register!(prefix "containerd"; root: containerd_killed_while_removing_leaves_rm_leftovers_the_doctor_removes);
fn containerd_killed_while_removing_leaves_rm_leftovers_the_doctor_removes() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let env = Env::new()?;
    let root = scratch.path().join("containerd");
    std::fs::create_dir(&root)?;
    let mut c = Containerd::start(&root)?;
    let snap = ["-n", "moby", "snapshots", "--snapshotter", "btrfs"];
    let keys: Vec<String> = (0..40).map(|i| format!("layer-{i}")).collect();
    for k in &keys {
        let tmp = format!("{k}-tmp");
        c.ctr_ok(&[&snap[..], &["prepare", &tmp]].concat())?;
        c.ctr_ok(&[&snap[..], &["commit", k, &tmp]].concat())?;
    }
    // Remove them all, and SIGKILL containerd the moment a Remove has made its rm-<id>
    // snapshot (a crash inside the snapshotter's Remove).
    let dir = root.join("io.containerd.snapshotter.v1.btrfs/snapshots");
    let mut rm: Vec<&str> = snap.to_vec();
    rm.push("rm");
    rm.extend(keys.iter().map(String::as_str));
    let mut remover = c
        .ctr_command(&rm)?
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let seen = testkit::daemon::wait_for(
        std::time::Duration::from_secs(60),
        "an rm-* snapshot appeared",
        || {
            std::fs::read_dir(&dir).is_ok_and(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("rm-"))
            })
        },
    );
    c.kill();
    let _ = remover.wait();
    seen?;
    let sroot = root.join("io.containerd.snapshotter.v1.btrfs");
    let (_, report) = snapshotter::analyse(&sroot)?;
    ensure!(!report.removing.is_empty(), "no rm-* left: {report:?}");
    // The doctor, told of this containerd (daemon.json's "containerd" key) with Docker stopped.
    std::fs::write(
        env.docker_dir().join("daemon.json"),
        serde_json::json!({
            "storage-driver": "btrfs",
            "features": {"containerd-snapshotter": true},
            "containerd": c.socket,
        })
        .to_string(),
    )?;
    let config = ["--containerd-config", s(&c.config)?];
    let (doc, _) = env.doctor(scratch.path(), &config)?;
    let (status, summary) = check(&doc, "containerd.orphans")?;
    ensure!(
        status != "ok" && summary.contains("rm-*"),
        "{status} {summary}"
    );
    let leftovers: Vec<String> = report
        .removing
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let (fixed, _) = env.doctor(scratch.path(), &[&config[..], &["--fix-orphans"]].concat())?;
    let removed: Vec<String> = fixed["fixes"]["orphans"]["snapshots_removed"]
        .as_array()
        .ok_or(format!("{fixed}"))?
        .iter()
        .filter_map(|r| r["name"].as_str().map(String::from))
        .collect();
    ensure!(
        leftovers.iter().all(|l| removed.contains(l)),
        "{leftovers:?} not in {removed:?}"
    );
    let (_, after) = snapshotter::analyse(&sroot)?;
    ensure!(
        after.removing.is_empty() && after.orphans.is_empty(),
        "{after:?}"
    );
    // What `ctr snapshots rm` removed from meta.db before the crash is left in the backend for
    // containerd's garbage collector (it did not collect within 60 s of a restart here, not even
    // after another removal): counted as unreferenced, not as orphans.
    let (_, summary) = check(&fixed, "containerd.orphans")?;
    ensure!(summary.contains("unreferenced"), "{summary}");
    // containerd starts again on what is left, its btrfs snapshotter loaded.
    c.spawn()?;
    let plugins = c.ctr_ok(&["plugins", "ls"])?;
    ensure!(
        dockroot::docker::containerd::ctr::parse_plugin_status(
            &plugins,
            "io.containerd.snapshotter.v1",
            "btrfs"
        )
        .as_deref()
            == Some("ok"),
        "{plugins}"
    );
    c.ctr_ok(&[&snap[..], &["ls"]].concat())?;
    Ok(())
}

/// `n` bytes of pseudo-random letters and digits (incompressible enough that btrfs stores
/// them as they are; no compression is configured anyway).
fn random_text(n: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// `dockroot du --json` with `extra` options, parsed.
fn du_json(env: &Env, data_root: &Path, extra: &[&str]) -> Result<serde_json::Value, Failed> {
    let mut args = vec!["du", s(data_root)?, "--json"];
    args.extend_from_slice(extra);
    let out = env.run(&args)?;
    ensure!(out.status.success(), "du: {}", support::text(&out));
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// A row's figure.
fn fig(row: &serde_json::Value, key: &str) -> Result<u64, Failed> {
    row[key]
        .as_u64()
        .ok_or_else(|| format!("no {key} in {row}").into())
}
testkit::register!(prefix "containerd"; root: du_attributes_the_containerd_store_alike_while_containerd_runs_and_stopped);

/// Docker 28 on the containerd store with dockerd's own containerd 2.1: two imported images
/// (3 and 5 MiB of file data, one layer each), a container of the second with 2 MiB copied
/// into it. `dockroot du` attributes every snapshot subvolume and its figures follow from the
/// construction; Docker's own ids (`docker images`, `docker ps`) are the oracle for the
/// mapping. It reads the same while containerd runs (point-in-time reflink copies of its
/// databases, said in the notes) and once it stopped (the files themselves).
fn du_attributes_the_containerd_store_alike_while_containerd_runs_and_stopped() -> Result<(), Failed>
{
    const MIB: usize = 1 << 20;
    let scratch = Scratch::btrfs(1024 * MIB as u64)?;
    let env = Env::new()?;
    let mut d = Dockerd::start(scratch.path(), CONTAINERD_STORE, None)?;
    d.import("base:1", &random_text(3 * MIB, 1))?;
    d.import("app:1", &random_text(5 * MIB, 2))?;
    let container = d
        .docker_ok(&["create", "--name", "c1", "app:1", "/x"])?
        .trim()
        .to_string();
    let extra = d.dir.path().join("extra");
    std::fs::write(&extra, random_text(2 * MIB, 3))?;
    d.docker_ok(&["cp", s(&extra)?, &format!("{container}:/extra")])?;
    let id_of = |tag: &str| -> Result<String, Failed> {
        Ok(
            d.docker_ok(&["images", "--no-trunc", "--format", "{{.ID}}", tag])?
                .trim()
                .to_string(),
        )
    };
    let (base_id, app_id) = (id_of("base:1")?, id_of("app:1")?);
    let none = env.root().join("no-system-containerd.toml");
    let config_dir = d.dir.path().to_path_buf();
    let opts = [
        "--docker-config-dir",
        s(&config_dir)?,
        "--containerd-config",
        s(&none)?,
    ];
    let running = du_json(&env, scratch.path(), &opts)?;
    d.stop();
    wait_until_managed_containerd_released(scratch.path())?;
    let stopped = du_json(
        &env,
        scratch.path(),
        &[&opts[..], &["--store", "containerd"]].concat(),
    )?;
    let notes = |r: &serde_json::Value| r["notes"].as_array().map_or(0, Vec::len);
    ensure!(
        notes(&running) == 2
            && running["notes"][0]
                .as_str()
                .is_some_and(|n| n.contains("point-in-time")),
        "running: {}",
        running["notes"]
    );
    ensure!(notes(&stopped) == 0, "stopped: {}", stopped["notes"]);
    for r in [&running, &stopped] {
        ensure!(r["store"] == "containerd", "{r}");
        ensure!(
            r["unmeasured"].as_array().is_some_and(Vec::is_empty),
            "{}",
            r["unmeasured"]
        );
        let images = r["images"].as_array().ok_or("no images")?;
        let image = |id: &str| -> Result<&serde_json::Value, Failed> {
            images
                .iter()
                .find(|i| i["id"] == id)
                .ok_or_else(|| format!("no image {id} in {images:?}").into())
        };
        let (base, app) = (image(&base_id)?, image(&app_id)?);
        ensure!(base["tags"] == serde_json::json!(["base:1"]), "{base}");
        // One layer each; base is used by nothing else, app's extents are also the
        // container's (its layers are snapshots of app's).
        ensure!(fig(base, "referenced")? == 3 * MIB as u64, "{base}");
        ensure!(fig(base, "frees")? == 3 * MIB as u64, "{base}");
        ensure!(fig(app, "referenced")? == 5 * MIB as u64, "{app}");
        ensure!(fig(app, "frees")? == 0, "{app}");
        let containers = r["containers"].as_array().ok_or("no containers")?;
        ensure!(containers.len() == 1, "{containers:?}");
        let c = &containers[0];
        ensure!(c["id"] == container.as_str() && c["name"] == "c1", "{c}");
        ensure!(c["layers"].as_array().map_or(0, Vec::len) == 2, "{c}");
        ensure!(fig(c, "referenced")? == 7 * MIB as u64, "{c}");
        ensure!(fig(c, "frees")? == 2 * MIB as u64, "{c}");
        ensure!(
            fig(&r["total"], "frees")? == 10 * MIB as u64,
            "{}",
            r["total"]
        );
        let roles: Vec<&str> = r["subvolumes"]
            .as_array()
            .ok_or("no subvolumes")?
            .iter()
            .flat_map(|s| s["roles"].as_array().into_iter().flatten())
            .filter_map(|role| role["kind"].as_str())
            .collect();
        ensure!(
            roles.iter().filter(|k| **k == "image-layer").count() == 2
                && roles.contains(&"container-layer")
                && roles.contains(&"init-layer")
                && !roles.contains(&"orphan"),
            "{roles:?}"
        );
    }
    let strip = |r: &serde_json::Value| {
        let mut r = r.clone();
        r["notes"] = serde_json::Value::Null;
        r
    };
    ensure!(
        strip(&running) == strip(&stopped),
        "running {running}\nstopped {stopped}"
    );
    Ok(())
}
testkit::register!(prefix "containerd"; root: a_system_containerd_only_the_docker_unit_names_is_found_while_dockerd_is_stopped);

/// Debian's docker.io 28 unit (from the sid userland, as shipped) passes
/// `--containerd=/run/containerd/containerd.sock` in ExecStart only. A data root that once ran
/// dockerd's own containerd (`containerd/daemon` exists) is judged by that unit while dockerd
/// is stopped: a system containerd, whose root on ext4 is critical. Without the unit the same
/// data root is dockerd's own containerd's.
fn a_system_containerd_only_the_docker_unit_names_is_found_while_dockerd_is_stopped(
) -> Result<(), Failed> {
    let userland = testkit::userland::Userland::sid()?;
    let shipped = userland.root().join("lib/systemd/system/docker.service");
    let parsed = dockroot::docker::unit::docker_service(&[shipped
        .parent()
        .ok_or("no parent")?
        .to_path_buf()])
    .ok_or("the shipped unit has no ExecStart")?;
    ensure!(
        parsed.option("--containerd") == Some("/run/containerd/containerd.sock"),
        "{parsed:?}"
    );
    let scratch = Scratch::btrfs(512 * MIB)?;
    let ext4 = Scratch::new(256 * MIB, FsKind::Ext4)?;
    let env = Env::new()?;
    std::fs::create_dir_all(scratch.path().join("containerd/daemon"))?;
    std::fs::write(env.docker_dir().join("daemon.json"), CONTAINERD_STORE)?;
    let config = env.root().join("containerd-config.toml");
    std::fs::write(
        &config,
        format!(
            "version = 3\nroot = \"{}\"\n",
            ext4.path().join("containerd").display()
        ),
    )?;
    let opts = ["--containerd-config", s(&config)?];
    let roots = |env: &Env| -> Result<(String, String), Failed> {
        let (report, _) = env.doctor(scratch.path(), &opts)?;
        let (status, summary) = check(&report, "containerd.roots")?;
        Ok((status.to_string(), summary.to_string()))
    };
    let (status, summary) = roots(&env)?;
    ensure!(
        status == "ok" && summary.contains("dockerd's own containerd"),
        "without the unit: {status} {summary}"
    );
    std::fs::create_dir_all(env.unit_dir())?;
    std::fs::copy(&shipped, env.unit_dir().join("docker.service"))?;
    let (status, summary) = roots(&env)?;
    ensure!(
        status == "critical"
            && summary.contains(
                "docker.service's ExecStart --containerd names /run/containerd/containerd.sock"
            )
            && summary.contains("ext4"),
        "with the unit: {status} {summary}"
    );
    Ok(())
}
