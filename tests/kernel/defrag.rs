//! Defragmentation on a real kernel: a fragmented file ends with fewer extents and the same
//! content; files sharing extents with a snapshot or a reflink are refused without the opt-in
//! and, with it, used space grows by what the dry run predicted; the tree walk stops at nested
//! subvolumes and other mounts unless asked; the kernel's refusals become clear errors.

use crate::data::{hash, sha256_of, MIB};
use crate::unprivileged::{run_as_nobody, NOBODY};
use btrfs_kit::defrag::{self, BoundaryKind, DefragOptions, FileOutcome, WalkOptions};
use btrfs_kit::fiemap::{FiemapReader, FiemapRequest};
use btrfs_kit::subvolume::{self, SnapshotOptions};
use btrfs_kit::{ByteSize, Error, ErrorKind, Filesystem};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::io::Write;
use std::ops::ControlFlow;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use testkit::ensure;
use testkit::fixture::Scratch;
use testkit::harness::Failed;

/// The environment variable that makes the test binary act as the unprivileged defrag probe.
const PROBE_ENV: &str = "BTRFS_LVM_DEFRAG_PROBE";

/// Size of each interleaved write.
const PIECE: usize = 64 * 1024;

/// Writes `pieces` pieces of [`PIECE`] bytes to each of `a` and `b`, alternating and fsyncing
/// after each write, so the allocator interleaves them on disk: each file gets about `pieces`
/// extents. Returns their SHA-256 digests.
pub fn write_interleaved(
    a: &Path,
    b: &Path,
    pieces: usize,
    seed: u64,
) -> Result<([u8; 32], [u8; 32]), Failed> {
    let mut files = [std::fs::File::create(a)?, std::fs::File::create(b)?];
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; PIECE];
    let mut contents = [Vec::new(), Vec::new()];
    for _ in 0..pieces {
        for (file, content) in files.iter_mut().zip(contents.iter_mut()) {
            for word in buf.chunks_exact_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes());
            }
            file.write_all(&buf)?;
            file.sync_all()?;
            content.extend_from_slice(&buf);
        }
    }
    Ok((sha256_of(&contents[0][..])?, sha256_of(&contents[1][..])?))
}

/// The file's extents after flushing its dirty data.
fn extents(path: &Path) -> Result<Vec<btrfs_kit::fiemap::Extent>, Failed> {
    let file = std::fs::File::open(path)?;
    Ok(FiemapReader::new().extents(file.as_fd(), path, &FiemapRequest::synced())?)
}

/// Bytes used in data block groups, after a commit.
fn data_used(fs: &Filesystem) -> Result<u64, Failed> {
    fs.sync()?;
    crate::data::data_used(fs)
}

testkit::register!(root: fragmented_file_ends_with_fewer_extents_same_content);
fn fragmented_file_ends_with_fewer_extents_same_content() -> Result<(), Failed> {
    let mut scratch = Scratch::btrfs(512 * MIB)?;
    let (a, b) = (scratch.path().join("a"), scratch.path().join("b"));
    let (sum_a, _) = write_interleaved(&a, &b, 128, 1)?;
    let before = extents(&a)?.len();
    ensure!(
        before >= 64,
        "the interleaved file has only {before} extents"
    );

    let plan = defrag::plan_file(&a, &DefragOptions::default())?;
    ensure!(
        plan.extents == before as u64,
        "plan counts {} extents, FIEMAP {before}",
        plan.extents
    );
    ensure!(
        plan.shared_extents == 0 && plan.would_unshare == ByteSize::ZERO,
        "nothing is shared: {plan:?}",
    );
    ensure!(
        plan.targets == before as u64,
        "every 64 KiB piece is a target: {plan:?}"
    );

    let acted = defrag::defragment_file(&a, &DefragOptions::default().flush(true))?;
    ensure!(
        acted.targets == plan.targets,
        "the real run acted on the same plan"
    );
    let after = extents(&a)?.len();
    ensure!(
        after * 4 <= before,
        "{before} extents before, {after} after: expected at most a quarter",
    );

    // Read back from disk, not from the page cache.
    scratch.remount()?;
    let a = scratch.path().join("a");
    ensure!(
        hash(&a)? == sum_a,
        "the content is identical after defragmenting"
    );
    Ok(())
}

