//! Formats a device or file as btrfs with the native formatter (no btrfs-progs needed).
//!
//! ```text
//! mkfs [--label L] [--metadata dup|single] [--nodesize N] [--csum ALG] [--size BYTES]
//!      [--fsid UUID] [--device-uuid UUID] [--time SECS] [--force] DEVICE|FILE
//! ```
//!
//! Prints the fsid and the chunk layout. A FILE that does not exist is created when `--size`
//! is given.

use btrfs_kit::mkfs::{mkfs, MkfsOptions};
use dockroot::{errln, outln};
use std::process::ExitCode;

const USAGE: &str = "usage: mkfs [--label L] [--metadata dup|single] [--nodesize N] \
[--csum crc32c|xxhash64|sha256|blake2b] [--size BYTES] [--fsid UUID] [--device-uuid UUID] [--time SECS] [--force] DEVICE|FILE";

fn parse(args: &[String]) -> Result<(MkfsOptions, String), String> {
    let mut opts = MkfsOptions::default();
    let mut target = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--label" | "-L" => opts.label = value()?.clone(),
            "--metadata" | "-m" => opts.metadata = value()?.parse().map_err(|e| format!("{e}"))?,
            "--nodesize" | "-n" => {
                opts.nodesize = value()?.parse().map_err(|e| format!("--nodesize: {e}"))?
            }
            "--csum" => opts.checksum = value()?.parse().map_err(|e| format!("{e}"))?,
            "--size" => opts.size = Some(value()?.parse().map_err(|e| format!("--size: {e}"))?),
            "--fsid" => opts.fsid = Some(value()?.parse().map_err(|e| format!("--fsid: {e}"))?),
            "--device-uuid" => {
                opts.device_uuid = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--device-uuid: {e}"))?,
                )
            }
            "--time" => opts.time = Some(value()?.parse().map_err(|e| format!("--time: {e}"))?),
            "--force" | "-f" => opts.force = true,
            "--help" | "-h" => return Err(USAGE.into()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}\n{USAGE}")),
            s if target.is_none() => target = Some(s.to_string()),
            s => return Err(format!("unexpected argument {s}\n{USAGE}")),
        }
    }
    Ok((opts, target.ok_or_else(|| USAGE.to_string())?))
}

fn main() -> ExitCode {
    dockroot::cli::run(format_and_report)
}

/// Parses the arguments, formats, prints the layout; returns the exit code.
fn format_and_report() -> u8 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (opts, target) = match parse(&args) {
        Ok(p) => p,
        Err(e) => {
            errln!("{e}");
            return 2;
        }
    };
    let started = std::time::Instant::now();
    match mkfs(&target, &opts) {
        Ok(made) => {
            outln!("fsid        {}", made.fsid);
            outln!("device uuid {}", made.device_uuid);
            outln!("size        {} bytes", made.total_bytes);
            outln!(
                "nodesize {}  sectorsize {}  checksum {}  metadata {}",
                opts.nodesize,
                opts.sectorsize,
                opts.checksum,
                opts.metadata
            );
            for c in made.layout.chunks() {
                let kind = match c.flags & 7 {
                    1 => "data",
                    2 => "system",
                    _ => "metadata",
                };
                let stripes: Vec<String> = c.stripes.iter().map(|s| s.to_string()).collect();
                outln!(
                    "{kind:<9} logical {:>12} length {:>11}  physical {}",
                    c.logical,
                    c.length,
                    stripes.join(", ")
                );
            }
            outln!("done in {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
            0
        }
        Err(e) => {
            errln!("{e}");
            1
        }
    }
}
