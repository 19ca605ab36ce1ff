//! Dry runs and defragmentation over a directory tree, with progress.

use super::file::{defragment_open_file, open_regular, plan_open_file, Applied, Follow};
use super::options::DefragOptions;
use super::plan::FilePlan;
use super::walk::{dev_pair, stat_found, visit, Boundary, FoundFile, Seen, WalkLog, WalkOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::fiemap::FiemapReader;
use crate::size::ByteSize;
use rustix::fs::AtFlags;
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

    /// The file's path, moved out (to reuse its buffer for the next file).
    fn into_path(self) -> PathBuf {
        match self {
            FileOutcome::Planned(p) | FileOutcome::Defragmented(p) => p.path,
            FileOutcome::Skipped { plan, .. } => plan.path,
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
///
/// The walk streams, so the totals are only known up front with
/// [`WalkOptions::count_first`]; without it they are the figures found so far (equal to the
/// done ones). Either way they never fall below the done figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeProgress {
    /// Files handled so far.
    pub files_done: u64,
    /// Files the walk found (all of them with [`WalkOptions::count_first`], else so far).
    pub files_total: u64,
    /// Bytes (file sizes) handled so far.
    pub bytes_done: ByteSize,
    /// Bytes of the files found (all of them with [`WalkOptions::count_first`], else so far).
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
    let mut progress = TreeProgress::default();
    if walk_options.count_first {
        // Its boundaries and errors are found again by the real walk.
        visit(root, walk_options, &mut WalkLog::default(), |found| {
            if let Ok(Some(size)) = stat_found(&found, walk_options) {
                progress.files_total += 1;
                progress.bytes_total += size;
            }
            ControlFlow::Continue(Seen::File)
        })?;
    }
    let mut work = Work {
        reader: FiemapReader::new(),
        options,
        walk_options,
        apply,
    };
    let mut totals = TreeTotals::default();
    let mut log = WalkLog::default();
    let stopped = visit(root, walk_options, &mut log, |mut found| {
        let (outcome, size) = match work.one_file(&mut found) {
            Handled::Outcome(outcome, size) => (outcome, size),
            Handled::Walk(seen) => return ControlFlow::Continue(seen),
        };
        totals.add(&outcome);
        progress.files_done += 1;
        progress.bytes_done += size;
        progress.files_total = progress.files_total.max(progress.files_done);
        progress.bytes_total = progress.bytes_total.max(progress.bytes_done);
        let flow = on_file(&outcome, &progress);
        // The path's buffer serves the next file.
        *found.path = outcome.into_path();
        match flow {
            ControlFlow::Continue(()) => ControlFlow::Continue(Seen::File),
            ControlFlow::Break(()) => ControlFlow::Break(()),
        }
    })?;
    Ok(TreeReport {
        root: root.into(),
        totals,
        boundaries: log.boundaries,
        walk_errors: log.errors,
        stopped,
    })
}

/// What became of one file the walk found.
enum Handled {
    /// Its outcome for the caller, and its size.
    Outcome(FileOutcome, ByteSize),
    /// Not the caller's: what the walk records instead.
    Walk(Seen),
}

/// What a tree walk reuses from file to file.
struct Work<'a> {
    reader: FiemapReader,
    options: &'a DefragOptions,
    walk_options: &'a WalkOptions,
    apply: bool,
}

impl Work<'_> {
    /// Plans (and with `apply` defragments) one file the walk found: its outcome and size, or
    /// what the walk should record instead (a file mounted from elsewhere, one that vanished).
    /// The outcome takes `found.path`'s buffer.
    fn one_file(&mut self, found: &mut FoundFile<'_>) -> Handled {
        let op = if self.apply {
            "defragment"
        } else {
            "plan defragmentation"
        };
        let (dir_dev, cross_mounts) = (found.dir_dev, self.walk_options.cross_mounts);
        let crosses = |dev| dir_dev.is_some_and(|d| d != dev) && !cross_mounts;
        let path = &mut *found.path;
        let file = match open_regular(op, found.dir, found.name, path, Follow::No) {
            Ok(file) => file,
            // Gone since the listing: a walk error, as a vanished directory entry is.
            Err(gone) if matches!(gone.kind(), ErrorKind::NotFound) => {
                return Handled::Walk(Seen::Unreadable(gone))
            }
            Err(error) => {
                // Not openable (e.g. no read permission): its size and device still show.
                let st = rustix::fs::statat(found.dir, found.name, AtFlags::SYMLINK_NOFOLLOW).ok();
                if st.as_ref().is_some_and(|st| crosses(dev_pair(st))) {
                    return Handled::Walk(Seen::Mounted);
                }
                let size = ByteSize(st.map_or(0, |st| st.st_size as u64));
                let path = std::mem::take(path);
                return Handled::Outcome(FileOutcome::Failed { path, error }, size);
            }
        };
        if crosses(file.dev) {
            // A file bind-mounted from elsewhere.
            return Handled::Walk(Seen::Mounted);
        }
        let (reader, options) = (&mut self.reader, self.options);
        let result = if self.apply {
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
        let outcome = result.unwrap_or_else(|error| FileOutcome::Failed {
            path: std::mem::take(path),
            error,
        });
        Handled::Outcome(outcome, file.size)
    }
}
