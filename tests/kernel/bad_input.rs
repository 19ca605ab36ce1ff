//! Bad input: not btrfs, missing paths, and an unprivileged caller.

use crate::data::MIB;
use crate::unprivileged::{expect_probe, probe_open, probe_result};
use btrfs_kit::balance::{Balance, ChunkFilters};
use btrfs_kit::{ErrorKind, Filesystem};
use testkit::ensure;
use testkit::fixture::{BtrfsOptions, FsKind, Scratch};
use testkit::harness::Failed;

/// The environment variable that makes the test binary act as the unprivileged probe.
const PROBE_ENV: &str = "BTRFS_LVM_UNPRIVILEGED_PROBE";

testkit::register!(root: ext4_path_gives_not_btrfs_naming_ext4);
fn ext4_path_gives_not_btrfs_naming_ext4() -> Result<(), Failed> {
    let scratch = Scratch::new(64 * MIB, FsKind::Ext4)?;
    match Filesystem::open(scratch.path()) {
        Err(e) if matches!(e.kind(), ErrorKind::NotBtrfs { .. }) => {
            let text = e.to_string();
            ensure!(
                text.contains("ext4") && text.contains(&*scratch.path().to_string_lossy()),
                "{text}",
            );
            Ok(())
        }
        other => Err(format!("ext4 path: {other:?}").into()),
    }
}

testkit::register!(plain: missing_path_gives_not_found);
fn missing_path_gives_not_found() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("no-such-dir");
    match Filesystem::open(&missing) {
        Err(e) if matches!(e.kind(), ErrorKind::NotFound) => {
            ensure!(e.to_string().contains("no-such-dir"), "{e}");
            Ok(())
        }
        other => Err(format!("missing path: {other:?}").into()),
    }
}

/// In the child: what each call gives an unprivileged caller, one `name=result` per line.
pub fn child_probe() -> Option<i32> {
    let path = std::env::var_os(PROBE_ENV)?;
    let describe = probe_result;
    let Some(fs) = probe_open(&path) else {
        return Some(0);
    };
    println!("open=ok");
    println!("space_info={}", describe(fs.space_info().map(drop)));
    println!("usage={}", describe(fs.usage().map(drop)));
    println!("balance_status={}", describe(fs.balance_status().map(drop)));
    println!(
        "balance={}",
        describe(
            fs.balance(&Balance::new().data(ChunkFilters::usage_below(0)))
                .map(drop)
        )
    );
    Some(0)
}

testkit::register!(root: unprivileged_caller_gets_permission_denied);
fn unprivileged_caller_gets_permission_denied() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    expect_probe(
        &[(PROBE_ENV, scratch.path().as_os_str())],
        &[
            ("open", "ok"),
            ("space_info", "ok"),
            ("usage", "permission-denied"),
            ("balance_status", "permission-denied"),
            ("balance", "permission-denied"),
        ],
    )
}

testkit::register!(root: balance_on_read_only_mount_says_read_only);
fn balance_on_read_only_mount_says_read_only() -> Result<(), Failed> {
    let options = BtrfsOptions {
        mount_options: "ro".into(),
        ..Default::default()
    };
    let scratch = Scratch::new(512 * MIB, FsKind::Btrfs(options))?;
    let fs = Filesystem::open(scratch.path())?;
    ensure!(
        !fs.space_info()?.is_empty(),
        "space info on a read-only mount"
    );
    match fs.balance(&Balance::new().data(ChunkFilters::usage_below(0))) {
        Err(e) if matches!(e.kind(), ErrorKind::ReadOnly) => {
            ensure!(e.to_string().contains("remount"), "{e}");
            Ok(())
        }
        other => Err(format!("balance on a read-only mount: {other:?}").into()),
    }
}
