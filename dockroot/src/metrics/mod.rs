//! `metrics`: the Prometheus exposition of one data root, as a textfile for node_exporter's
//! textfile collector ([`write_textfile`]: temporary file and rename, so node_exporter never
//! reads half a file) or over HTTP ([`serve`]).
//!
//! The families (every one labelled `uuid`, node_exporter's filesystem label, unless said):
//!
//! * node_exporter's btrfs collector's own, under its names and labels ([`node`]), when asked
//!   ([`NodeBtrfs`]);
//! * space: `dockroot_btrfs_unallocated_bytes`, `dockroot_btrfs_free_estimated_bytes`,
//!   `dockroot_btrfs_free_min_bytes`, `dockroot_btrfs_device_size_total_bytes`,
//!   `dockroot_btrfs_data_used_ratio`, `dockroot_btrfs_metadata_used_ratio`,
//!   `dockroot_btrfs_commits_total` (sysfs `commit_stats`);
//! * balance: `dockroot_btrfs_balance_running`, `dockroot_btrfs_balance_paused`,
//!   `dockroot_btrfs_balance_chunks{state="expected|considered|relocated"}`;
//!   `dockroot_btrfs_exclusive_operation{operation}` (1 for the one running, if any);
//! * scrub (btrfs-kit's state): `dockroot_btrfs_scrub_last_completed_timestamp_seconds`,
//!   `dockroot_btrfs_scrub_last_verdict{verdict}`, `dockroot_btrfs_scrub_errors{type}` of the
//!   last completed scrub, `dockroot_btrfs_scrub_unfinished`;
//! * the upkeep (maintain's state): `dockroot_maintain_last_run_timestamp_seconds`,
//!   `dockroot_maintain_last_exit_code`, and per task (`balance`, `scrub`, `trim`, `grow`,
//!   `defrag`) `dockroot_maintain_task_last_run_timestamp_seconds{task}`,
//!   `dockroot_maintain_task_last_done_timestamp_seconds{task}`,
//!   `dockroot_maintain_task_outcome{task,outcome}` (1 for the last outcome, 0 for the others),
//!   `dockroot_maintain_task_figure{task,figure}` (what it measured: relocated chunks, bytes
//!   trimmed...);
//! * every doctor check: `dockroot_check_status{check}` (0 ok, 1 warning, 2 critical,
//!   3 unknown) and `dockroot_check_figure{check,figure}`; by name: Docker's
//!   `dockroot_docker_orphaned_subvolumes` and `dockroot_docker_orphaned_bytes`, the LV's
//!   `dockroot_lvm_lv_size_bytes` and its VG's `dockroot_lvm_vg_free_bytes`;
//! * per image store (`store="graphdriver|containerd"`): `dockroot_store_orphaned_subvolumes`,
//!   and for the containerd store `dockroot_store_subvolumes`,
//!   `dockroot_store_missing_subvolumes` and `dockroot_store_roots_off_filesystem` (its roots
//!   not on this filesystem: the moby#50517 trap);
//! * `dockroot_up{path}`: 1 when the data root could be read as btrfs, and
//!   `dockroot_scrape_duration_seconds`.

mod config;
pub mod exposition;
pub mod node;
mod serve;

pub use config::{MetricsConfig, NodeBtrfs};
pub use exposition::{Exposition, Kind};
pub use serve::serve;

use crate::doctor::{self, Scope, Target};
use crate::maintain::{MaintainState, Outcome, Task};
use crate::report::Status;
use btrfs_kit::scrub::ScrubState;
use btrfs_kit::sysfs::FsSysfs;
use btrfs_kit::Filesystem;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What to export.
#[derive(Debug, Clone)]
pub struct Source {
    /// The data root, and what the doctor needs.
    pub target: Target,
    /// `maintain`'s state directory.
    pub maintain_state_dir: PathBuf,
    /// Export node_exporter's btrfs figures too.
    pub node_btrfs: bool,
}