/// Checks the refusal, then the opt-in, on `file` whose extents are shared with `other`.
fn refuse_then_unshare(
    fs: &Filesystem,
    file: &Path,
    other: &Path,
    sum: [u8; 32],
) -> Result<(), Failed> {
    let plan = defrag::plan_file(file, &DefragOptions::default())?;
    ensure!(
        plan.shared_extents == plan.extents && plan.extents >= 64,
        "all extents shared: {plan:?}",
    );
    ensure!(
        plan.would_unshare == plan.size,
        "every byte would be unshared: {plan:?}"
    );
    let largest = extents(file)?
        .iter()
        .map(|e| e.length.bytes())
        .max()
        .unwrap_or(0);

    let used_before = data_used(fs)?;
    match defrag::defragment_file(file, &DefragOptions::default().flush(true)) {
        Err(e) if matches!(e.kind(), ErrorKind::SharedExtents { .. }) => {
            let text = e.to_string();
            ensure!(
                text.contains("allow_shared") && text.contains(&plan.would_unshare.to_string()),
                "{}",
                text,
            );
        }
        other => {
            return Err(format!("defragmenting a shared file without opt-in: {other:?}").into())
        }
    }
    ensure!(
        extents(file)?.iter().all(|e| e.is_shared()),
        "the refused file is untouched"
    );
    ensure!(data_used(fs)? == used_before, "the refusal wrote nothing");

    defrag::defragment_file(
        file,
        &DefragOptions::default().flush(true).allow_shared(true),
    )?;
    let grown = data_used(fs)?.saturating_sub(used_before);
    let predicted = plan.would_unshare.bytes();
    ensure!(
        grown.abs_diff(predicted) <= largest,
        "used space grew by {grown} bytes, the dry run predicted {predicted} (tolerance one extent, {largest})",
    );
    let after = extents(file)?;
    ensure!(
        after.iter().all(|e| !e.is_shared()),
        "nothing shared any more: {after:?}"
    );
    ensure!(
        hash(file)? == sum && hash(other)? == sum,
        "both copies keep the content"
    );
    Ok(())
}

testkit::register!(root: snapshot_shared_file_refused_then_grows_used_as_predicted);
fn snapshot_shared_file_refused_then_grows_used_as_predicted() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let sv = scratch.path().join("sv");
    subvolume::create(&sv)?;
    let (sum, _) = write_interleaved(&sv.join("a"), &sv.join("b"), 128, 2)?;
    let snap = scratch.path().join("snap");
    subvolume::snapshot(&sv, &snap, &SnapshotOptions::writable())?;
    let fs = Filesystem::open(scratch.path())?;
    refuse_then_unshare(&fs, &sv.join("a"), &snap.join("a"), sum)
}

testkit::register!(root: reflinked_file_refused_then_grows_used_as_predicted);
fn reflinked_file_refused_then_grows_used_as_predicted() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let (a, b, copy) = (
        scratch.path().join("a"),
        scratch.path().join("b"),
        scratch.path().join("copy"),
    );
    let (sum, _) = write_interleaved(&a, &b, 128, 3)?;
    let out = std::process::Command::new("cp")
        .arg("--reflink=always")
        .arg(&a)
        .arg(&copy)
        .output()?;
    ensure!(
        out.status.success(),
        "cp --reflink=always: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fs = Filesystem::open(scratch.path())?;
    refuse_then_unshare(&fs, &copy, &a, sum)
}

/// A mount made by a test on a directory it created, unmounted on drop.
struct MountGuard(PathBuf);

impl MountGuard {
    fn new(
        source: &Path,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
    ) -> Result<Self, Failed> {
        mount(Some(source), target, fstype, flags, None::<&str>)
            .map_err(|e| format!("mount {} on {}: {e}", source.display(), target.display()))?;
        Ok(MountGuard(target.into()))
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if umount2(&self.0, MntFlags::empty()).is_err() {
            let _ = umount2(&self.0, MntFlags::MNT_DETACH);
        }
    }
}

fn planned_paths(
    root: &Path,
    walk: &WalkOptions,
) -> Result<(Vec<PathBuf>, defrag::TreeReport), Failed> {
    let mut paths = Vec::new();
    let report = defrag::plan_tree(root, &DefragOptions::default(), walk, |outcome, _| {
        paths.push(outcome.path().to_path_buf());
        ControlFlow::Continue(())
    })?;
    paths.sort();
    Ok((paths, report))
}

