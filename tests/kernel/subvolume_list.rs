//! Listing subvolumes on a real kernel, checked against btrfs-progs: privileged and
//! unprivileged modes, pre- and post-order, from the top level, a plain directory and a nested
//! subvolume, and as an unprivileged uid in a child process.

use crate::data::MIB;
use crate::progs::Progs;
use btrfs_kit::subvolume::{self, Entry, Mode, Order, SnapshotOptions, UnreachableReason};
use btrfs_kit::Filesystem;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use testkit::ensure;
use testkit::fixture::Scratch;
use testkit::harness::Failed;

/// Makes the test binary list subvolumes of this path as the unprivileged probe.
const PROBE_ENV: &str = "BTRFS_LVM_SUBVOL_LIST_PROBE";
/// A file of "id path" lines the probe checks with plain `open(2)`, as the oracle.
const PROBE_PATHS_ENV: &str = "BTRFS_LVM_SUBVOL_LIST_PATHS";

/// One subvolume as btrfs-progs and we both describe it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    id: u64,
    parent: u64,
    path: String,
    uuid: String,
    parent_uuid: String,
}

/// `btrfs subvolume list -a -u -q -p`, paths from the top level.
fn progs_rows(oracle: Progs, m: &Path) -> Result<Vec<Row>, Failed> {
    let text = oracle.run(&["subvolume", "list", "-a", "-u", "-q", "-p"], m)?;
    let mut rows = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |key: &str| -> Result<&str, Failed> {
            let i = words
                .iter()
                .position(|w| *w == key)
                .ok_or_else(|| format!("no {key:?} in {line:?}"))?;
            Ok(words.get(i + 1).copied().unwrap_or_default())
        };
        let path_at = line.find(" path ").ok_or("no path")? + " path ".len();
        rows.push(Row {
            id: after("ID")?.parse()?,
            parent: after("parent")?.parse()?,
            path: line[path_at..].trim_start_matches("<FS_TREE>/").to_string(),
            uuid: after("uuid")?.to_string(),
            parent_uuid: after("parent_uuid")?.to_string(),
        });
    }
    rows.sort();
    Ok(rows)
}

fn uuid_text(u: Option<subvolume::Uuid>) -> String {
    u.map_or("-".into(), |u| u.to_string())
}

/// Our listing of `path` in `mode` and `order`, as rows with paths relative to `path`.
fn our_rows(path: &Path, mode: Mode, order: Order) -> Result<(Vec<Row>, Mode), Failed> {
    let fs = Filesystem::open(path)?;
    let iter = fs.subvolumes().mode(mode).order(order).iter()?;
    let used = iter.mode();
    let mut rows = Vec::new();
    for entry in iter {
        match entry? {
            Entry::Subvolume(s) => rows.push(Row {
                id: s.info.id,
                parent: s.info.parent_id.unwrap_or(0),
                path: s.path.to_string_lossy().into_owned(),
                uuid: uuid_text(s.info.uuid),
                parent_uuid: uuid_text(s.info.parent_uuid),
            }),
            Entry::Unreachable(u) => return Err(format!("as root, unreachable: {u:?}").into()),
        }
    }
    Ok((rows, used))
}