/// Collects every family of `source`.
pub fn collect(source: &Source) -> Exposition {
    let started = Instant::now();
    let mut e = Exposition::new();
    let root = source.target.data_root.display().to_string();
    let fs = Filesystem::open(&source.target.data_root);
    let up = match &fs {
        Ok(fs) => match filesystem(&mut e, fs, source) {
            Ok(()) => true,
            Err(err) => {
                e.gauge(
                    "dockroot_scrape_error",
                    "1 when a figure could not be read (the error is in the label).",
                    &[("error", &err.to_string())],
                    1.0,
                );
                false
            }
        },
        Err(_) => false,
    };
    e.gauge(
        "dockroot_up",
        "1 when the data root could be read as a btrfs filesystem.",
        &[("path", &root)],
        if up { 1.0 } else { 0.0 },
    );
    checks(&mut e, &source.target);
    e.gauge(
        "dockroot_scrape_duration_seconds",
        "How long collecting these metrics took.",
        &[],
        started.elapsed().as_secs_f64(),
    );
    e
}

fn filesystem(e: &mut Exposition, fs: &Filesystem, source: &Source) -> btrfs_kit::Result<()> {
    let sysfs = FsSysfs::for_fs(fs)?;
    let fsid = fs.info()?.fsid;
    if source.node_btrfs {
        node::add(e, fs, &sysfs)?;
    }
    let uuid = node::uuid_label(&sysfs);
    let u = [("uuid", uuid.as_str())];
    if let Ok(usage) = fs.usage() {
        let bytes =
            |e: &mut Exposition, name: &str, help: &str, v: u64| e.gauge(name, help, &u, v as f64);
        bytes(
            e,
            "dockroot_btrfs_unallocated_bytes",
            "Raw bytes on the devices not allocated to any chunk.",
            usage.unallocated().bytes(),
        );
        bytes(
            e,
            "dockroot_btrfs_free_estimated_bytes",
            "Estimated free space for data (btrfs filesystem usage's Free (estimated)).",
            usage.free_estimated.bytes(),
        );
        bytes(
            e,
            "dockroot_btrfs_free_min_bytes",
            "Free space at the highest redundancy in use (what df shows).",
            usage.free_min.bytes(),
        );
        bytes(
            e,
            "dockroot_btrfs_device_size_total_bytes",
            "Sum of the devices' sizes.",
            usage.device_size.bytes(),
        );
        e.gauge(
            "dockroot_btrfs_data_used_ratio",
            "Data used over data capacity (used + free estimated); 1 means ENOSPC.",
            &u,
            usage.data_used_ratio(),
        );
        e.gauge(
            "dockroot_btrfs_metadata_used_ratio",
            "Metadata used (with the global reserve) over metadata capacity.",
            &u,
            usage.metadata_used_ratio(),
        );
    }
    if let Ok(Some(c)) = sysfs.commit_stats() {
        e.counter(
            "dockroot_btrfs_commits_total",
            "Transaction commits since mount (sysfs commit_stats).",
            &u,
            c.commits as f64,
        );
    }
    let status = fs.balance_status().ok().flatten();
    let (running, paused) = match &status {
        Some(s) => (s.running, !s.running),
        None => (false, false),
    };
    e.gauge(
        "dockroot_btrfs_balance_running",
        "1 while a balance runs.",
        &u,
        f64::from(u8::from(running)),
    );
    e.gauge("dockroot_btrfs_balance_paused", "1 while a balance is paused (it holds the exclusive operation until resumed or cancelled).", &u, f64::from(u8::from(paused)));
    let p = status.map(|s| s.progress).unwrap_or_default();
    for (state, v) in [
        ("expected", p.expected),
        ("considered", p.considered),
        ("relocated", p.relocated),
    ] {
        e.gauge(
            "dockroot_btrfs_balance_chunks",
            "Chunk counters of the running or paused balance (0 without one).",
            &[("state", state), u[0]],
            v as f64,
        );
    }
    if let Some(op) = sysfs
        .exclusive_operation()
        .ok()
        .flatten()
        .filter(|o| o.is_running())
    {
        e.gauge(
            "dockroot_btrfs_exclusive_operation",
            "1 for the exclusive operation running (balance, resize, device add...).",
            &[("operation", &op.to_string()), u[0]],
            1.0,
        );
    }
    scrub(e, &source.target.paths.scrub_state_dir, fsid, &u);
    upkeep(e, &source.maintain_state_dir, fsid, &u);
    Ok(())
}