testkit::register!(root: tree_walk_stops_at_subvolumes_and_mounts_unless_asked);
fn tree_walk_stops_at_subvolumes_and_mounts_unless_asked() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 * MIB)?;
    let other = Scratch::btrfs(512 * MIB)?;
    let root = scratch.path();
    std::fs::create_dir(root.join("dir"))?;
    write_interleaved(&root.join("dir/a"), &root.join("b"), 32, 4)?;
    let sub = root.join("sub");
    subvolume::create(&sub)?;
    write_interleaved(&sub.join("c"), &sub.join("d"), 32, 5)?;
    write_interleaved(&other.path().join("e"), &other.path().join("f"), 32, 6)?;
    std::fs::create_dir(root.join("mnt"))?;
    std::fs::create_dir(root.join("tmp"))?;
    let _bind = MountGuard::new(other.path(), &root.join("mnt"), None, MsFlags::MS_BIND)?;
    let _tmpfs = MountGuard::new(
        Path::new("tmpfs"),
        &root.join("tmp"),
        Some("tmpfs"),
        MsFlags::empty(),
    )?;
    std::fs::write(root.join("tmp/g"), b"not btrfs")?;

    let (paths, report) = planned_paths(root, &WalkOptions::default())?;
    ensure!(
        paths == vec![root.join("b"), root.join("dir/a")],
        "default walk: {paths:?}"
    );
    let mut boundaries: Vec<_> = report
        .boundaries
        .iter()
        .map(|b| (b.path.clone(), b.kind))
        .collect();
    boundaries.sort_by(|x, y| x.0.cmp(&y.0));
    ensure!(
        boundaries
            == vec![
                (root.join("mnt"), BoundaryKind::Mount),
                (root.join("sub"), BoundaryKind::Subvolume),
                (root.join("tmp"), BoundaryKind::NotBtrfs),
            ],
        "boundaries: {boundaries:?}",
    );
    ensure!(
        report.totals.files == 2 && report.totals.targets > 0,
        "totals: {:?}",
        report.totals
    );

    let (paths, _) = planned_paths(root, &WalkOptions::default().cross_subvolumes(true))?;
    ensure!(
        paths.contains(&sub.join("c")) && !paths.contains(&root.join("mnt/e")),
        "crossing subvolumes: {paths:?}",
    );
    let (paths, report) = planned_paths(root, &WalkOptions::default().cross_mounts(true))?;
    ensure!(
        paths.contains(&root.join("mnt/e")) && !paths.contains(&sub.join("c")),
        "crossing mounts: {paths:?}",
    );
    ensure!(
        report
            .boundaries
            .iter()
            .any(|b| b.kind == BoundaryKind::NotBtrfs),
        "a non-btrfs mount is never crossed",
    );

    // The real run defragments inside the walk only.
    let sub_before = extents(&sub.join("c"))?.len();
    let a_before = extents(&root.join("dir/a"))?.len();
    let mut progress = Vec::new();
    let report = defrag::defragment_tree(
        root,
        &DefragOptions::default().flush(true),
        &WalkOptions::default(),
        |o, p| {
            check_outcome(o);
            progress.push((p.files_done, p.files_total, p.bytes_done, p.bytes_total));
            ControlFlow::Continue(())
        },
    )?;
    ensure!(
        report.totals.defragmented == 2 && report.totals.failed == 0,
        "totals: {:?}",
        report.totals,
    );
    let last = progress.last().copied().ok_or("no progress reported")?;
    ensure!(
        last.0 == 2 && last.1 == 2 && last.2 == last.3 && last.3.bytes() == 2 * 32 * PIECE as u64,
        "progress: {progress:?}",
    );
    ensure!(
        extents(&sub.join("c"))?.len() == sub_before,
        "the nested subvolume was not touched"
    );
    let a_after = extents(&root.join("dir/a"))?.len();
    ensure!(
        a_after * 4 <= a_before,
        "dir/a: {a_before} -> {a_after} extents"
    );

    // Stopping from the callback stops between files.
    let report = defrag::plan_tree(
        root,
        &DefragOptions::default(),
        &WalkOptions::default(),
        |_, _| ControlFlow::Break(()),
    )?;
    ensure!(
        report.stopped && report.totals.files == 1,
        "stopped walk: {:?}",
        report.totals
    );
    Ok(())
}

