//! Filling a Docker data root's filesystem to ENOSPC and emptying it again with the balance
//! example's daily policy: shared by the 20.10 tier and the modern-Docker tier.

use crate::data::{write_until_full, MIB};
use crate::example_bin::{json, run};
use crate::http::get;
use crate::image::PAGE;
use crate::report::Report;
use btrfs_kit::Filesystem;
use nix::fcntl::{fallocate, FallocateFlags};
use std::io::Write;
use std::path::{Path, PathBuf};
use testkit::ensure;
use testkit::harness::Failed;

/// Fills the filesystem: most of the free space reserved at once (fallocate), then plug files
/// written until ENOSPC, until neither a new 1-byte file (metadata) nor an 8 KiB one (data)
/// can be written: Docker needs both for a container's records. The plug files go to `plugs`;
/// the bytes they hold.
pub fn plug(fs: &Filesystem, plugs: &mut Vec<PathBuf>) -> Result<u64, Failed> {
    let root = fs.path().to_path_buf();
    let free = fs.usage()?.free_estimated.bytes();
    let reserve = free.saturating_sub(32 * MIB);
    plugs.push(root.join("plug"));
    let file = std::fs::File::create(&plugs[0])?;
    fallocate(&file, FallocateFlags::empty(), 0, reserve as i64)
        .map_err(|e| format!("fallocate {reserve} bytes: {e}"))?;
    drop(file);
    let mut bytes = reserve;
    // Each commit can return reserved space (metadata over-reservation): fill again until a
    // byte does not fit.
    for round in 0..16 {
        let path = root.join(format!("plug-{round}"));
        plugs.push(path.clone());
        bytes += write_until_full(&path)?;
        fs.sync()?;
        // Both kinds of space: a 1-byte file is inline (metadata), an 8 KiB one needs a data
        // extent; the sync may have returned data space that deletions pinned (containerd and
        // dockerd write and delete as the filling runs), which a metadata probe alone misses.
        let probe = root.join("probe");
        if !fits(&probe, 1)? && !fits(&probe, 8 * 1024)? {
            return Ok(bytes);
        }
    }
    Err("the filesystem still takes a 1-byte file after 16 rounds of filling".into())
}

/// [`plug`], then checks that the web container on `port` still serves [`PAGE`]; the step's
/// outcome in words.
pub fn plug_while_served(
    fs: &Filesystem,
    plugs: &mut Vec<PathBuf>,
    port: u16,
) -> Result<((), String), Failed> {
    let bytes = plug(fs, plugs)?;
    let (status, body) = get(port, "/")?;
    ensure!(
        status == 200 && body == PAGE,
        "full: HTTP {status} {body:?}"
    );
    Ok((
        (),
        format!(
            "{} MiB in plug files, even a 1-byte file gets ENOSPC; the page is still served",
            bytes / MIB
        ),
    ))
}

/// Removes the plug files [`plug`] made and commits, so the space is free again.
pub fn unplug(fs: &Filesystem, plugs: &[PathBuf]) -> Result<(), Failed> {
    for p in plugs {
        std::fs::remove_file(p).map_err(|e| format!("remove plug {}: {e}", p.display()))?;
    }
    fs.sync()?;
    Ok(())
}

/// [`unplug`], then checks that the web container on `port` still serves [`PAGE`].
pub fn unplug_while_served(fs: &Filesystem, plugs: &[PathBuf], port: u16) -> Result<(), Failed> {
    unplug(fs, plugs)?;
    let (status, body) = get(port, "/")?;
    ensure!(
        status == 200 && body == PAGE,
        "after the plugs: HTTP {status} {body:?}"
    );
    Ok(())
}

/// The step "balance example's daily policy when full" of `report`: [`policy_when_full`] on
/// `root`, its steps kept as a fact.
pub fn policy_when_full_step(report: &mut Report, root: &str) -> Result<(), Failed> {
    report.step("5 balance example's daily policy when full", |r| {
        let (code, relocated, steps) = policy_when_full(root)?;
        r.fact("balance_policy_when_full", steps.clone());
        Ok(((), format!("exit {code}: {steps}; relocated {relocated}")))
    })
}

/// Whether a new file of `bytes` bytes can be written and synced at `path` (removed again).
pub fn fits(path: &Path, bytes: usize) -> Result<bool, Failed> {
    let result = std::fs::File::create(path).and_then(|mut f| {
        f.write_all(&vec![b'x'; bytes])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(path);
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => Ok(false),
        Err(e) => Err(format!("probe {}: {e}", path.display()).into()),
    }
}

/// The balance example's daily policy: fails unless exit 0 and completed; the chunks relocated
/// and the steps' states.
pub fn policy(root: &str) -> Result<(u64, String), Failed> {
    let out = run("balance", &[root, "--json"])?;
    let json = json(&out)?;
    ensure!(
        out.status.code() == Some(0) && json["state"] == "completed",
        "balance policy: {}: {json} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
    steps_of(&json)
}

/// The balance example's daily policy on a full filesystem. With no unallocated space a
/// relocation may find no room: the example reports that step as enospc, goes on with the
/// others and exits 5 (btrfsmaintenance calls ENOSPC a minor fault); exit 0 if every step found
/// room. Fails otherwise; the exit code, the chunks relocated and the steps with their states.
fn policy_when_full(root: &str) -> Result<(i32, u64, String), Failed> {
    let out = run("balance", &[root, "--json"])?;
    let json = json(&out)?;
    let (relocated, steps) = steps_of(&json)?;
    let enospc = steps.matches(" enospc").count();
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        json["steps"].as_array().map(Vec::len) == Some(5)
            && match out.status.code() {
                Some(5) => json["state"] == "enospc" && enospc > 0 && stderr.contains("ENOSPC in"),
                Some(0) => json["state"] == "completed" && enospc == 0,
                _ => false,
            },
        "balance policy when full: {}: {json} {stderr}",
        out.status,
    );
    Ok((out.status.code().unwrap_or(-1), relocated, steps))
}

/// The chunks a policy report says were relocated, and its steps with their states.
fn steps_of(json: &serde_json::Value) -> Result<(u64, String), Failed> {
    let steps = json["steps"]
        .as_array()
        .ok_or("no steps")?
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["request"].as_str().unwrap_or("?"),
                s["state"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    Ok((json["relocated"].as_u64().unwrap_or_default(), steps))
}
