//! Deleting subvolume trees on a real kernel: everything checkable is checked before anything
//! is deleted (the default subvolume, mounts, a read-only holder, attribute flags), and a
//! failure part-way (a `btrfs send` in progress, which cannot be seen beforehand) makes
//! read-only again what was made writable and says what was deleted and what was not.

use crate::data::{write_file, MIB};
use crate::unprivileged::{run_as_nobody, NOBODY};
use btrfs_kit::subvolume::{self, DeleteProblem, Recursion};
use btrfs_kit::{ErrorKind, Filesystem};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use testkit::ensure;
use testkit::fixture::{BtrfsOptions, FsKind, Mount, Scratch};
use testkit::harness::Failed;

/// Creates the subvolumes (paths relative to `m`, parents first; `dir/` components become
/// plain directories).
fn tree(m: &Path, subvolumes: &[&str]) -> Result<Vec<PathBuf>, Failed> {
    subvolumes
        .iter()
        .map(|rel| {
            let p = m.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            subvolume::create(&p)?;
            Ok(p)
        })
        .collect()
}

/// Which of `paths` are still subvolumes.
fn still_there(paths: &[PathBuf]) -> Result<Vec<&PathBuf>, Failed> {
    let mut left = Vec::new();
    for p in paths {
        if p.exists() && subvolume::is_subvolume(p)? {
            left.push(p);
        }
    }
    Ok(left)
}

/// The delete must be refused with every problem `expect` accepts, and nothing deleted.
fn refused(
    target: &Path,
    recursion: Recursion,
    all: &[PathBuf],
    expect: impl Fn(&[DeleteProblem]) -> bool,
) -> Result<(), Failed> {
    match subvolume::delete(target, recursion) {
        Err(e) if matches!(e.kind(), ErrorKind::DeleteRefused { .. }) => {
            let ErrorKind::DeleteRefused { problems, .. } = e.kind() else {
                unreachable!()
            };
            ensure!(expect(problems), "unexpected problems: {e}");
            ensure!(e.to_string().contains("nothing deleted"), "{e}");
        }
        other => {
            return Err(format!(
                "delete {}: expected a refusal, got {other:?}",
                target.display()
            )
            .into())
        }
    }
    let left = still_there(all)?;
    ensure!(
        left.len() == all.len(),
        "a refused delete deleted {} of {}",
        all.len() - left.len(),
        all.len(),
    );
    Ok(())
}

testkit::register!(root: a_tree_holding_the_default_subvolume_is_refused_whole);
/// A tree of five (one read-only, holding another) containing the default subvolume: refused
/// with nothing deleted and the read-only one still read-only; with another default it goes
/// whole. (Issue 15 item 3: 2 of 4 were deleted, a read-only one among them.)
fn a_tree_holding_the_default_subvolume_is_refused_whole() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let all = tree(m, &["t", "t/a", "t/a/x", "t/b", "t/c/d"])?;
    subvolume::set_read_only(m.join("t/a"), true)?;
    let fs = Filesystem::open(m)?;
    let d = subvolume::subvolume_id(m.join("t/c/d"))?;
    fs.set_default_subvolume(d)?;
    refused(&m.join("t"), Recursion::Yes, &all, |p| {
        p.iter()
            .any(|p| matches!(p, DeleteProblem::DefaultSubvolume { id, .. } if *id == d))
    })?;
    ensure!(
        subvolume::is_read_only(m.join("t/a"))?,
        "the read-only subvolume was left writable"
    );
    fs.set_default_subvolume(5)?;
    subvolume::delete(m.join("t"), Recursion::Yes)?;
    ensure!(
        still_there(&all)?.is_empty() && !m.join("t").exists(),
        "tree left behind"
    );
    Ok(())
}

/// Unmounts a bind mount made by the test on drop.
struct Bind(PathBuf);

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

