//! The scenarios: each builds its filesystem once, clones it, and alternates ours (A) with
//! btrfs-progs (B), pair by pair.

use crate::fsbuild::{self, chunk_counts, same_end_state, show_counts, ChunkCounts, Template, MIB};
use crate::measure::{self, check_stop, BenchResult, Pair, Sample};
use crate::progs;
use btrfs_kit::balance::{Balance, BalanceHandle, ChunkFilters, DailyPolicy};
use btrfs_kit::{Filesystem, Profile};
use std::time::Duration;
use testkit::fixture::BtrfsOptions;

const GIB: u64 = 1 << 30;

/// What a row is expected to show.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// btrfs-progs takes at least this many times as long.
    AtLeast(f64),
    /// At least this many times, and ours under this per call.
    AtLeastUnder(f64, Duration),
    /// The two within this many percent of each other (kernel-bound).
    Within(f64),
    /// No target: reported for the record.
    None,
}

/// One row of the table.
pub struct Row {
    /// Short name.
    pub scenario: String,
    /// The filesystem and what each side ran.
    pub detail: String,
    /// The measured pairs.
    pub pairs: Vec<Pair>,
    /// The target.
    pub target: Target,
    /// The end state both sides reached (relocating rows), checked equal.
    pub end_state: Option<String>,
}

/// Run settings.
pub struct Config {
    /// One short iteration of each scenario, small filesystems.
    pub smoke: bool,
    /// Pairs per scenario instead of each scenario's default.
    pub pairs: Option<usize>,
    /// Relocating scenarios: run every second pair btrfs-progs first (A B, B A, ...), so that
    /// a bias of the first or second run of a pair cancels out.
    pub abba: bool,
}

impl Config {
    pub(crate) fn pairs(&self, default: usize) -> usize {
        if self.smoke {
            1
        } else {
            self.pairs.unwrap_or(default)
        }
    }

    /// `full` normally, `smoke` in smoke mode.
    pub(crate) fn pick<T>(&self, full: T, smoke: T) -> T {
        if self.smoke {
            smoke
        } else {
            full
        }
    }

    /// Calls per timed batch for the micro rows.
    pub fn batch(&self, full: u32) -> u32 {
        self.pick(full, 10)
    }
}

fn default_options() -> BtrfsOptions {
    BtrfsOptions::default()
}

/// The template shared by the no-op balance and the two query rows.
pub fn quiet_template(config: &Config) -> BenchResult<Template> {
    Template::build(
        GIB,
        default_options(),
        fsbuild::no_empty_chunks(config.pick(256, 64) * MIB),
    )
}

