//! The unprivileged probe: this test binary run again as `nobody`, reporting what each call
//! gives an unprivileged caller.

use btrfs_kit::Filesystem;
use std::process::Command;
use testkit::ensure;
use testkit::harness::Failed;

/// How an unprivileged probe reports one call: `ok`, `permission-denied` or `other: ...`.
pub fn probe_result(r: Result<(), btrfs_kit::Error>) -> String {
    match r {
        Ok(()) => "ok".to_string(),
        Err(e) if matches!(e.kind(), btrfs_kit::ErrorKind::PermissionDenied { .. }) => {
            "permission-denied".to_string()
        }
        Err(e) => format!("other: {e}"),
    }
}

/// In a probe child: opens `path`, or prints `open=...` and gives `None`.
pub fn probe_open(path: &std::ffi::OsStr) -> Option<Filesystem> {
    match Filesystem::open(path) {
        Ok(fs) => Some(fs),
        Err(e) => {
            println!("open={}", probe_result(Err(e)));
            None
        }
    }
}

/// Runs this binary as `nobody` with `envs` selecting a probe and checks that it printed each
/// `call=result` line of `expected`.
pub fn expect_probe(
    envs: &[(&str, &std::ffi::OsStr)],
    expected: &[(&str, &str)],
) -> Result<(), Failed> {
    let out = run_as_nobody(envs)?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (call, result) in expected {
        let line = format!("{call}={result}");
        ensure!(
            text.lines().any(|l| l == line),
            "expected {line:?} in probe output:\n{text}"
        );
    }
    Ok(())
}

/// The uid and gid of `nobody`.
pub const NOBODY: u32 = 65534;

/// Runs this test binary again as uid/gid `nobody`, with `envs` telling it which probe to run.
///
/// It execs `/proc/self/exe`: the magic link needs no search permission on the binary's folders
/// and no copy of the binary, so no other thread can hold a copy open for writing at exec time
/// (which made exec fail with ETXTBSY when tests copied the binary in parallel).
pub fn run_as_nobody(envs: &[(&str, &std::ffi::OsStr)]) -> std::io::Result<std::process::Output> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("/proc/self/exe");
    for (key, value) in envs {
        cmd.env(key, value);
    }
    cmd.uid(NOBODY).gid(NOBODY).output()
}
