//! The upkeep on real device-mapper, in the QEMU guest of `.ci/lvm-vm.sh` (this machine has no
//! device-mapper): auto-grow, and a day of upkeep started from the installed units.
//!
//! On the host this is one root test, `upkeep_vm::in_qemu`: it boots the guest with a 4 GiB
//! scratch disk and runs this same test binary inside, where `LVM_KIT_VM_DISK` names the disk:
//!
//! * auto-grow: a 512 MiB LV filled past 80 % → `maintain` grows the LV by the step (at least
//!   1 GiB, capped by `grow_max`) and the filesystem online; at the maximum it reports and
//!   changes nothing (exit 1); with the VG full (another LV holds every free extent) likewise;
//! * a day of upkeep: `install-units` writes the units, the timer's service is started by hand
//!   as systemd would start it (its `ExecStart` with `%f` filled in, under `ionice -c 3` and
//!   `chrt --idle` for `IOSchedulingClass=idle` and `CPUSchedulingPolicy=idle`, stdout as the
//!   journal reads it), and the metrics file it leaves shows what was done.
//!
//! The host test keeps the guest's transcript in `target/tmp/upkeep-vm-transcript.txt`.

#[path = "support/prom.rs"]
#[allow(dead_code)]
mod prom;
#[path = "support/scratch_vg.rs"]
mod scratch_vg;

use lvm_kit::{LvCreate, LvmBackend};
use scratch_vg::{out_text, ScratchVg};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use testkit::ensure;
use testkit::harness::{ctx, Failed};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn dockroot() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dockroot"))
}

/// A VG on the guest's disk, a provisioned 512 MiB LV mounted in a private environment; all
/// removed on drop.
struct Guest {
    scratch: ScratchVg,
}

impl Guest {
    fn new(disk: &Path, vg: &str, extra_config: &str) -> Result<Guest, Failed> {
        let g = Guest {
            scratch: ScratchVg::new(disk, vg, "upkeep-vm-")?,
        };
        let r = g.root().display().to_string();
        std::fs::create_dir_all(g.root().join("etc/docker"))?;
        std::fs::write(
            g.config(),
            format!(
                "[maintain]\nstate_dir = \"{r}/var/lib/dockroot\"\nlock_dir = \"{r}/run/dockroot\"\n{extra_config}\n\
                 [paths]\nscrub_state_dir = \"{r}/var/lib/btrfs-kit\"\nunit_dir = \"/etc/systemd/system\"\n\
                 [docker]\nconfig_dir = \"{r}/etc/docker\"\nsocket = \"{r}/run/docker.sock\"\npidfile = \"{r}/run/docker.pid\"\n\
                 [lvm]\ndevices = [\"{}\"]\n",
                disk.display()
            ),
        )?;
        let mp = g.mount_point();
        let out = g.run(&[
            "--unit-dir",
            g.root().join("units").to_str().ok_or("path")?,
            "--fstab-file",
            g.root().join("fstab").to_str().ok_or("path")?,
            "provision",
            "--vg",
            vg,
            "--size",
            "512m",
            "--mount",
            mp.to_str().ok_or("path")?,
        ])?;
        ensure!(out.status.success(), "provision: {}", out_text(&out));
        Ok(g)
    }

    fn root(&self) -> &Path {
        self.scratch.root()
    }

    fn config(&self) -> PathBuf {
        self.root().join("dockroot.toml")
    }

    fn mount_point(&self) -> PathBuf {
        self.root().join("var/lib/docker")
    }

    /// `dockroot --config C ARGS`.
    fn run(&self, args: &[&str]) -> Result<Output, Failed> {
        Ok(Command::new(dockroot())
            .arg("--config")
            .arg(self.config())
            .args(args)
            .stdin(Stdio::null())
            .output()?)
    }