/// Scenario 1, the daily no-op: `usage=0` on a filesystem with no empty chunk. The layout does
/// not change, so each side keeps one clone for all its runs.
pub fn noop_balance(config: &Config, template: &Template) -> BenchResult<Vec<Row>> {
    let a = template.clone_mounted()?;
    let b = template.clone_mounted()?;
    let c = template.clone_mounted()?;
    let request = Balance::new().data(ChunkFilters::usage_below(0));
    let mut pairs = Vec::new();
    let mut checked_first = Vec::new();
    let commits_before = [a.path(), b.path()]
        .iter()
        .map(|p| fsbuild::commit_stats(&Filesystem::open(p)?))
        .collect::<BenchResult<Vec<_>>>()?;
    for _ in 0..config.pairs(20) {
        check_stop()?;
        let (ours, relocated) = measure::ours(1, || {
            let fs = Filesystem::open(a.path())?;
            Ok(fs.balance(&request)?.relocated())
        })?;
        let (progs, progs_relocated) = measure::progs(
            &["balance", "start", "-dusage=0"],
            b.path(),
            progs::balance_done,
        )?;
        let (checked, checked_relocated) = measure::ours(1, || {
            let fs = Filesystem::open(c.path())?;
            let candidates = fs.balance_candidates(&request)?;
            Ok(if candidates != Some(0) {
                fs.balance(&request)?.relocated()
            } else {
                0
            })
        })?;
        if (relocated, progs_relocated, checked_relocated) != (0, 0, 0) {
            return Err(format!(
                "no-op balance relocated chunks: ours {relocated}, btrfs-progs {progs_relocated}, checked first {checked_relocated}"
            )
            .into());
        }
        pairs.push(Pair { ours, progs });
        checked_first.push(Pair {
            ours: checked,
            progs,
        });
    }
    let runs = pairs.len() as f64;
    let mut commits = Vec::new();
    for (path, (n0, ms0)) in [a.path(), b.path()].iter().zip(&commits_before) {
        let (n1, ms1) = fsbuild::commit_stats(&Filesystem::open(path)?)?;
        commits.push(((n1 - n0) as f64 / runs, (ms1 - ms0) as f64 / runs));
    }
    let end = chunk_counts(a.path())?;
    same_end_state("no-op balance", &end, &chunk_counts(b.path())?)?;
    same_end_state("no-op balance (checked)", &end, &chunk_counts(c.path())?)?;
    Ok(vec![
        Row {
            scenario: "no-op balance `-dusage=0`".into(),
            detail: format!(
                "{}; ours: open + BALANCE_V2; btrfs-progs: `btrfs balance start -dusage=0`, output parsed. \
                 The kernel commits the transaction to record the balance item and again to delete it: \
                 per balance {:.1} commits taking {:.1} ms (ours) and {:.1} commits taking {:.1} ms (btrfs-progs), from /sys/fs/btrfs/FSID/commit_stats",
                template.description, commits[0].0, commits[0].1, commits[1].0, commits[1].1
            ),
            pairs,
            target: Target::AtLeast(20.0),
            end_state: Some(show_counts(&end)),
        },
        Row {
            scenario: "no-op balance, block groups read first".into(),
            detail: "same; ours reads the block groups (TREE_SEARCH) and calls BALANCE_V2 only when a data chunk is empty; btrfs-progs' pairs are the row above's".into(),
            pairs: checked_first,
            target: Target::AtLeast(20.0),
            end_state: Some(show_counts(&end)),
        },
    ])
}

/// Runs `request` through both sides on fresh clones, `pairs` times; checks that both relocate
/// the same number of chunks and end with the same chunk counts.
fn relocating(
    config: &Config,
    template: &Template,
    default_pairs: usize,
    requests: &[Balance],
    progs_args: &[Vec<&str>],
) -> BenchResult<(Vec<Pair>, String)> {
    let run_ours = || -> BenchResult<(Sample, Vec<u64>, ChunkCounts)> {
        check_stop()?;
        let a = template.clone_mounted()?;
        let (sample, relocated) = measure::ours(1, || {
            let fs = Filesystem::open(a.path())?;
            requests
                .iter()
                .map(|r| Ok(fs.balance(r)?.relocated()))
                .collect::<BenchResult<Vec<u64>>>()
        })?;
        let end = chunk_counts(a.path())?;
        drop(a);
        fsbuild::settle();
        Ok((sample, relocated, end))
    };
    let run_progs = || -> BenchResult<(Sample, Vec<u64>, ChunkCounts)> {
        check_stop()?;
        let b = template.clone_mounted()?;
        let (sample, relocated) = measure::progs_seq(progs_args, b.path(), progs::balance_done)?;
        let end = chunk_counts(b.path())?;
        drop(b);
        fsbuild::settle();
        Ok((sample, relocated, end))
    };
    let mut pairs = Vec::new();
    let mut end = String::new();
    for i in 0..config.pairs(default_pairs) {
        let ((ours, ours_relocated, ours_end), (progs, progs_relocated, progs_end)) =
            if config.abba && i % 2 == 1 {
                let b = run_progs()?;
                (run_ours()?, b)
            } else {
                let a = run_ours()?;
                (a, run_progs()?)
            };
        if ours_relocated != progs_relocated {
            return Err(format!(
                "{progs_args:?}: relocated chunks differ: ours {ours_relocated:?}, btrfs-progs {progs_relocated:?}"
            )
            .into());
        }
        same_end_state(&format!("{progs_args:?}"), &ours_end, &progs_end)?;
        end = format!(
            "{} (relocated {:?} chunks each)",
            show_counts(&ours_end),
            ours_relocated
        );
        pairs.push(Pair { ours, progs });
    }
    Ok((pairs, end))
}