/// A few hundred subvolumes: 270 side by side in one directory (more than one
/// GET_SUBVOL_ROOTREF batch of 255), a four-deep nesting through plain directories with 70
/// children at one level, snapshots (one recursive).
fn populate(m: &Path) -> Result<(), Failed> {
    std::fs::create_dir(m.join("many"))?;
    for i in 0..270 {
        subvolume::create(m.join(format!("many/s{i:03}")))?;
    }
    subvolume::create(m.join("n0"))?;
    std::fs::create_dir_all(m.join("n0/d"))?;
    subvolume::create(m.join("n0/d/n1"))?;
    subvolume::create(m.join("n0/d/n1/n2"))?;
    std::fs::create_dir_all(m.join("n0/d/n1/n2/e/f"))?;
    subvolume::create(m.join("n0/d/n1/n2/e/f/n3"))?;
    // A nested subvolume with more children than the iterator holds ahead (64).
    for i in 0..70 {
        subvolume::create(m.join(format!("n0/d/n1/w{i:02}")))?;
    }
    std::fs::create_dir(m.join("snaps"))?;
    subvolume::snapshot(
        m.join("many/s000"),
        m.join("snaps/r0"),
        &SnapshotOptions::read_only(),
    )?;
    subvolume::snapshot(
        m.join("n0"),
        m.join("snaps/n0-deep"),
        &SnapshotOptions::writable().recursive(),
    )?;
    for i in 0..10 {
        subvolume::create(m.join(format!("t{i}")))?;
    }
    Ok(())
}

/// Checks that each row's parent (when listed) comes before it (pre-order) or after it.
fn check_order(rows: &[Row], order: Order) -> Result<(), Failed> {
    let pos: BTreeMap<u64, usize> = rows.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    for (i, r) in rows.iter().enumerate() {
        if let Some(&p) = pos.get(&r.parent) {
            let ok = match order {
                Order::PreOrder => p < i,
                Order::PostOrder => p > i,
            };
            ensure!(ok, "{order:?}: {} at {i}, its parent at {p}", r.path);
        }
    }
    Ok(())
}

/// `btrfs subvolume show` fields: Name, UUID, Parent UUID, Subvolume ID, Generation,
/// Gen at creation, Parent ID, Flags.
fn progs_show(oracle: Progs, path: &Path) -> Result<BTreeMap<String, String>, Failed> {
    let text = oracle.run(&["subvolume", "show"], path)?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

testkit::register!(oracle: matches_btrfs_progs_in_both_modes);
fn matches_btrfs_progs_in_both_modes() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let m = scratch.path();
    populate(m)?;
    let expected = progs_rows(Progs::Debian, m)?;
    ensure!(expected.len() > 350, "{} subvolumes made", expected.len());
    let (mut privileged, _) = our_rows(m, Mode::Privileged, Order::PreOrder)?;
    privileged.sort();
    let sid = progs_rows(Progs::Sid, m)?;
    ensure!(
        sid == privileged,
        "{}: {} rows, ours {}; first difference {:?}",
        Progs::Sid.name(),
        sid.len(),
        privileged.len(),
        sid.iter().zip(&privileged).find(|(a, b)| a != b),
    );
    let mut sequences = Vec::new();
    for mode in [Mode::Privileged, Mode::Unprivileged, Mode::Auto] {
        for order in [Order::PreOrder, Order::PostOrder] {
            let (rows, used) = our_rows(m, mode, order)?;
            check_order(&rows, order)?;
            let mut sorted = rows.clone();
            sorted.sort();
            ensure!(
                sorted == expected,
                "{mode:?} {order:?}: ours and btrfs-progs differ:\nonly ours {:?}\nonly progs {:?}",
                sorted
                    .iter()
                    .filter(|r| !expected.contains(r))
                    .collect::<Vec<_>>(),
                expected
                    .iter()
                    .filter(|r| !sorted.contains(r))
                    .collect::<Vec<_>>(),
            );
            ensure!(
                mode != Mode::Auto || used == Mode::Privileged,
                "as root, auto picks privileged, not {used:?}",
            );
            sequences.push((order, rows));
        }
    }
    // Both modes walk children in id order: the same sequences.
    for order in [Order::PreOrder, Order::PostOrder] {
        let mut same = sequences
            .iter()
            .filter(|(o, _)| *o == order)
            .map(|(_, r)| r);
        let first = same.next().ok_or("no sequence")?;
        ensure!(
            same.all(|r| r == first),
            "{order:?} sequences differ between modes"
        );
    }

    // From a plain directory and from a nested subvolume: the part below, paths relative.
    for (below, mode) in [
        ("many", Mode::Privileged),
        ("many", Mode::Unprivileged),
        ("n0", Mode::Privileged),
        ("n0/d", Mode::Unprivileged),
    ] {
        let (mut rows, _) = our_rows(&m.join(below), mode, Order::PreOrder)?;
        rows.sort();
        let prefix = format!("{below}/");
        let mut want: Vec<Row> = expected
            .iter()
            .filter_map(|r| {
                let path = r.path.strip_prefix(&prefix)?.to_string();
                Some(Row { path, ..r.clone() })
            })
            .collect();
        want.sort();
        ensure!(
            !want.is_empty() && rows == want,
            "listing {below} ({mode:?}): {rows:?}\nwant {want:?}",
        );
    }

    // Info against `btrfs subvolume show`, for a sample including every nested one.
    let fs = Filesystem::open(m)?;
    for row in expected.iter().filter(|r| r.id % 37 == 0 || r.parent != 5) {
        let p = m.join(&row.path);
        for oracle in Progs::BOTH {
            let shown = progs_show(oracle, &p)?;
            show_matches(
                oracle,
                &shown,
                &row.path,
                [subvolume::info(&p)?, fs.subvolume_info_by_id(row.id)?],
            )?;
        }
    }
    Ok(())
}