    /// `maintain MP --json ARGS`: exit code and JSON lines.
    fn maintain(&self, args: &[&str]) -> Result<(i32, Vec<serde_json::Value>, Output), Failed> {
        let mp = self.mount_point();
        let mut all = vec!["maintain", mp.to_str().ok_or("path")?, "--json"];
        all.extend_from_slice(args);
        let out = self.run(&all)?;
        let lines = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).map_err(|e| format!("{e}: {l}")))
            .collect::<Result<Vec<serde_json::Value>, _>>()?;
        Ok((out.status.code().unwrap_or(-1), lines, out))
    }

    fn lv_size(&self) -> Result<u64, Failed> {
        Ok(ctx("lvs", self.scratch.lvm.lv(&self.scratch.vg, "docker"))?
            .size
            .get())
    }

    fn fs_size(&self) -> Result<u64, Failed> {
        let fs = btrfs_kit::Filesystem::open(self.mount_point())?;
        Ok(fs.devices()?.iter().map(|d| d.total_bytes.bytes()).sum())
    }

    /// Writes 8 MiB files until data use reaches `ratio` of the capacity.
    fn fill_to(&self, ratio: f64) -> Result<f64, Failed> {
        let fs = btrfs_kit::Filesystem::open(self.mount_point())?;
        let block = vec![0x5Au8; 8 * MIB as usize];
        for i in 0..10_000 {
            fs.sync()?;
            let now = fs.fill()?.data_used_ratio;
            if now >= ratio {
                return Ok(now);
            }
            let mut f = std::fs::File::create(self.mount_point().join(format!("fill-{i}")))?;
            f.write_all(&block)?;
            f.sync_all()?;
        }
        Err("could not fill the filesystem".into())
    }
}

fn grow_task(lines: &[serde_json::Value]) -> Result<&serde_json::Value, Failed> {
    lines
        .iter()
        .find(|l| l["event"] == "task" && l["task"] == "grow")
        .ok_or_else(|| format!("no grow task: {lines:?}").into())
}

fn auto_grow_grows_by_the_step_then_stops_at_the_maximum(disk: &Path) -> Result<(), Failed> {
    let g = Guest::new(disk, "upkeepgrow", "")?;
    let lv0 = g.lv_size()?;
    ensure!(lv0 == 512 * MIB, "LV {lv0}");
    // Below the threshold: nothing, and no lvm2 call needed.
    let (code, l, out) = g.maintain(&["--only", "grow", "--grow-max", "1536m"])?;
    ensure!(
        code == 0 && grow_task(&l)?["outcome"] == "not-due",
        "{}",
        out_text(&out)
    );
    let used = g.fill_to(0.82)?;
    // Past 80 %: +max(10 %, 1 GiB) = +1 GiB, capped at grow_max 1.5 GiB.
    let (code, l, out) = g.maintain(&["--only", "grow", "--grow-max", "1536m"])?;
    let t = grow_task(&l)?;
    ensure!(
        code == 0 && t["outcome"] == "done",
        "at {used:.2}: {}",
        out_text(&out)
    );
    let (lv1, fs1) = (g.lv_size()?, g.fs_size()?);
    ensure!(
        lv1 == 1536 * MIB,
        "the LV grew to {lv1}, not by the 1 GiB step: {t}"
    );
    ensure!(fs1 == lv1, "the filesystem is {fs1}, the LV {lv1}");
    ensure!(
        t["figures"]["grown_bytes"].as_f64() == Some(GIB as f64),
        "{t}"
    );
    // At the maximum (a lower threshold makes it due again): reported, nothing changed.
    let (code, l, out) = g.maintain(&[
        "--only",
        "grow",
        "--grow-max",
        "1536m",
        "--grow-threshold",
        "10",
    ])?;
    let t = grow_task(&l)?;
    ensure!(
        code == 1
            && t["outcome"] == "needs-human"
            && t["summary"]
                .as_str()
                .is_some_and(|s| s.contains("at the maximum")),
        "{}",
        out_text(&out)
    );
    ensure!(
        g.lv_size()? == lv1 && g.fs_size()? == fs1,
        "changed at the maximum"
    );
    // The VG full: another LV takes every free extent.
    let vg = ctx("vg", g.scratch.lvm.vg(&g.scratch.vg))?;
    ctx(
        "lvcreate filler",
        g.scratch.lvm.lv_create(
            &g.scratch.vg,
            "filler",
            LvCreate::extents(vg.free_extent_count),
        ),
    )?;
    let (code, l, out) = g.maintain(&[
        "--only",
        "grow",
        "--grow-max",
        "3g",
        "--grow-threshold",
        "10",
    ])?;
    let t = grow_task(&l)?;
    ensure!(
        code == 1
            && t["outcome"] == "needs-human"
            && t["summary"].as_str().is_some_and(|s| s.contains("is full")),
        "{}",
        out_text(&out)
    );
    ensure!(
        g.lv_size()? == lv1 && g.fs_size()? == fs1,
        "changed with the VG full"
    );
    Ok(())
}