/// Scenario 2, the daily policy: the example's default steps vs the same `btrfs balance start` calls.
pub fn daily_policy(config: &Config) -> BenchResult<Vec<Row>> {
    let template = Template::build(
        config.pick(2 * GIB, GIB),
        default_options(),
        fsbuild::policy_shaped(config.pick(1200, 600) * MIB),
    )?;
    let steps = DailyPolicy::default().steps();
    let requests: Vec<Balance> = steps.iter().map(|s| s.request.clone()).collect();
    let texts: Vec<String> = requests.iter().map(|r| r.to_string()).collect();
    let args: Vec<Vec<&str>> = texts
        .iter()
        .map(|t| {
            ["balance", "start"]
                .into_iter()
                .chain(t.split(' '))
                .collect()
        })
        .collect();
    let (pairs, end) = relocating(config, &template, 10, &requests, &args)?;
    Ok(vec![Row {
        scenario: "daily policy (5 steps)".into(),
        detail: format!(
            "{}; ours: DailyPolicy::default() steps ({}); btrfs-progs: one `btrfs balance start` per step",
            template.description,
            texts.join(", ")
        ),
        pairs,
        target: Target::None,
        end_state: Some(end),
    }])
}

/// Scenario 3, real relocation (`-dusage=50` on half-empty chunks), then a full balance.
pub fn relocation(config: &Config) -> BenchResult<Vec<Row>> {
    let thinned = Template::build(
        config.pick(5 * GIB, GIB),
        default_options(),
        fsbuild::thinned(config.pick(1100, 96) * MIB),
    )?;
    let request = Balance::new().data("usage=50".parse::<ChunkFilters>()?);
    let (pairs, end) = relocating(
        config,
        &thinned,
        7,
        std::slice::from_ref(&request),
        &[vec!["balance", "start", "-dusage=50"]],
    )?;
    let mut rows = vec![Row {
        scenario: "real relocation `-dusage=50`".into(),
        detail: format!(
            "{}; ours: BALANCE_V2; btrfs-progs: `btrfs balance start -dusage=50`",
            thinned.description
        ),
        pairs,
        target: Target::Within(2.0),
        end_state: Some(end),
    }];
    drop(thinned);
    let packed = Template::build(
        config.pick(3 * GIB, GIB),
        default_options(),
        fsbuild::packed(config.pick(1024, 64) * MIB),
    )?;
    let (pairs, end) = relocating(
        config,
        &packed,
        7,
        &[Balance::full()],
        &[vec!["balance", "start", "--full-balance"]],
    )?;
    rows.push(Row {
        scenario: "full balance".into(),
        detail: format!(
            "{}; ours: Balance::full(); btrfs-progs: `btrfs balance start --full-balance`",
            packed.description
        ),
        pairs,
        target: Target::Within(2.0),
        end_state: Some(end),
    });
    Ok(rows)
}

