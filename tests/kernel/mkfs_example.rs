//! `examples/mkfs` from the command line: sizes in mkfs.btrfs's units, and what an
//! unprivileged caller is told.

use crate::data::MIB;
use crate::example_bin::{example, run};
use crate::unprivileged::NOBODY;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use testkit::ensure;
use testkit::harness::Failed;

testkit::register!(plain: sizes_take_units);
/// `--size 300M` and `--nodesize 16k` take units as mkfs.btrfs does; a bare number is bytes.
fn sizes_take_units() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let image = dir.path().join("units.img");
    let path = image.to_str().ok_or("path")?;
    let out = run("mkfs", &["--size", "300M", "--nodesize", "16k", path])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "mkfs --size 300M: {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
    ensure!(
        std::fs::metadata(&image)?.len() == 300 * MIB
            && stdout.contains(&format!("size        {} bytes", 300 * MIB))
            && stdout.contains("nodesize 16384"),
        "--size 300M --nodesize 16k made: {stdout}",
    );
    // A bare number is bytes, as for mkfs.btrfs -b: 300 bytes is too small, not a parse error.
    let out = run("mkfs", &["--size", "300", "--force", path])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1) && stderr.contains("300 bytes is too small"),
        "--size 300: {:?}: {stderr}",
        out.status,
    );
    let out = run("mkfs", &["--size", "300x", path])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(2) && stderr.contains("300M"),
        "--size 300x should name the units: {:?}: {stderr}",
        out.status,
    );
    Ok(())
}

testkit::register!(root: unprivileged_is_told_permission_denied);
/// As uid 65534, formatting a file it may not write says "permission denied" and the rights
/// it needs (file access, not a capability, and no "run as root" hint); so does creating a
/// file in a directory it may not write.
fn unprivileged_is_told_permission_denied() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let image = dir.path().join("root-only.img");
    std::fs::File::create(&image)?.set_len(300 * MIB)?;
    std::fs::set_permissions(&image, std::fs::Permissions::from_mode(0o600))?;
    let new_file = dir.path().join("new.img");
    for args in [
        vec![image.to_str().ok_or("path")?],
        vec!["--size", "300M", new_file.to_str().ok_or("path")?],
    ] {
        let out = Command::new(example("mkfs")?)
            .args(&args)
            .uid(NOBODY)
            .gid(NOBODY)
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.code() == Some(1)
                && stderr.contains("permission denied")
                && stderr.contains("read and write access")
                && !stderr.contains("CAP_SYS_ADMIN")
                && !stderr.contains("run as root"),
            "mkfs {args:?} as uid 65534: {:?}: {stderr}",
            out.status,
        );
    }
    ensure!(!new_file.exists(), "an unprivileged mkfs created a file");
    Ok(())
}
