//! The workspace's example binaries, as the kernel tests run them: their paths next to this
//! test binary, their output and their JSON.

use std::path::PathBuf;
use std::process::{Command, Output};
use testkit::ensure;
use testkit::harness::Failed;

/// An example binary built by `cargo test` next to this test binary.
pub fn example(name: &str) -> Result<PathBuf, Failed> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .ok_or("no target dir")?;
    let path = dir.join("examples").join(name);
    ensure!(
        path.exists(),
        "{} is missing: build it with `cargo test` or `cargo build --examples`",
        path.display(),
    );
    Ok(path)
}

/// Runs the example `name` with `args` and returns its output.
pub fn run(name: &str, args: &[&str]) -> Result<Output, Failed> {
    Ok(Command::new(example(name)?).args(args).output()?)
}

/// A program's stdout parsed as one JSON document (the error shows stdout and stderr).
pub fn json(out: &Output) -> Result<serde_json::Value, Failed> {
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "bad JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into()
    })
}
