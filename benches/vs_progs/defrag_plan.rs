//! The defragmentation dry run over 10 000 files vs `filefrag` (e2fsprogs) over the same files.
//!
//! Ours walks the tree (readdir, lstat, statx per directory) and maps every file with
//! FS_IOC_FIEMAP, reusing one buffer, judging shared extents and defrag targets. `filefrag` is
//! given the file list ready-made (one process, every path as an argument), once plain (extent
//! counts) and once with `-v` (every extent with its flags, which is what tells shared extents
//! apart). Both read the same mounted clone; the dry run changes nothing. Each pair checks that
//! both sides counted the same extents per file.

use crate::fsbuild::{Template, MIB};
use crate::measure::{self, check_stop, BenchResult, Pair, ProgsRun};
use crate::scenarios::{Config, Row, Target};
use btrfs_kit::defrag::{self, DefragOptions, WalkOptions};
use btrfs_kit::Filesystem;
use std::collections::BTreeMap;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;
use testkit::fixture::{BtrfsOptions, Scratch};

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

/// The scenario's rows.
pub fn defrag_dry_run(config: &Config) -> BenchResult<Vec<Row>> {
    let count = config.pick(10_000, 400);
    let template = Template::build(2048 * MIB, BtrfsOptions::default(), populate(count))?;
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
    let theirs = filefrag_counts(&measure::spawn_program("filefrag", &[], &operands)?)?;
    if per_file != theirs {
        let differ = per_file
            .iter()
            .filter(|(p, n)| theirs.get(*p) != Some(n))
            .take(3)
            .collect::<Vec<_>>();
        return Err(format!("extent counts differ from filefrag's, e.g. {differ:?}").into());
    }
    let (lines, shared) =
        filefrag_verbose(&measure::spawn_program("filefrag", &["-v"], &operands)?)?;
    if (lines, shared) != (totals.extents, totals.shared_extents) {
        return Err(format!(
            "filefrag -v lists {lines} extents ({shared} shared), ours {} ({} shared)",
            totals.extents, totals.shared_extents
        )
        .into());
    }
    let summary = format!(
        "{} files, {} extents, {} shared, {} would be unshared",
        totals.files, totals.extents, totals.shared_extents, totals.would_unshare
    );
    let mut plain = Vec::new();
    let mut verbose = Vec::new();
    for _ in 0..config.pairs(10) {
        check_stop()?;
        let (ours, _) = measure::ours(1, dry_run)?;
        let (progs, _) = measure::program("filefrag", &[], &operands, filefrag_counts)?;
        plain.push(Pair { ours, progs });
        let (ours, _) = measure::ours(1, dry_run)?;
        let (progs, _) = measure::program("filefrag", &["-v"], &operands, filefrag_verbose)?;
        verbose.push(Pair { ours, progs });
    }
    let detail = format!(
        "{}; ours: `defrag::plan_tree` (walk + FIEMAP per file, shared extents and targets judged); both found {summary}",
        template.description
    );
    Ok(vec![
        Row {
            scenario: format!("defrag dry run, {count} files, vs `filefrag`"),
            detail: format!("{detail}; filefrag: one process given every path, extent counts parsed (checked equal to ours per file in an untimed first round)"),
            pairs: plain,
            target: Target::None,
            end_state: None,
        },
        Row {
            scenario: format!("defrag dry run, {count} files, vs `filefrag -v`"),
            detail: format!("{detail}; `filefrag -v`: one process given every path, every extent with its flags (needed to see shared extents), parsed (totals checked equal to ours first)"),
            pairs: verbose,
            target: Target::None,
            end_state: None,
        },
    ])
}