fn scrub(e: &mut Exposition, dir: &Path, fsid: uuid::Uuid, u: &[(&str, &str); 1]) {
    let Ok(state) = ScrubState::load(dir, fsid) else {
        return;
    };
    let state = state.as_ref();
    e.gauge(
        "dockroot_btrfs_scrub_unfinished",
        "1 when a scrub was cancelled or interrupted and can be resumed.",
        u,
        f64::from(u8::from(state.and_then(|s| s.unfinished()).is_some())),
    );
    let Some(last) = state.and_then(|s| s.last_completed()) else {
        return;
    };
    e.gauge(
        "dockroot_btrfs_scrub_last_completed_timestamp_seconds",
        "When the last scrub that went through every device finished.",
        u,
        crate::maintain::time::unix(last.finished) as f64,
    );
    e.gauge(
        "dockroot_btrfs_scrub_last_verdict",
        "1 for the verdict of the last completed scrub.",
        &[("verdict", last.verdict.name()), u[0]],
        1.0,
    );
    let t = &last.totals;
    for (kind, v) in [
        ("read", t.read_errors),
        ("csum", t.csum_errors),
        ("verify", t.verify_errors),
        ("super", t.super_errors),
        ("malloc", t.malloc_errors),
        ("uncorrectable", t.uncorrectable_errors),
        ("corrected", t.corrected_errors),
        ("unverified", t.unverified_errors),
    ] {
        e.gauge(
            "dockroot_btrfs_scrub_errors",
            "Error counters of the last completed scrub.",
            &[("type", kind), u[0]],
            v as f64,
        );
    }
}

fn upkeep(e: &mut Exposition, dir: &Path, fsid: uuid::Uuid, u: &[(&str, &str); 1]) {
    let Ok(state) = MaintainState::load(dir, fsid) else {
        return;
    };
    if let Some((time, code)) = state.last_run {
        e.gauge(
            "dockroot_maintain_last_run_timestamp_seconds",
            "When the last maintain run ended.",
            u,
            time as f64,
        );
        e.gauge("dockroot_maintain_last_exit_code", "The last maintain run's exit code (0 ok, 1 needs a human, 2 a task failed, 5 stopped).", u, f64::from(code));
    }
    for task in Task::ALL {
        let Some(r) = state.task(task.name()) else {
            continue;
        };
        let t = [("task", task.name()), u[0]];
        e.gauge(
            "dockroot_maintain_task_last_run_timestamp_seconds",
            "When the task last ran (done or not).",
            &t,
            r.time as f64,
        );
        if let Some(done) = r.last_done {
            e.gauge(
                "dockroot_maintain_task_last_done_timestamp_seconds",
                "When the task last did its work.",
                &t,
                done as f64,
            );
        }
        for o in Outcome::ALL {
            e.gauge(
                "dockroot_maintain_task_outcome",
                "1 for the outcome of the task's last run.",
                &[("outcome", o.name()), ("task", task.name()), u[0]],
                f64::from(u8::from(r.outcome == o)),
            );
        }
        for (figure, v) in &r.figures {
            e.gauge(
                "dockroot_maintain_task_figure",
                "A figure of the task's last run (relocated chunks, bytes trimmed...).",
                &[("figure", figure), ("task", task.name()), u[0]],
                *v,
            );
        }
    }
}