testkit::register!(root: mounted_subvolumes_and_mounts_inside_are_refused);
/// A subvolume of the tree mounted elsewhere (`subvolid=`), and a bind mount inside the tree:
/// both refused, recursively or not, with nothing deleted (the kernel itself deletes a
/// subvolume mounted elsewhere).
fn mounted_subvolumes_and_mounts_inside_are_refused() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let all = tree(m, &["t", "t/b", "t/dir/c"])?;
    let b = subvolume::subvolume_id(m.join("t/b"))?;
    let mut elsewhere = Mount::new(scratch.device(), "btrfs", &format!("subvolid={b}"))?;
    for recursion in [Recursion::Yes, Recursion::No] {
        let target = if recursion == Recursion::Yes {
            "t"
        } else {
            "t/b"
        };
        refused(&m.join(target), recursion, &all, |p| {
            p.iter().any(|p| {
                matches!(p, DeleteProblem::MountedElsewhere { path, mount_point }
                    if path.ends_with("t/b") && mount_point == elsewhere.path())
            })
        })?;
    }
    elsewhere.unmount()?;
    let source = tempfile::tempdir()?;
    let inside = m.join("t/dir/plain");
    std::fs::create_dir(&inside)?;
    nix::mount::mount(
        Some(source.path()),
        &inside,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )?;
    let bind = Bind(inside.clone());
    refused(&m.join("t"), Recursion::Yes, &all, |p| {
        p.iter().any(
            |p| matches!(p, DeleteProblem::MountInside { mount_point } if *mount_point == inside),
        )
    })?;
    drop(bind);
    subvolume::delete(m.join("t"), Recursion::Yes)?;
    ensure!(still_there(&all)?.is_empty(), "tree left behind");
    Ok(())
}

testkit::register!(root: a_read_only_holder_is_refused_before_the_nested_ones_go);
/// The target lies in a read-only subvolume that is not being deleted: refused before the
/// nested subvolumes are deleted (the kernel would refuse only the last step, with EROFS).
fn a_read_only_holder_is_refused_before_the_nested_ones_go() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let all = tree(m, &["r", "r/t", "r/t/n", "r/t/n/o"])?;
    subvolume::set_read_only(m.join("r"), true)?;
    refused(&m.join("r/t"), Recursion::Yes, &all, |p| {
        p.iter()
            .any(|p| matches!(p, DeleteProblem::ReadOnlyHolder { holder } if holder.ends_with("r")))
    })?;
    subvolume::set_read_only(m.join("r"), false)?;
    subvolume::delete(m.join("r/t"), Recursion::Yes)?;
    ensure!(still_there(&all)?.len() == 1, "r/t left behind");
    Ok(())
}

fn chattr(flag: &str, path: &Path) -> Result<(), Failed> {
    let out = Command::new("chattr").arg(flag).arg(path).output()?;
    ensure!(
        out.status.success(),
        "chattr {flag} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr),
    );
    Ok(())
}

testkit::register!(root: append_only_and_immutable_attributes_are_refused);
/// An append-only directory holding a nested subvolume and an immutable subvolume root: the
/// kernel refuses those deletes with EPERM even for root, so both are refused up front.
fn append_only_and_immutable_attributes_are_refused() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let all = tree(m, &["t", "t/a", "t/dir/n", "t/m"])?;
    chattr("+a", &m.join("t/dir"))?;
    chattr("+i", &m.join("t/m"))?;
    refused(&m.join("t"), Recursion::Yes, &all, |p| {
        let has = |want: &str, flag: &str| {
            p.iter().any(|p| {
                matches!(p, DeleteProblem::Attribute { path, flag: f } if path.ends_with(want) && *f == flag)
            })
        };
        has("t/dir", "append-only") && has("t/m", "immutable")
    })?;
    chattr("-a", &m.join("t/dir"))?;
    chattr("-i", &m.join("t/m"))?;
    subvolume::delete(m.join("t"), Recursion::Yes)?;
    ensure!(still_there(&all)?.is_empty(), "tree left behind");
    Ok(())
}