/// The regular files under `dir` by std's recursive listing (not following links), sorted.
fn listed_files(dir: &Path) -> Result<Vec<PathBuf>, Failed> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

testkit::register!(root: tree_walk_streams_large_and_deep_trees_skips_special_files_counts_first);
/// A directory whose listing needs several `getdents64` calls, a chain of 200 nested
/// directories, and a FIFO, a socket and symbolic links among the files: the streaming walk
/// finds exactly the regular files, in the same order as [`defrag::walk`], never blocks on the
/// FIFO, and with `count_first` reports the totals from the first file on.
fn tree_walk_streams_large_and_deep_trees_skips_special_files_counts_first() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let root = scratch.path();
    let many = root.join("many");
    std::fs::create_dir(&many)?;
    // 2 000 names of 120 bytes: about 270 KiB of directory entries.
    for i in 0..2000 {
        std::fs::write(many.join(format!("{i:0>120}")), [i as u8; 100])?;
    }
    let mut deep = root.join("deep");
    for _ in 0..200 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep)?;
    write_interleaved(&deep.join("bottom"), &root.join("top"), 4, 7)?;
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )?;
    let _socket = std::os::unix::net::UnixListener::bind(root.join("socket"))?;
    std::os::unix::fs::symlink(root.join("top"), root.join("link-to-top"))?;
    std::os::unix::fs::symlink(&many, root.join("link-to-many"))?;
    let expected = listed_files(root)?;
    ensure!(
        expected.len() == 2002,
        "the tree has {} regular files",
        expected.len()
    );

    let walked = defrag::walk(root, &WalkOptions::default())?;
    let walked_paths: Vec<PathBuf> = walked.files.iter().map(|(p, _)| p.clone()).collect();
    let mut sorted = walked_paths.clone();
    sorted.sort();
    ensure!(
        sorted == expected,
        "walk() found {} files, not the {} regular ones",
        sorted.len(),
        expected.len()
    );
    let total_bytes: u64 = walked.files.iter().map(|(_, size)| size.bytes()).sum();
    ensure!(
        total_bytes == 2000 * 100 + 2 * 4 * PIECE as u64,
        "walk() sizes sum to {total_bytes}"
    );

    // The FIFO is never opened by the walk; the one-file calls refuse it without blocking.
    let (planned, progress) = plan_with_progress(root, &WalkOptions::default())?;
    ensure!(
        planned == walked_paths,
        "plan_tree visits the files in walk() order"
    );
    ensure!(
        progress
            .iter()
            .all(|p| p.files_total == p.files_done && p.bytes_total == p.bytes_done),
        "without count_first the totals are the figures so far"
    );
    let last = progress.last().ok_or("no progress")?;
    ensure!(
        last.files_done == 2002 && last.bytes_done.bytes() == total_bytes,
        "last progress {last:?}"
    );

    let (planned, progress) = plan_with_progress(root, &WalkOptions::default().count_first(true))?;
    ensure!(
        planned == walked_paths,
        "count_first changes nothing of the walk"
    );
    ensure!(
        progress
            .iter()
            .all(|p| p.files_total == 2002 && p.bytes_total.bytes() == total_bytes),
        "with count_first the totals are known from the first file: first {:?}",
        progress.first()
    );

    let fifo = root.join("fifo");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(defrag::plan_file(&fifo, &DefragOptions::default()));
    });
    let answer = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .map_err(|_| "plan_file blocked on a FIFO")?;
    ensure!(
        matches!(&answer, Err(e) if matches!(e.kind(), ErrorKind::InvalidArguments { .. })),
        "plan_file on a FIFO: {answer:?}"
    );
    // A symbolic link named by the caller is followed, as opening it would.
    let plan = defrag::plan_file(root.join("link-to-top"), &DefragOptions::default())?;
    ensure!(
        plan.size.bytes() == 4 * PIECE as u64,
        "plan of the link: {plan:?}"
    );
    Ok(())
}