fn checks(e: &mut Exposition, target: &Target) {
    let report = doctor::run(target, Scope::All);
    for c in &report.checks {
        let code = match c.status {
            Status::Ok => 0.0,
            Status::Warning => 1.0,
            Status::Critical => 2.0,
            Status::Unknown => 3.0,
        };
        e.gauge(
            "dockroot_check_status",
            "Each doctor check: 0 ok, 1 warning, 2 critical, 3 unknown.",
            &[("check", c.id)],
            code,
        );
        // A figure a check gives several times (one per orphan) is summed: one series each.
        let mut figures: Vec<(&str, f64)> = Vec::new();
        for f in &c.figures {
            match figures.iter_mut().find(|(l, _)| *l == f.label) {
                Some((_, v)) => *v += f.value,
                None => figures.push((f.label, f.value)),
            }
        }
        for (label, value) in figures {
            e.gauge("dockroot_check_figure", "The figures the doctor's checks judged (summed when a check gives one per object).", &[("check", c.id), ("figure", label)], value);
        }
    }
    let figure = |check: &str, label: &str| {
        report
            .get(check)
            .and_then(|c| c.figures.iter().find(|f| f.label == label))
            .map(|f| f.value)
    };
    if let Some(n) = figure("docker.orphans", "orphans") {
        e.gauge(
            "dockroot_docker_orphaned_subvolumes",
            "Layer subvolumes no image or container references.",
            &[],
            n,
        );
        let bytes = report
            .get("docker.orphans")
            .map(|c| {
                c.figures
                    .iter()
                    .filter(|f| f.label == "orphan_exclusive")
                    .map(|f| f.value)
                    .sum()
            })
            .unwrap_or(0.0);
        e.gauge(
            "dockroot_docker_orphaned_bytes",
            "Bytes only the orphaned layer subvolumes hold (qgroup exclusive; 0 without quotas).",
            &[],
            bytes,
        );
    }
    // Per image store: the graph driver's layer subvolumes and containerd's snapshots.
    for (store, check) in [
        ("graphdriver", "docker.orphans"),
        ("containerd", "containerd.orphans"),
    ] {
        if let Some(n) = figure(check, "orphans") {
            e.gauge(
                "dockroot_store_orphaned_subvolumes",
                "Subvolumes of an image store nothing references (graph driver layers; containerd snapshots without a record, and rm-* leftovers).",
                &[("store", store)],
                n,
            );
        }
    }
    if let Some(n) = figure("containerd.orphans", "snapshot_subvolumes") {
        e.gauge(
            "dockroot_store_subvolumes",
            "Snapshot subvolumes of containerd's btrfs snapshotter.",
            &[("store", "containerd")],
            n,
        );
    }
    if let Some(n) = figure("containerd.roots", "roots_off_filesystem") {
        e.gauge(
            "dockroot_store_roots_off_filesystem",
            "Roots of the containerd image store (containerd's root, content store, btrfs snapshotter root) not on this filesystem.",
            &[("store", "containerd")],
            n,
        );
    }
    if let Some(n) = figure("containerd.orphans", "missing_snapshots") {
        e.gauge(
            "dockroot_store_missing_subvolumes",
            "Snapshot records of containerd's btrfs snapshotter whose subvolume is gone.",
            &[("store", "containerd")],
            n,
        );
    }
    if let Some(v) = figure("lvm.fs-fills-lv", "lv_size") {
        e.gauge(
            "dockroot_lvm_lv_size_bytes",
            "Size of the LV under the filesystem.",
            &[],
            v,
        );
    }
    if let Some(v) = figure("lvm.vg-free", "vg_free") {
        e.gauge(
            "dockroot_lvm_vg_free_bytes",
            "Free bytes in the LV's volume group (room to grow).",
            &[],
            v,
        );
    }
}

/// The textfile's name in the collector directory.
pub fn textfile_name() -> &'static str {
    "dockroot.prom"
}

/// Writes the exposition to `dir/dockroot.prom` atomically (a temporary file in `dir`, then a
/// rename), as node_exporter's textfile collector wants it.
pub fn write_textfile(dir: &Path, e: &Exposition) -> std::io::Result<PathBuf> {
    let path = dir.join(textfile_name());
    opskit::write_atomically(&path, e.render().as_bytes(), 0o644)?;
    Ok(path)
}
