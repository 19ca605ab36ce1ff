//! The defragmentation dry run over 10 000 files vs `filefrag` (e2fsprogs) over the same files,
//! and over 100 000 small files (the per-file cost and the heap at scale).
//!
//! Ours streams the tree (per directory: open, getdents64, statx per subdirectory; per file:
//! openat relative to the directory, fstat, one FS_IOC_FIEMAP into a reused buffer, close),
//! judging shared extents and defrag targets extent by extent. `filefrag` is given the file list
//! ready-made (one process, every path as an argument; batches of 10 000 paths, one process
//! each, where the list is longer than a command line may be), once plain (extent counts) and
//! once with `-v` (every extent with its flags, which is what tells shared extents apart). Both
//! read the same mounted clone; the dry run changes nothing. Each row first checks that both
//! sides counted the same extents.

use crate::fsbuild::{Template, MIB};
use crate::measure::{self, check_stop, BenchResult, Pair, ProgsRun, Sample};
use crate::scenarios::{Config, Row, Target};
use btrfs_kit::defrag::{self, DefragOptions, WalkOptions};
use btrfs_kit::Filesystem;
use std::collections::BTreeMap;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use testkit::fixture::{BtrfsOptions, Scratch};

/// Paths per `filefrag` process: well inside the kernel's limit on a command line (a quarter
/// of the stack limit, 2 MiB by default).
const FILEFRAG_BATCH: usize = 10_000;

/// Files of the tree: `count` in 100 directories, sizes 4–124 KiB; every tenth written in four
/// pieces interleaved with another file (fsync between) so it is fragmented; the last quarter
/// are reflinked copies (`cp --reflink=always`) of the first quarter, so their extents are shared.
fn populate(count: u64) -> impl FnOnce(&Scratch, &Filesystem) -> BenchResult<String> {
    move |scratch, fs| {
        let root = scratch.path();
        let originals = count - count / 4;
        for d in 0..100 {
            std::fs::create_dir(root.join(format!("d{d:03}")))?;
        }
        let path = |i: u64| root.join(format!("d{:03}/f{i:06}", i % 100));
        let mut fragmented = 0;
        for i in 0..originals {
            let size = 4096 * (1 + i % 31) as usize;
            if i % 10 == 0 && i + 1 < originals {
                // Four pieces each, interleaved with file i + 1.
                let (mut a, mut b) = (
                    std::fs::File::create(path(i))?,
                    std::fs::File::create(path(i + 1))?,
                );
                let piece = vec![(i % 251) as u8; 16 * 1024];
                for _ in 0..4 {
                    a.write_all(&piece)?;
                    a.sync_all()?;
                    b.write_all(&piece)?;
                    b.sync_all()?;
                }
                fragmented += 2;
            } else if i % 10 != 1 {
                std::fs::write(path(i), vec![(i % 251) as u8; size])?;
            }
        }
        fs.sync()?;
        for i in 0..count / 4 {
            let copy = root.join(format!("d{:03}/c{i:06}", i % 100));
            let out = Command::new("cp")
                .arg("--reflink=always")
                .arg(path(i))
                .arg(&copy)
                .output()?;
            if !out.status.success() {
                return Err(format!(
                    "cp --reflink=always: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
                .into());
            }
        }
        fs.sync()?;
        Ok(format!(
            "{count} files in 100 directories (4–124 KiB; {fragmented} written in 4 interleaved pieces; {} reflinked copies, so {} files share extents)",
            count / 4,
            2 * (count / 4)
        ))
    }
}

/// `count` files of 4 KiB in 100 directories, written without fsync (one extent each, nothing
/// shared): the walk and the per-file calls dominate, and the heap shows whether the walk keeps
/// every path.
fn populate_small(count: u64) -> impl FnOnce(&Scratch, &Filesystem) -> BenchResult<String> {
    move |scratch, _| {
        let root = scratch.path();
        for d in 0..100 {
            std::fs::create_dir(root.join(format!("d{d:03}")))?;
        }
        for i in 0..count {
            std::fs::write(
                root.join(format!("d{:03}/s{i:06}", i % 100)),
                [(i % 251) as u8; 4096],
            )?;
        }
        Ok(format!(
            "{count} files of 4 KiB in 100 directories (one extent each, nothing shared)"
        ))
    }
}

/// Per-file extent counts from plain `filefrag` ("PATH: N extents found").
fn filefrag_counts(run: &ProgsRun) -> BenchResult<BTreeMap<PathBuf, u64>> {
    run.expect_code(&[0])?;
    let mut counts = BTreeMap::new();
    for line in run.stdout.lines() {
        let (path, rest) = line
            .rsplit_once(": ")
            .ok_or_else(|| format!("filefrag line {line:?}"))?;
        let n = rest
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("filefrag line {line:?}"))?;
        counts.insert(PathBuf::from(path), n);
    }
    Ok(counts)
}

/// Extent lines and shared extents in `filefrag -v` output.
fn filefrag_verbose(run: &ProgsRun) -> BenchResult<(u64, u64)> {
    run.expect_code(&[0])?;
    let extents = run
        .stdout
        .lines()
        .filter(|l| {
            l.split(':')
                .next()
                .is_some_and(|n| n.trim().parse::<u64>().is_ok())
        })
        .collect::<Vec<_>>();
    let shared = extents.iter().filter(|l| l.contains("shared")).count();
    Ok((extents.len() as u64, shared as u64))
}

/// The regular files under `root`, for filefrag's command line.
fn files_of(root: &Path) -> BenchResult<Vec<PathBuf>> {
    Ok(defrag::walk(root, &WalkOptions::default())?
        .files
        .into_iter()
        .map(|(p, _)| p)
        .collect())
}

