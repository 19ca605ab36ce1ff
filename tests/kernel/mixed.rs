//! Mixed block groups (data and metadata in the same chunks, `mkfs.btrfs -M`): the daily
//! policy and the balance request builder on a real mixed filesystem. Oracle tier: the native
//! mkfs does not make mixed filesystems, so btrfs-progs formats this one.

use crate::data::{write_file, MIB};
use crate::example_bin::run;
use crate::progs::ProgsMultiDevice;
use crate::space::usage_equals_progs;
use btrfs_kit::balance::{Balance, ChunkFilters, DailyPolicy};
use btrfs_kit::{ErrorKind, Filesystem};
use testkit::ensure;
use testkit::harness::Failed;

testkit::register!(oracle: daily_policy_and_requests_run_on_mixed_block_groups);
/// The default `balance` run (the daily policy) completes on a mixed filesystem, every step
/// reaching the kernel; data-only and metadata-only requests run too (the library gives both
/// kinds the same filters, as the kernel requires); different data and metadata filters are
/// refused before the kernel, naming the rule. (Issue 15 item 7: the policy failed with
/// EINVAL.)
fn daily_policy_and_requests_run_on_mixed_block_groups() -> Result<(), Failed> {
    let fs_made = ProgsMultiDevice::new(&[512 * MIB], &["-M"])?;
    let m = fs_made.path();
    for i in 0..16 {
        write_file(&m.join(format!("f{i}")), 8 * MIB, i)?;
    }
    for i in (0..16).filter(|i| i % 4 != 0) {
        std::fs::remove_file(m.join(format!("f{i}")))?;
    }
    let fs = Filesystem::open(m)?;
    fs.sync()?;
    ensure!(fs.is_mixed()?, "mkfs.btrfs -M made no mixed block groups");
    usage_equals_progs(m)?;

    let path = m.to_str().ok_or("path")?;
    let out = run("balance", &[path, "--json", "--no-skip"])?;
    ensure!(
        out.status.code() == Some(0),
        "default balance on mixed block groups: exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let requests: Vec<&str> = report["steps"]
        .as_array()
        .ok_or("no steps")?
        .iter()
        .filter_map(|s| s["request"].as_str())
        .collect();
    let expected: Vec<String> = DailyPolicy::default()
        .steps_for(true)
        .iter()
        .map(|s| s.request.to_string())
        .collect();
    ensure!(
        requests == expected && report["state"] == "completed",
        "policy ran {requests:?} ({}), expected {expected:?}",
        report["state"],
    );

    // The layout-blind steps (data only, then metadata only) run through the library too.
    for step in DailyPolicy::default().steps() {
        fs.balance(&step.request)
            .map_err(|e| format!("{}: {e}", step.request))?;
    }
    let out = run("balance", &[path, "--json", "-dusage=50"])?;
    ensure!(
        out.status.code() == Some(0),
        "-dusage=50: exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
    let differ = Balance::new()
        .data(ChunkFilters::usage_below(5))
        .metadata(ChunkFilters::usage_below(10));
    match fs.balance(&differ) {
        Err(e) if matches!(e.kind(), ErrorKind::InvalidArguments { .. }) => {
            ensure!(e.to_string().contains("mixed block groups"), "{e}")
        }
        other => return Err(format!("different data and metadata filters: {other:?}").into()),
    }
    ensure!(fs.balance_status()?.is_none(), "a balance is left behind");
    usage_equals_progs(m)
}