/// Scenario 4, convert metadata DUP → single.
pub fn convert(config: &Config) -> BenchResult<Vec<Row>> {
    let template = Template::build(
        GIB,
        BtrfsOptions {
            metadata: Some("dup".into()),
            ..default_options()
        },
        fsbuild::small_files(config.pick(20_000, 2_000)),
    )?;
    let request = Balance::new()
        .metadata(ChunkFilters::convert(Profile::Single, false))
        .force(true);
    let (pairs, end) = relocating(
        config,
        &template,
        5,
        std::slice::from_ref(&request),
        &[vec!["balance", "start", "-mconvert=single", "-f"]],
    )?;
    if end.contains("Metadata/DUP") || !end.contains("Metadata/single") {
        return Err(format!("convert did not convert: {end}").into());
    }
    Ok(vec![Row {
        scenario: "convert metadata DUP → single".into(),
        detail: format!(
            "{}; ours: `-mconvert=single -f` as a Balance; btrfs-progs: `btrfs balance start -mconvert=single -f`",
            template.description
        ),
        pairs,
        target: Target::None,
        end_state: Some(end),
    }])
}

/// A full data balance kept running in the background; cancelled and joined on drop.
struct Running<'a> {
    fs: &'a Filesystem,
    handle: Option<BalanceHandle>,
    started: usize,
}

impl Running<'_> {
    /// Starts a new balance when none runs, and waits until the kernel reports it running.
    fn ensure(&mut self) -> BenchResult<()> {
        if self.handle.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        if let Some(done) = self.handle.take() {
            done.wait()?;
        }
        let handle = self
            .fs
            .balance_background(&Balance::new().data(ChunkFilters::all()))?;
        self.started += 1;
        let running = handle.wait_running(Duration::from_secs(10))?;
        self.handle = Some(handle);
        if !running {
            return Err("the background balance did not start within 10 s".into());
        }
        Ok(())
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            if !handle.is_finished() {
                let _ = handle.cancel();
            }
            let _ = handle.wait();
        }
    }
}

/// Scenario 5, status poll while a balance runs: BALANCE_PROGRESS vs `btrfs balance status`.
pub fn status_poll(config: &Config) -> BenchResult<Vec<Row>> {
    let template = Template::build(
        config.pick(2 * GIB, GIB),
        default_options(),
        fsbuild::packed(config.pick(512, 128) * MIB),
    )?;
    let scratch = template.clone_mounted()?;
    let fs = Filesystem::open(scratch.path())?;
    let mut pairs = Vec::new();
    let (mut ours_saw, mut progs_saw) = (0, 0);
    {
        let mut running = Running {
            fs: &fs,
            handle: None,
            started: 0,
        };
        for _ in 0..config.pairs(30) {
            check_stop()?;
            running.ensure()?;
            let (ours, status) = measure::ours(config.batch(200), || Ok(fs.balance_status()?))?;
            let (progs, report) =
                measure::progs(&["balance", "status"], scratch.path(), progs::status)?;
            ours_saw += usize::from(status.is_some_and(|s| s.running));
            progs_saw += usize::from(report.is_some_and(|s| s.running));
            pairs.push(Pair { ours, progs });
        }
        if ours_saw == 0 || progs_saw == 0 {
            return Err(format!(
                "status poll: a running balance was seen by ours {ours_saw} and btrfs-progs {progs_saw} times of {}",
                pairs.len()
            )
            .into());
        }
    }
    Ok(vec![Row {
        scenario: "status poll".into(),
        detail: format!(
            "{}, a full data balance running; ours: `balance_status()` (BALANCE_PROGRESS) on an open handle, batches of {}; btrfs-progs: `btrfs balance status`, output parsed; running seen by ours {ours_saw}/{n}, btrfs-progs {progs_saw}/{n}",
            template.description,
            config.batch(200),
            n = pairs.len()
        ),
        pairs,
        target: Target::AtLeast(50.0),
        end_state: None,
    }])
}