/// `btrfs subvolume show`'s fields against our two readings of one subvolume.
fn show_matches(
    oracle: Progs,
    shown: &BTreeMap<String, String>,
    path: &str,
    infos: [subvolume::SubvolumeInfo; 2],
) -> Result<(), Failed> {
    // None of these was received: no send time. 6.2 prints "Send time:" before it formats the
    // send time, so it shows the creation time string left in its buffer (cmds/subvolume.c of
    // v6.2, cmd_subvolume_show); 7.3 formats first and prints "-". The kernel's root item has
    // no send time (ours: None): 7.3 is right.
    let send_time = match oracle {
        Progs::Debian => shown.get("Creation time").cloned(),
        Progs::Sid => Some("-".to_string()),
    };
    ensure!(
        infos.iter().all(|i| i.stime.is_none()) && shown.get("Send time") == send_time.as_ref(),
        "{path}: {} shows send time {:?}, expected {send_time:?}",
        oracle.name(),
        shown.get("Send time"),
    );
    let row_path = path;
    {
        for info in infos {
            let ours = [
                ("Name", info.name.to_string_lossy().into_owned()),
                ("UUID", uuid_text(info.uuid)),
                ("Parent UUID", uuid_text(info.parent_uuid)),
                ("Received UUID", uuid_text(info.received_uuid)),
                ("Subvolume ID", info.id.to_string()),
                ("Generation", info.generation.to_string()),
                ("Gen at creation", info.otransid.to_string()),
                ("Parent ID", info.parent_id.unwrap_or(0).to_string()),
                (
                    "Flags",
                    if info.read_only { "readonly" } else { "-" }.to_string(),
                ),
            ];
            for (key, value) in ours {
                ensure!(
                    shown.get(key) == Some(&value),
                    "{}: {key} is {value:?}, {} says {:?}",
                    row_path,
                    oracle.name(),
                    shown.get(key),
                );
            }
            ensure!(
                info.path.as_deref() == Some(Path::new(row_path)),
                "path {:?} vs {}",
                info.path,
                row_path,
            );
        }
    }
    Ok(())
}