testkit::register!(oracle: a_send_in_progress_fails_part_way_and_read_only_comes_back);
/// `btrfs send` of a read-only subvolume nested in a read-only one: the kernel refuses its
/// delete (EPERM) though every check passed. The delete stops there: the read-only holder it
/// made writable is read-only again, and the error lists what was deleted and what was not.
fn a_send_in_progress_fails_part_way_and_read_only_comes_back() -> Result<(), Failed> {
    use std::io::Read;
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let all = tree(m, &["t", "t/r", "t/r/n", "t/r/s"])?;
    write_file(&m.join("t/r/s/data"), 4 * MIB, 7)?;
    subvolume::set_read_only(m.join("t/r/s"), true)?;
    subvolume::set_read_only(m.join("t/r"), true)?;
    let mut send = Command::new("btrfs")
        .arg("send")
        .arg(m.join("t/r/s"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("run btrfs send (the oracle; is btrfs-progs installed?): {e}"))?;
    let mut stream = send.stdout.take().ok_or("no pipe")?;
    // Once the stream has begun, the kernel counts the send as in progress; with 4 MiB of data
    // the stream cannot fit the pipe, so the send stays in the kernel until the pipe is read.
    let mut first = [0u8; 1];
    stream.read_exact(&mut first)?;
    let result = subvolume::delete(m.join("t"), Recursion::Yes);
    let _ = send.kill();
    drop(stream);
    let _ = send.wait();
    match result {
        Err(e) if matches!(e.kind(), ErrorKind::DeleteIncomplete { .. }) => {
            let ErrorKind::DeleteIncomplete { progress, .. } = e.kind() else {
                unreachable!()
            };
            let btrfs_kit::subvolume::DeleteProgress {
                failed,
                deleted,
                not_deleted,
                restored_read_only,
                not_restored,
                ..
            } = progress.as_ref();
            ensure!(
                failed.ends_with("t/r/s")
                    && deleted.len() == 1
                    && deleted[0].ends_with("t/r/n")
                    && not_deleted.len() == 3
                    && restored_read_only.len() == 1
                    && restored_read_only[0].ends_with("t/r")
                    && not_restored.is_empty(),
                "{e}",
            );
            let text = e.to_string();
            ensure!(
                text.contains("deleted 1") && text.contains("not deleted 3"),
                "{text}"
            );
        }
        other => return Err(format!("delete during a send: {other:?}").into()),
    }
    ensure!(
        subvolume::is_read_only(m.join("t/r"))?,
        "t/r was left writable after the failed delete",
    );
    ensure!(
        still_there(&all)?.len() == 3 && !m.join("t/r/n").exists(),
        "left: {:?}",
        still_there(&all)?,
    );
    Ok(())
}

/// The environment variable that makes the test binary delete, as nobody, the tree it names.
const PROBE_ENV: &str = "BTRFS_LVM_DELETE_PROBE";

/// In the child (as nobody): what a recursive delete of the tree gives, one line per problem.
pub fn child_probe() -> Option<i32> {
    let target = std::env::var_os(PROBE_ENV)?;
    match subvolume::delete(&target, Recursion::Yes).map_err(btrfs_kit::Error::into_kind) {
        Ok(()) => println!("ok"),
        Err(ErrorKind::DeleteRefused { problems, .. }) => {
            for p in problems {
                println!("refused {p}");
            }
        }
        Err(e) => println!("other {e}"),
    }
    Some(0)
}

fn delete_as_nobody(target: &Path) -> Result<String, Failed> {
    let out = run_as_nobody(&[(PROBE_ENV, target.as_os_str())])?;
    ensure!(
        out.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

testkit::register!(root: an_unprivileged_caller_is_told_what_it_lacks_before_anything_goes);
/// As uid 65534: without the user_subvol_rm_allowed mount option the delete is refused up
/// front saying so; with it, a directory in the tree the caller may not write is named, and
/// nothing is deleted until the caller may delete it all.
fn an_unprivileged_caller_is_told_what_it_lacks_before_anything_goes() -> Result<(), Failed> {
    use std::os::unix::fs::{chown, PermissionsExt};
    let give = |p: &Path| chown(p, Some(NOBODY), Some(NOBODY));
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let all = tree(m, &["t", "t/n"])?;
    for p in &all {
        give(p)?;
    }
    let out = delete_as_nobody(&m.join("t"))?;
    ensure!(
        out.lines()
            .any(|l| l.starts_with("refused") && l.contains("user_subvol_rm_allowed")),
        "without the mount option: {out}",
    );
    ensure!(
        still_there(&all)?.len() == all.len(),
        "deleted without the rights"
    );

    let options = BtrfsOptions {
        mount_options: "user_subvol_rm_allowed".into(),
        ..Default::default()
    };
    let scratch = Scratch::new(512 * MIB, FsKind::Btrfs(options))?;
    let m = scratch.path();
    std::fs::set_permissions(m, std::fs::Permissions::from_mode(0o777))?;
    let all = tree(m, &["t", "t/a", "t/dir/n"])?;
    for p in &all {
        give(p)?;
    }
    let out = delete_as_nobody(&m.join("t"))?;
    let dir = m.join("t/dir");
    ensure!(
        out.lines().any(|l| l.starts_with(&format!(
            "refused {}: this needs write and search access",
            dir.display()
        ))),
        "a directory nobody may not write: {out}",
    );
    ensure!(
        still_there(&all)?.len() == all.len(),
        "deleted part of the tree"
    );
    give(&dir)?;
    let out = delete_as_nobody(&m.join("t"))?;
    ensure!(out.trim() == "ok", "with the rights: {out}");
    ensure!(still_there(&all)?.is_empty(), "tree left behind");
    Ok(())
}
