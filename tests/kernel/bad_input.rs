//! Bad input: not btrfs, missing paths, and an unprivileged caller.

use crate::root_test;
use crate::util::{check, expect_probe, probe_open, probe_result, MIB};
use btrfs_kit::balance::{Balance, ChunkFilters};
use btrfs_kit::{Error, Filesystem};
use libtest_mimic::{Failed, Trial};
use testkit::fixture::{BtrfsOptions, FsKind, Scratch};

/// The environment variable that makes the test binary act as the unprivileged probe.
const PROBE_ENV: &str = "BTRFS_LVM_UNPRIVILEGED_PROBE";

pub fn trials() -> Vec<Trial> {
    vec![
        root_test(
            "bad_input::ext4_path_gives_not_btrfs_naming_ext4",
            not_btrfs,
        ),
        Trial::test("bad_input::missing_path_gives_not_found", missing_path),
        root_test(
            "bad_input::unprivileged_caller_gets_permission_denied",
            unprivileged,
        ),
        root_test(
            "bad_input::balance_on_read_only_mount_says_read_only",
            read_only,
        ),
    ]
}

fn not_btrfs() -> Result<(), Failed> {
    let scratch = Scratch::new(64 * MIB, FsKind::Ext4)?;
    match Filesystem::open(scratch.path()) {
        Err(e @ Error::NotBtrfs { .. }) => {
            let text = e.to_string();
            check(
                text.contains("ext4") && text.contains(&*scratch.path().to_string_lossy()),
                text,
            )
        }
        other => Err(format!("ext4 path: {other:?}").into()),
    }
}

fn missing_path() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("no-such-dir");
    match Filesystem::open(&missing) {
        Err(e @ Error::NotFound { .. }) => {
            check(e.to_string().contains("no-such-dir"), e.to_string())
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

fn unprivileged() -> Result<(), Failed> {
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

fn read_only() -> Result<(), Failed> {
    let options = BtrfsOptions {
        mount_options: "ro".into(),
        ..Default::default()
    };
    let scratch = Scratch::new(512 * MIB, FsKind::Btrfs(options))?;
    let fs = Filesystem::open(scratch.path())?;
    check(
        !fs.space_info()?.is_empty(),
        "space info on a read-only mount",
    )?;
    match fs.balance(&Balance::new().data(ChunkFilters::usage_below(0))) {
        Err(e @ Error::ReadOnly { .. }) => check(e.to_string().contains("remount"), e.to_string()),
        other => Err(format!("balance on a read-only mount: {other:?}").into()),
    }
}