/// `filefrag ARGS` over `operands` in batches of [`FILEFRAG_BATCH`], each parsed with
/// `parse`: one sample (the runs' spawn-to-reap times and the parses, CPU summed, the largest
/// peak RSS) and the parses.
fn filefrag<T>(
    args: &[&str],
    operands: &[&std::ffi::OsStr],
    parse: impl Fn(&ProgsRun) -> BenchResult<T>,
) -> BenchResult<(Sample, Vec<T>)> {
    let mut sample = Sample::default();
    let mut parsed = Vec::new();
    for batch in operands.chunks(FILEFRAG_BATCH) {
        let run = measure::spawn_program("filefrag", args, batch)?;
        let start = Instant::now();
        parsed.push(parse(&run)?);
        sample.wall += run.wall + start.elapsed();
        sample.cpu += run.cpu;
        sample.add_progs_peak(&run);
    }
    Ok((sample, parsed))
}

/// The dry run over the files under `root` against `filefrag` (and with `verbose`,
/// `filefrag -v`) over the same files, after checking that both count the same extents:
/// the rows, named after `what`.
fn compare(
    config: &Config,
    template: &Template,
    what: &str,
    count: u64,
    verbose: bool,
    pairs: usize,
) -> BenchResult<Vec<Row>> {
    let clone = template.clone_mounted()?;
    let root = clone.path();
    let files = files_of(root)?;
    if files.len() as u64 != count {
        return Err(format!("the walk found {} files, the tree has {count}", files.len()).into());
    }
    let operands: Vec<&std::ffi::OsStr> = files.iter().map(|p| p.as_os_str()).collect();
    let options = DefragOptions::default();
    let dry_run = || -> BenchResult<_> {
        Ok(
            defrag::plan_tree(root, &options, &WalkOptions::default(), |_, _| {
                ControlFlow::Continue(())
            })?
            .totals,
        )
    };
    // Untimed first round: both sides must agree (and the caches are warm for both after it).
    let mut per_file = BTreeMap::new();
    let totals = defrag::plan_tree(root, &options, &WalkOptions::default(), |o, _| {
        if let Some(p) = o.plan() {
            per_file.insert(p.path.clone(), p.extents);
        }
        ControlFlow::Continue(())
    })?
    .totals;
    let (_, batches) = filefrag(&[], &operands, filefrag_counts)?;
    let theirs: BTreeMap<PathBuf, u64> = batches.into_iter().flatten().collect();
    if per_file != theirs {
        let differ = per_file
            .iter()
            .filter(|(p, n)| theirs.get(*p) != Some(n))
            .take(3)
            .collect::<Vec<_>>();
        return Err(format!("extent counts differ from filefrag's, e.g. {differ:?}").into());
    }
    let sum = |batches: Vec<(u64, u64)>| {
        batches
            .into_iter()
            .fold((0, 0), |(l, s), (bl, bs)| (l + bl, s + bs))
    };
    if verbose {
        let (lines, shared) = sum(filefrag(&["-v"], &operands, filefrag_verbose)?.1);
        if (lines, shared) != (totals.extents, totals.shared_extents) {
            return Err(format!(
                "filefrag -v lists {lines} extents ({shared} shared), ours {} ({} shared)",
                totals.extents, totals.shared_extents
            )
            .into());
        }
    }
    let summary = format!(
        "{} files, {} extents, {} shared, {} would be unshared",
        totals.files, totals.extents, totals.shared_extents, totals.would_unshare
    );
    let mut plain = Vec::new();
    let mut with_flags = Vec::new();
    for _ in 0..config.pairs(pairs) {
        check_stop()?;
        let (ours, _) = measure::ours(1, dry_run)?;
        let (progs, _) = filefrag(&[], &operands, filefrag_counts)?;
        plain.push(Pair { ours, progs });
        if verbose {
            let (ours, _) = measure::ours(1, dry_run)?;
            let (progs, _) = filefrag(&["-v"], &operands, filefrag_verbose)?;
            with_flags.push(Pair { ours, progs });
        }
    }
    let processes = files.len().div_ceil(FILEFRAG_BATCH);
    let given = if processes == 1 {
        "one process given every path".to_string()
    } else {
        format!("{processes} processes given {FILEFRAG_BATCH} paths each")
    };
    let detail = format!(
        "{}; ours: `defrag::plan_tree` (streamed walk + FIEMAP per file, shared extents and targets judged); both found {summary}",
        template.description
    );
    let mut rows = vec![Row {
        scenario: format!("defrag dry run, {what}, vs `filefrag`"),
        detail: format!("{detail}; filefrag: {given}, extent counts parsed (checked equal to ours per file in an untimed first round)"),
        pairs: plain,
        target: Target::None,
        end_state: None,
    }];
    if verbose {
        rows.push(Row {
            scenario: format!("defrag dry run, {what}, vs `filefrag -v`"),
            detail: format!("{detail}; `filefrag -v`: {given}, every extent with its flags (needed to see shared extents), parsed (totals checked equal to ours first)"),
            pairs: with_flags,
            target: Target::None,
            end_state: None,
        });
    }
    Ok(rows)
}

/// The scenario's rows.
pub fn defrag_dry_run(config: &Config) -> BenchResult<Vec<Row>> {
    let count = config.pick(10_000, 400);
    let template = Template::build(2048 * MIB, BtrfsOptions::default(), populate(count))?;
    let mut rows = compare(
        config,
        &template,
        &format!("{count} files"),
        count,
        true,
        10,
    )?;
    drop(template);
    let many = config.pick(100_000, 1_000);
    let template = Template::build(1536 * MIB, BtrfsOptions::default(), populate_small(many))?;
    rows.extend(compare(
        config,
        &template,
        &format!("{many} files of 4 KiB"),
        many,
        false,
        5,
    )?);
    Ok(rows)
}