/// The paths `plan_tree` reports, in order, and its progress after each.
fn plan_with_progress(
    root: &Path,
    walk: &WalkOptions,
) -> Result<(Vec<PathBuf>, Vec<defrag::TreeProgress>), Failed> {
    let mut paths = Vec::new();
    let mut progress = Vec::new();
    let report = defrag::plan_tree(root, &DefragOptions::default(), walk, |outcome, p| {
        check_outcome(outcome);
        paths.push(outcome.path().to_path_buf());
        progress.push(*p);
        ControlFlow::Continue(())
    })?;
    ensure!(
        report.walk_errors.is_empty() && report.boundaries.is_empty(),
        "walk errors {:?}, boundaries {:?}",
        report.walk_errors,
        report.boundaries
    );
    Ok((paths, progress))
}

fn check_outcome(outcome: &FileOutcome) {
    if let FileOutcome::Failed { error, .. } = outcome {
        panic!("a file failed: {error}");
    }
}

/// In the child (uid nobody): what each call gives, one `name=result` per line.
pub fn child_probe() -> Option<i32> {
    let dir = PathBuf::from(std::env::var_os(PROBE_ENV)?);
    let describe = |r: Result<(), Error>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) if matches!(e.kind(), ErrorKind::PermissionDenied { .. }) => {
            "permission-denied".to_string()
        }
        Err(e) => format!("other: {e}"),
    };
    let options = DefragOptions::default();
    println!(
        "plan={}",
        describe(defrag::plan_file(dir.join("root-owned"), &options).map(drop))
    );
    println!(
        "defrag_root_owned={}",
        describe(defrag::defragment_file(dir.join("root-owned"), &options).map(drop))
    );
    println!(
        "defrag_own={}",
        describe(defrag::defragment_file(dir.join("own"), &options).map(drop))
    );
    let trim = Filesystem::open(&dir).and_then(|fs| fs.trim(&Default::default()).map(drop));
    println!("trim={}", describe(trim));
    Some(0)
}

testkit::register!(root: kernel_refusals_read_only_subvolume_mount_and_unprivileged);
fn kernel_refusals_read_only_subvolume_mount_and_unprivileged() -> Result<(), Failed> {
    let mut scratch = Scratch::btrfs(1024 * MIB)?;
    let root = scratch.path().to_path_buf();
    let sv = root.join("sv");
    subvolume::create(&sv)?;
    write_interleaved(&sv.join("a"), &sv.join("b"), 16, 7)?;
    let ro = root.join("ro");
    subvolume::snapshot(&sv, &ro, &SnapshotOptions::read_only())?;
    match defrag::defragment_file(ro.join("a"), &DefragOptions::default().allow_shared(true)) {
        Err(e) if matches!(e.kind(), ErrorKind::ReadOnlySubvolume) => {
            ensure!(
                e.errno() == Some(btrfs_kit::Errno::ROFS),
                "{}",
                e.to_string()
            )
        }
        other => return Err(format!("defrag in a read-only snapshot: {other:?}").into()),
    }

    // Unprivileged: the dry run needs read access only; defragmenting needs write permission.
    // (Not std::fs::copy: copy_file_range reflinks on btrfs.)
    write_interleaved(&root.join("root-owned"), &root.join("own"), 16, 8)?;
    nix::unistd::chown(&root.join("own"), Some(NOBODY.into()), Some(NOBODY.into()))?;
    let out = run_as_nobody(&[(PROBE_ENV, root.as_os_str())])?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "plan=ok",
        "defrag_root_owned=permission-denied",
        "defrag_own=ok",
        "trim=permission-denied",
    ] {
        ensure!(
            text.lines().any(|l| l == line),
            "expected {line:?} in probe output:\n{text}"
        );
    }

    // A read-only mount.
    mount(
        None::<&str>,
        &root,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )?;
    let result = defrag::defragment_file(root.join("own"), &DefragOptions::default());
    mount(
        None::<&str>,
        &root,
        None::<&str>,
        MsFlags::MS_REMOUNT,
        None::<&str>,
    )?;
    match result {
        Err(e) if matches!(e.kind(), ErrorKind::ReadOnly) => {
            ensure!(e.to_string().contains("remount"), "{}", e.to_string())
        }
        other => return Err(format!("defrag on a read-only mount: {other:?}").into()),
    }
    scratch.remount()?;
    Ok(())
}
