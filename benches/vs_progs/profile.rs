//! `--profile OP`: user-space instruction counts, repeatable on a noisy machine.
//!
//! Run the harness itself under callgrind, collecting only inside `measure::ours`; it builds a
//! small filesystem, calls our side of OP `--calls` times, and runs btrfs-progs' side once under
//! its own callgrind (spawned here), printing that count. `benches/callgrind.sh OP` does both
//! and prints instructions per call side by side.

use crate::fsbuild::{self, Template, MIB};
use crate::measure::{self, BenchResult};
use btrfs_kit::balance::{Balance, ChunkFilters};
use btrfs_kit::Filesystem;
use std::path::Path;
use std::process::Command;
use testkit::fixture::BtrfsOptions;

/// The operations that can be profiled.
pub const OPS: [&str; 4] = ["noop", "checked-noop", "space", "usage"];

/// Instructions btrfs-progs executes in user space for `btrfs ARGS PATH` (whole process,
/// dynamic loading included), from callgrind's `Collected` line.
fn progs_instructions(args: &[&str], path: &Path) -> BenchResult<u64> {
    let out = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "btrfs",
        ])
        .args(args)
        .arg(path)
        .output()
        .map_err(|e| format!("run valgrind (is it installed?): {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let count = stderr
        .lines()
        .find_map(|l| {
            l.split_once("Collected :")
                .map(|(_, n)| n.trim().to_string())
        })
        .ok_or_else(|| format!("no 'Collected' line from callgrind: {stderr}"))?;
    Ok(count.parse()?)
}

/// Runs `op` `calls` times on our side (inside `measure::ours`), then btrfs-progs' side once
/// under callgrind, and prints what to read.
pub fn run(op: &str, calls: u32) -> BenchResult<()> {
    let template = Template::build(
        1 << 30,
        BtrfsOptions::default(),
        fsbuild::no_empty_chunks(64 * MIB),
    )?;
    let scratch = template.clone_mounted()?;
    let path = scratch.path();
    let usage0 = Balance::new().data(ChunkFilters::usage_below(0));
    let progs_args: &[&str] = match op {
        "noop" => {
            measure::ours(calls, || {
                Ok(Filesystem::open(path)?.balance(&usage0)?.relocated())
            })?;
            &["balance", "start", "-dusage=0"]
        }
        "checked-noop" => {
            measure::ours(calls, || {
                let fs = Filesystem::open(path)?;
                let empty = fsbuild::data_groups(&fs)?
                    .iter()
                    .any(|g| g.used.bytes() == 0);
                Ok(if empty {
                    fs.balance(&usage0)?.relocated()
                } else {
                    0
                })
            })?;
            &["balance", "start", "-dusage=0"]
        }
        "space" => {
            let fs = Filesystem::open(path)?;
            measure::ours(calls, || Ok(fs.space_info()?))?;
            &["filesystem", "df", "-b"]
        }
        "usage" => {
            let fs = Filesystem::open(path)?;
            measure::ours(calls, || Ok(fs.usage()?))?;
            &["filesystem", "usage", "-b"]
        }
        other => return Err(format!("unknown op {other:?}; one of {OPS:?}").into()),
    };
    let progs = progs_instructions(progs_args, path)?;
    println!("ours: {calls} calls (see callgrind's total, collected inside measure::ours)");
    println!(
        "btrfs-progs: {progs} instructions for one `btrfs {}`",
        progs_args.join(" ")
    );
    Ok(())
}
