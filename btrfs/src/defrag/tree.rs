//! Dry runs and defragmentation over a directory tree, with progress.

use super::file::{defragment_open_file, open_regular, plan_open_file, Applied};
use super::options::DefragOptions;
use super::plan::FilePlan;
use super::walk::{walk, Boundary, WalkOptions};
use crate::error::{Error, Result};
use crate::fiemap::FiemapReader;
use crate::size::ByteSize;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Why a file was left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum SkipReason {
    /// It has extents shared with snapshots or reflinks and
    /// [`DefragOptions::allow_shared`] is not set.
    Shared,
}

/// What happened to one file of a tree.
#[derive(Debug)]
pub enum FileOutcome {
    /// Dry run: what defragmenting would do.
    Planned(FilePlan),
    /// Defragmented; the plan is the dry run it acted on.
    Defragmented(FilePlan),
    /// Left alone.
    Skipped {
        /// The dry run.
        plan: FilePlan,
        /// Why.
        reason: SkipReason,
    },
    /// The file could not be planned or defragmented (the walk goes on).
    Failed {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: Error,
    },
}

impl FileOutcome {
    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            FileOutcome::Planned(p) | FileOutcome::Defragmented(p) => &p.path,
            FileOutcome::Skipped { plan, .. } => &plan.path,
            FileOutcome::Failed { path, .. } => path,
        }
    }

    /// The dry run, unless the file failed.
    pub fn plan(&self) -> Option<&FilePlan> {
        match self {
            FileOutcome::Planned(p) | FileOutcome::Defragmented(p) => Some(p),
            FileOutcome::Skipped { plan, .. } => Some(plan),
            FileOutcome::Failed { .. } => None,
        }
    }
}

/// Where a tree walk stands, given to the callback after each file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeProgress {
    /// Files handled so far.
    pub files_done: u64,
    /// Files the walk found.
    pub files_total: u64,
    /// Bytes (file sizes) handled so far.
    pub bytes_done: ByteSize,
    /// Bytes of all files found.
    pub bytes_total: ByteSize,
}

/// Sums over a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TreeTotals {
    /// Files planned (all but the failed ones).
    pub files: u64,
    /// Their size.
    pub bytes: ByteSize,
    /// Their extents.
    pub extents: u64,
    /// Files with shared extents.
    pub files_with_shared: u64,
    /// Shared extents.
    pub shared_extents: u64,
    /// Bytes in shared extents.
    pub shared_bytes: ByteSize,
    /// Extents the kernel would rewrite.
    pub targets: u64,
    /// Bytes the kernel would rewrite.
    pub target_bytes: ByteSize,
    /// Shared bytes defragmenting everything would unshare (used space would grow by up to this).
    pub would_unshare: ByteSize,
    /// Files defragmented (real runs).
    pub defragmented: u64,
    /// Shared bytes unshared by the files actually defragmented (real runs).
    pub unshared: ByteSize,
    /// Files skipped because of shared extents.
    pub skipped_shared: u64,
    /// Files that failed.
    pub failed: u64,
}

impl TreeTotals {
    fn add(&mut self, outcome: &FileOutcome) {
        let Some(p) = outcome.plan() else {
            self.failed += 1;
            return;
        };
        self.files += 1;
        self.bytes += p.size;
        self.extents += p.extents;
        self.files_with_shared += u64::from(p.shared_extents > 0);
        self.shared_extents += p.shared_extents;
        self.shared_bytes += p.shared_bytes;
        self.targets += p.targets;
        self.target_bytes += p.target_bytes;
        self.would_unshare += p.would_unshare;
        match outcome {
            FileOutcome::Defragmented(p) => {
                self.defragmented += 1;
                self.unshared += p.would_unshare;
            }
            FileOutcome::Skipped { .. } => self.skipped_shared += 1,
            _ => {}
        }
    }
}

/// The result of a tree walk.
#[derive(Debug)]
pub struct TreeReport {
    /// The root walked.
    pub root: PathBuf,
    /// Sums over the files.
    pub totals: TreeTotals,
    /// Subvolumes and mounts not entered.
    pub boundaries: Vec<Boundary>,
    /// Directories or entries the walk could not read.
    pub walk_errors: Vec<Error>,
    /// Whether the callback stopped the walk early.
    pub stopped: bool,
}

/// The dry run over the tree under `root`: [`plan_file`](super::plan_file) for every regular
/// file the walk finds. `on_file` sees each file's outcome and the progress, and may stop the
/// walk with `ControlFlow::Break`.
pub fn plan_tree(
    root: impl AsRef<Path>,
    options: &DefragOptions,
    walk_options: &WalkOptions,
    on_file: impl FnMut(&FileOutcome, &TreeProgress) -> ControlFlow<()>,
) -> Result<TreeReport> {
    run_tree(root.as_ref(), options, walk_options, false, on_file)
}

/// Defragments every regular file under `root`, skipping (not failing on) files with shared
/// extents unless [`DefragOptions::allow_shared`] is set. A file that fails is reported to
/// `on_file` and the walk goes on; `on_file` may stop it with `ControlFlow::Break` (e.g. on
/// Ctrl-C), which takes effect between files.
pub fn defragment_tree(
    root: impl AsRef<Path>,
    options: &DefragOptions,
    walk_options: &WalkOptions,
    on_file: impl FnMut(&FileOutcome, &TreeProgress) -> ControlFlow<()>,
) -> Result<TreeReport> {
    run_tree(root.as_ref(), options, walk_options, true, on_file)
}

fn run_tree(
    root: &Path,
    options: &DefragOptions,
    walk_options: &WalkOptions,
    apply: bool,
    mut on_file: impl FnMut(&FileOutcome, &TreeProgress) -> ControlFlow<()>,
) -> Result<TreeReport> {
    let found = walk(root, walk_options)?;
    let mut progress = TreeProgress {
        files_done: 0,
        files_total: found.files.len() as u64,
        bytes_done: ByteSize::ZERO,
        bytes_total: found.files.iter().map(|(_, size)| *size).sum(),
    };
    let mut reader = FiemapReader::new();
    let mut totals = TreeTotals::default();
    let mut stopped = false;
    for (path, size) in &found.files {
        let outcome = one_file(&mut reader, path, options, apply);
        totals.add(&outcome);
        progress.files_done += 1;
        progress.bytes_done += *size;
        if on_file(&outcome, &progress).is_break() {
            stopped = true;
            break;
        }
    }
    Ok(TreeReport {
        root: root.into(),
        totals,
        boundaries: found.boundaries,
        walk_errors: found.errors,
        stopped,
    })
}

fn one_file(
    reader: &mut FiemapReader,
    path: &Path,
    options: &DefragOptions,
    apply: bool,
) -> FileOutcome {
    let op = if apply {
        "defragment"
    } else {
        "plan defragmentation"
    };
    let file = match open_regular(op, path) {
        Ok(file) => file,
        Err(error) => {
            return FileOutcome::Failed {
                path: path.into(),
                error,
            }
        }
    };
    let result = if apply {
        defragment_open_file(reader, &file, path, options).map(|applied| match applied {
            Applied::Defragmented(plan) => FileOutcome::Defragmented(plan),
            Applied::RefusedShared(plan) => FileOutcome::Skipped {
                plan,
                reason: SkipReason::Shared,
            },
        })
    } else {
        plan_open_file(reader, &file, path, options).map(FileOutcome::Planned)
    };
    result.unwrap_or_else(|error| FileOutcome::Failed {
        path: path.into(),
        error,
    })
}