/// Scenarios 6 and 7, space info and device usage on one clone (read-only queries).
pub fn queries(
    config: &Config,
    template: &Template,
    space: bool,
    usage: bool,
) -> BenchResult<Vec<Row>> {
    let scratch = template.clone_mounted()?;
    let fs = Filesystem::open(scratch.path())?;
    let mut rows = Vec::new();
    if space {
        // Both sides must see the same figures.
        let ours = fs.space_info()?;
        let run = measure::spawn_btrfs(&["filesystem", "df", "-b"], scratch.path())?;
        let theirs = progs::df(&run)?;
        for line in &theirs {
            let found = ours.iter().any(|s| {
                s.total.bytes() == line.total
                    && s.used.bytes() == line.used
                    && s.kind.to_string() == line.kind
            });
            if !found {
                return Err(
                    format!("space info: btrfs-progs' {line:?} is not in ours: {ours:?}").into(),
                );
            }
        }
        let mut pairs = Vec::new();
        for _ in 0..config.pairs(30) {
            check_stop()?;
            let (ours, _) = measure::ours(config.batch(1000), || Ok(fs.space_info()?))?;
            let (progs, _) =
                measure::progs(&["filesystem", "df", "-b"], scratch.path(), progs::df)?;
            pairs.push(Pair { ours, progs });
        }
        rows.push(Row {
            scenario: "space info".into(),
            detail: format!(
                "{}; ours: `space_info()` (SPACE_INFO twice: count, then entries) on an open handle, batches of {}; btrfs-progs: `btrfs filesystem df -b`, output parsed",
                template.description,
                config.batch(1000)
            ),
            pairs,
            target: Target::AtLeastUnder(100.0, Duration::from_micros(10)),
            end_state: None,
        });
    }
    if usage {
        let ours = fs.usage()?;
        let run = measure::spawn_btrfs(&["filesystem", "usage", "-b"], scratch.path())?;
        let theirs = progs::usage(&run)?;
        let expect = [
            ("Device size", ours.device_size.bytes()),
            ("Device unallocated", ours.device_unallocated.bytes()),
            ("Device allocated", ours.device_allocated.bytes()),
        ];
        for (name, value) in expect {
            if theirs.overall.get(name) != Some(&value) {
                return Err(format!(
                    "device usage: {name} is {value} for us, {:?} for btrfs-progs",
                    theirs.overall.get(name)
                )
                .into());
            }
        }
        for section in &theirs.sections {
            let device_bytes: u64 = section.devices.iter().map(|d| d.1).sum();
            let (size, used, bytes) = if section.name == "Unallocated" {
                (0, 0, ours.device_unallocated.bytes())
            } else {
                let space = ours
                    .space
                    .iter()
                    .find(|s| {
                        format!("{},{}", s.kind, s.profile).eq_ignore_ascii_case(&section.name)
                    })
                    .ok_or_else(|| format!("device usage: no {} in ours", section.name))?;
                let allocated: u64 = ours
                    .devices
                    .iter()
                    .flat_map(|d| &d.allocated)
                    .filter(|a| a.kind == space.kind && a.profile == space.profile)
                    .map(|a| a.bytes.bytes())
                    .sum();
                (space.total.bytes(), space.used.bytes(), allocated)
            };
            if (size, used, bytes) != (section.size, section.used, device_bytes) {
                return Err(format!(
                    "device usage: {} is {size}/{used}/{bytes} for us, {}/{}/{device_bytes} for btrfs-progs",
                    section.name, section.size, section.used
                )
                .into());
            }
        }
        let mut pairs = Vec::new();
        for _ in 0..config.pairs(30) {
            check_stop()?;
            let (ours, _) = measure::ours(config.batch(100), || Ok(fs.usage()?))?;
            let (progs, _) =
                measure::progs(&["filesystem", "usage", "-b"], scratch.path(), progs::usage)?;
            pairs.push(Pair { ours, progs });
        }
        rows.push(Row {
            scenario: "device usage".into(),
            detail: format!(
                "{}; ours: `usage()` (chunk tree TREE_SEARCH, FS_INFO, DEV_INFO and the block device size (open + BLKGETSIZE64) per device, SPACE_INFO) on an open handle, batches of {}; btrfs-progs: `btrfs filesystem usage -b`, output parsed",
                template.description,
                config.batch(100)
            ),
            pairs,
            target: Target::AtLeast(50.0),
            end_state: None,
        });
    }
    Ok(rows)
}