/// In the child (as nobody): our listing and the plain-open oracle, one fact per line.
pub fn child_probe() -> Option<i32> {
    let mnt = std::env::var_os(PROBE_ENV)?;
    let mnt = Path::new(&mnt);
    let list = std::env::var_os(PROBE_PATHS_ENV)?;
    let run = || -> Result<(), Box<dyn std::error::Error>> {
        for line in std::fs::read_to_string(&list)?.lines() {
            let (id, path) = line.split_once(' ').ok_or("bad list line")?;
            let ok = std::fs::File::open(mnt.join(path)).is_ok();
            println!("open {id} {}", if ok { "ok" } else { "denied" });
        }
        let fs = Filesystem::open(mnt)?;
        let iter = fs.subvolumes().iter()?;
        println!("mode {:?}", iter.mode());
        for entry in iter {
            match entry? {
                Entry::Subvolume(s) => println!("found {} {}", s.info.id, s.path.display()),
                Entry::Unreachable(u) => println!(
                    "unreachable {} {} {}",
                    u.id,
                    matches!(u.reason, UnreachableReason::PermissionDenied),
                    u.path.map_or("-".into(), |p| p.display().to_string())
                ),
            }
        }
        Ok(())
    };
    Some(match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("probe: {e}");
            1
        }
    })
}

testkit::register!(oracle: unprivileged_uid_sees_what_it_can_reach);
fn unprivileged_uid_sees_what_it_can_reach() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let mode = |p: &str, bits: u32| {
        std::fs::set_permissions(m.join(p), std::fs::Permissions::from_mode(bits))
    };
    std::fs::create_dir(m.join("pub"))?;
    subvolume::create(m.join("pub/p1"))?;
    subvolume::create(m.join("pub/p1/q"))?;
    std::fs::create_dir(m.join("secret"))?;
    subvolume::create(m.join("secret/s1"))?;
    subvolume::create(m.join("secret/s2"))?;
    subvolume::create(m.join("closed"))?;
    subvolume::create(m.join("closed/inner"))?;
    subvolume::create(m.join("t1"))?;
    mode("pub", 0o755)?;
    mode("secret", 0o700)?;
    mode("closed", 0o700)?;
    let all = progs_rows(Progs::Debian, m)?;

    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let list = dir.path().join("paths");
    let text: String = all
        .iter()
        .map(|r| format!("{} {}\n", r.id, r.path))
        .collect();
    std::fs::write(&list, text)?;
    std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o644))?;
    let out = crate::unprivileged::run_as_nobody(&[
        (PROBE_ENV, m.as_os_str()),
        (PROBE_PATHS_ENV, list.as_os_str()),
    ])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "probe failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids = |kind: &str, third: Option<&str>| -> BTreeSet<u64> {
        stdout
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split(' ').collect();
                (w[0] == kind && third.is_none_or(|t| w.get(2) == Some(&t)))
                    .then(|| w[1].parse().ok())?
            })
            .collect()
    };
    ensure!(
        stdout.lines().any(|l| l == "mode Unprivileged"),
        "auto mode as nobody:\n{stdout}"
    );
    let openable = ids("open", Some("ok"));
    let found = ids("found", None);
    let unreachable = ids("unreachable", None);
    ensure!(
        found == openable,
        "found {found:?}, but nobody can open exactly {openable:?}\n{stdout}",
    );
    // Every found path is the one btrfs-progs names.
    for r in &all {
        if found.contains(&r.id) {
            ensure!(
                stdout
                    .lines()
                    .any(|l| l == format!("found {} {}", r.id, r.path)),
                "path of {}",
                r.path,
            );
        }
    }
    // Every other subvolume is reported unreachable, or hidden below one that is.
    let by_id: BTreeMap<u64, &Row> = all.iter().map(|r| (r.id, r)).collect();
    for r in &all {
        if found.contains(&r.id) || unreachable.contains(&r.id) {
            continue;
        }
        let mut up = r.parent;
        let mut hidden = false;
        while let Some(p) = by_id.get(&up) {
            hidden |= unreachable.contains(&p.id);
            up = p.parent;
        }
        ensure!(
            hidden,
            "{} ({}) neither found nor reported\n{stdout}",
            r.path,
            r.id
        );
    }
    ensure!(
        unreachable.len() >= 3 && unreachable.is_disjoint(&found),
        "secret/s1, secret/s2 and closed are unreachable:\n{stdout}",
    );
    ensure!(
        ids("unreachable", Some("true")) == unreachable,
        "all for permission reasons:\n{stdout}",
    );
    Ok(())
}
