//! Quotas on a real kernel: enable, qgroups, limits (EDQUOT past the limit), usage against
//! `btrfs qgroup show --raw`, inheritance on create, disable.

use crate::data::{write_file, MIB};
use crate::progs::Progs;
use btrfs_kit::quota::{Limit, QgroupId, QgroupLimits};
use btrfs_kit::{subvolume, ByteSize, Errno, ErrorKind, Filesystem};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use testkit::ensure;
use testkit::fixture::Scratch;
use testkit::harness::Failed;

/// `btrfs qgroup show --raw -r -e`: qgroup → (referenced, exclusive, max rfer, max excl).
type ProgsRow = (u64, u64, Option<u64>, Option<u64>);

fn progs_qgroups(oracle: Progs, m: &Path) -> Result<BTreeMap<String, ProgsRow>, Failed> {
    let text = oracle.run(&["qgroup", "show", "--raw", "-r", "-e"], m)?;
    let limit = |w: &str| -> Result<Option<u64>, Failed> {
        Ok(if w == "none" { None } else { Some(w.parse()?) })
    };
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 5 {
            continue;
        }
        out.insert(
            w[0].to_string(),
            (w[1].parse()?, w[2].parse()?, limit(w[3])?, limit(w[4])?),
        );
    }
    Ok(out)
}

/// Writes up to `size` bytes in 1 MiB steps with fsync; the errno that stopped it, if any.
fn write_until_error(path: &Path, size: u64) -> Result<Option<i32>, Failed> {
    let mut f = std::fs::File::create(path)?;
    let buf = vec![0x5au8; MIB as usize];
    for _ in 0..size / MIB {
        if let Err(e) = f.write_all(&buf).and_then(|()| f.sync_data()) {
            return Ok(e.raw_os_error());
        }
    }
    Ok(None)
}

testkit::register!(oracle: limit_gives_edquot_and_usage_matches_btrfs_progs);
fn limit_gives_edquot_and_usage_matches_btrfs_progs() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let m = scratch.path();
    let fs = Filesystem::open(m)?;
    ensure!(fs.quota_status()?.is_none(), "quotas start off");
    ensure!(
        matches!(fs.qgroups(), Err(e) if matches!(e.kind(), ErrorKind::QuotaNotEnabled)),
        "listing qgroups with quotas off",
    );
    ensure!(
        matches!(
            fs.create_qgroup(QgroupId::new(1, 100)),
            Err(e) if matches!(e.kind(), ErrorKind::QuotaNotEnabled)
        ),
        "creating a qgroup with quotas off",
    );
    fs.enable_quota()?;
    fs.wait_quota_rescan()?;
    let status = fs.quota_status()?.ok_or("no status after enable")?;
    ensure!(status.enabled && !status.rescan_running, "{status:?}");

    // A higher-level qgroup, and a subvolume created into it.
    let group = QgroupId::new(1, 100);
    fs.create_qgroup(group)?;
    subvolume::create_with(m.join("a"), &[group])?;
    subvolume::create(m.join("b"))?;
    let a = QgroupId::subvolume(subvolume::subvolume_id(m.join("a"))?);
    let b = QgroupId::subvolume(subvolume::subvolume_id(m.join("b"))?);
    for oracle in Progs::BOTH {
        let relations = oracle.run(&["qgroup", "show", "-p"], m)?;
        ensure!(
            relations
                .lines()
                .any(|l| l.starts_with(&a.to_string()) && l.contains("1/100")),
            "{}: 0/a inherited into 1/100:\n{relations}",
            oracle.name(),
        );
    }
    fs.assign_qgroup(b, group)?;

    let cap = 32 * MIB;
    fs.limit_qgroup(
        a,
        QgroupLimits {
            referenced: Limit::Set(ByteSize(cap)),
            ..Default::default()
        },
    )?;
    let stopped = write_until_error(&m.join("a/big"), 4 * cap)?;
    ensure!(
        stopped == Some(Errno::DQUOT.raw_os_error()),
        "writing past the limit stopped with {stopped:?}, not EDQUOT",
    );
    write_file(&m.join("b/data"), 8 * MIB, 3)?;
    fs.sync()?;

    let ours: BTreeMap<String, ProgsRow> = fs
        .qgroups()?
        .into_iter()
        .map(|q| {
            (
                q.id.to_string(),
                (
                    q.referenced.bytes(),
                    q.exclusive.bytes(),
                    q.max_referenced.map(ByteSize::bytes),
                    q.max_exclusive.map(ByteSize::bytes),
                ),
            )
        })
        .collect();
    for oracle in Progs::BOTH {
        let theirs = progs_qgroups(oracle, m)?;
        ensure!(
            ours == theirs,
            "qgroups differ:\nours  {ours:?}\n{} {theirs:?}",
            oracle.name(),
        );
    }
    let (a_ref, _, a_max, _) = ours[&a.to_string()];
    ensure!(
        a_max == Some(cap) && a_ref <= cap + MIB && a_ref > MIB,
        "a: {:?}",
        ours[&a.to_string()],
    );
    let (b_ref, b_excl, ..) = ours[&b.to_string()];
    ensure!(
        b_ref >= 8 * MIB && b_excl >= 8 * MIB,
        "b: {:?}",
        ours[&b.to_string()]
    );

    // Clearing the limit lets writes through again.
    fs.limit_qgroup(
        a,
        QgroupLimits {
            referenced: Limit::Clear,
            ..Default::default()
        },
    )?;
    ensure!(
        write_until_error(&m.join("a/more"), 2 * cap)?.is_none(),
        "writes succeed after clearing the limit",
    );
    let cleared = fs
        .qgroups()?
        .into_iter()
        .find(|q| q.id == a)
        .ok_or("a vanished")?;
    ensure!(cleared.max_referenced.is_none(), "{cleared:?}");

    fs.rescan_quota()?;
    fs.wait_quota_rescan()?;
    ensure!(
        fs.quota_rescan_progress()?.is_none(),
        "no rescan after waiting"
    );
    fs.unassign_qgroup(b, group)?;
    subvolume::delete(m.join("a"), subvolume::Recursion::No)?;
    fs.disable_quota()?;
    ensure!(fs.quota_status()?.is_none(), "quotas off again");
    Ok(())
}