/// `ExecStart=` of a unit file, `%f` filled in with `path` and `%%` with `%`, split in words.
fn exec_start(unit: &str, path: &Path) -> Result<Vec<String>, Failed> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .ok_or("no ExecStart")?;
    Ok(line
        .split_whitespace()
        .map(|w| {
            w.replace("%f", &path.display().to_string())
                .replace("%%", "%")
        })
        .collect())
}

fn a_day_of_upkeep_from_the_installed_units(disk: &Path) -> Result<(), Failed> {
    let g = Guest::new(disk, "upkeepday", "grow_max = \"2g\"")?;
    let r = g.root().to_path_buf();
    let textfile = r.join("var/lib/prometheus/node-exporter");
    std::fs::create_dir_all(&textfile)?;
    let mut config = std::fs::read_to_string(g.config())?;
    config.push_str(&format!(
        "[metrics]\ntextfile_dir = \"{}\"\n",
        textfile.display()
    ));
    std::fs::write(g.config(), &config)?;
    let mut transcript = String::new();
    let mut say = |s: &str| {
        transcript.push_str(s);
        transcript.push('\n');
    };
    let mp = g.mount_point();
    let used = g.fill_to(0.85)?;
    say(&format!(
        "# {} filled to {:.1} % data used; LV {} MiB",
        mp.display(),
        used * 100.0,
        g.lv_size()? / MIB
    ));
    // install-units into a prefix.
    let prefix = r.join("prefix");
    let out = g.run(&[
        "install-units",
        mp.to_str().ok_or("path")?,
        "--prefix",
        prefix.to_str().ok_or("path")?,
    ])?;
    ensure!(out.status.success(), "{}", out_text(&out));
    say(&format!(
        "$ dockroot --config {} install-units {} --prefix {}",
        g.config().display(),
        mp.display(),
        prefix.display()
    ));
    say(String::from_utf8_lossy(&out.stdout).trim_end());
    let units = prefix.join("etc/systemd/system");
    let service = std::fs::read_to_string(units.join("dockroot-maintain@.service"))?;
    let timer = std::fs::read_to_string(units.join("dockroot-maintain@.timer"))?;
    let instance = dockroot::units::instance(&mp)?;
    ensure!(
        units
            .join(format!("timers.target.wants/{instance}.timer"))
            .symlink_metadata()
            .is_ok(),
        "the timer of {instance} is not enabled"
    );
    say(&format!(
        "$ cat dockroot-maintain@.timer\n{}",
        timer.trim_end()
    ));
    say(&format!(
        "$ cat dockroot-maintain@.service\n{}",
        service.trim_end()
    ));
    for needed in ["IOSchedulingClass=idle", "CPUSchedulingPolicy=idle"] {
        ensure!(service.contains(needed), "{needed}");
    }
    // The timer fires: systemd starts dockroot-maintain@<instance>.service, i.e. its ExecStart
    // with %f, idle I/O and CPU scheduling, stdout to the journal (JOURNAL_STREAM set).
    let words = exec_start(&service, &mp)?;
    say(&format!(
        "# the timer fires: {instance}.service starts\n$ ionice -c 3 chrt --idle 0 {}",
        words.join(" ")
    ));
    let lv0 = g.lv_size()?;
    let out = Command::new("ionice")
        .args(["-c", "3", "chrt", "--idle", "0"])
        .args(&words)
        .env("JOURNAL_STREAM", "8:12345")
        .stdin(Stdio::null())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    say(stdout.trim_end());
    say(&format!(
        "# exit status {}",
        out.status.code().unwrap_or(-1)
    ));
    ensure!(out.status.code() == Some(0), "{}", out_text(&out));
    ensure!(
        stdout.lines().all(|l| l.starts_with('<')),
        "a line without a priority prefix: {stdout}"
    );
    for needed in [
        "grow: done",
        "scrub: done",
        "trim: done",
        "balance: not-due",
    ] {
        ensure!(stdout.contains(needed), "no {needed:?} in {stdout}");
    }
    let lv1 = g.lv_size()?;
    ensure!(lv1 == lv0 + GIB && g.fs_size()? == lv1, "LV {lv0} -> {lv1}");
    // The metrics file it left.
    let prom_file = textfile.join("dockroot.prom");
    let metrics = std::fs::read_to_string(&prom_file)?;
    let parsed = prom::parse(&metrics)?;
    let value = |name: &str, labels: &[(&str, &str)]| {
        parsed
            .iter()
            .find(|((n, l), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| *v)
    };
    ensure!(
        value("dockroot_lvm_lv_size_bytes", &[]) == Some(lv1 as f64),
        "LV size in the metrics"
    );
    for t in ["grow", "scrub", "trim"] {
        ensure!(
            value(
                "dockroot_maintain_task_outcome",
                &[("task", t), ("outcome", "done")]
            ) == Some(1.0),
            "{t} in the metrics"
        );
    }
    ensure!(
        value("dockroot_maintain_last_exit_code", &[]) == Some(0.0),
        "exit code in the metrics"
    );
    say(&format!(
        "$ cat {}   # (LVM, upkeep outcomes, scrub, balance, some doctor checks)",
        prom_file.display()
    ));
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let keep = line.contains("lvm_")
            || line.starts_with("dockroot_maintain_last")
            || (line.starts_with("dockroot_maintain_task_outcome") && line.ends_with("} 1"))
            || line.starts_with("dockroot_btrfs_scrub_last")
            || line.starts_with("dockroot_btrfs_scrub_errors")
            || line.starts_with("dockroot_btrfs_unallocated")
            || line.starts_with("dockroot_btrfs_balance_running")
            || line.starts_with("dockroot_btrfs_balance_paused")
            || (line.starts_with("dockroot_check_status")
                && (line.contains("space.") || line.contains("health.") || line.contains("lvm.")));
        if keep {
            say(line);
        }
    }
    // The next day: nothing is due, nothing changes.
    let out = Command::new("ionice")
        .args(["-c", "3", "chrt", "--idle", "0"])
        .args(&words)
        .env("JOURNAL_STREAM", "8:12345")
        .stdin(Stdio::null())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    say("# the timer fires again the next day: nothing is due");
    say(stdout.trim_end());
    ensure!(out.status.code() == Some(0), "{}", out_text(&out));
    ensure!(
        !stdout.contains(": done:"),
        "work on the second day: {stdout}"
    );
    ensure!(g.lv_size()? == lv1, "grew again");
    testkit::vm::print_transcript(&transcript);
    Ok(())
}

const GUEST_TESTS: [(&str, testkit::vm::GuestTest); 2] = [
    (
        "upkeep_vm::guest::auto_grow_grows_by_the_step_then_stops_at_the_maximum",
        auto_grow_grows_by_the_step_then_stops_at_the_maximum,
    ),
    (
        "upkeep_vm::guest::a_day_of_upkeep_from_the_installed_units",
        a_day_of_upkeep_from_the_installed_units,
    ),
];

fn main() {
    testkit::vm::guest_tier_main(testkit::vm::GuestTier {
        host_trial: "upkeep_vm::in_qemu",
        workspace: Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        disk_size: Some("4G"),
        guest_trials: testkit::vm::guest_table(&GUEST_TESTS),
        transcript: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("upkeep-vm-transcript.txt")),
    })
}
