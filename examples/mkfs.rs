//! Formats a device or file as btrfs with the native formatter (no btrfs-progs needed).
//!
//! ```text
//! mkfs [--label L] [--metadata dup|single] [--nodesize N] [--csum ALG] [--size SIZE]
//!      [--fsid UUID] [--device-uuid UUID] [--time SECS] [--force] DEVICE|FILE
//! ```
//!
//! Prints the fsid and the chunk layout. A FILE that does not exist is created when `--size`
//! is given. SIZE and N take mkfs.btrfs's units: bytes, or a number with one of the suffixes
//! `k m g t p e` (powers of 1024, either case) or `b` (bytes), e.g. `300M`, `16k`.

use btrfs_kit::mkfs::{mkfs, MkfsOptions};
use opskit::{errln, outln};
use std::process::ExitCode;

const USAGE: &str = "usage: mkfs [--label L] [--metadata dup|single] [--nodesize N] \
[--csum crc32c|xxhash64|sha256|blake2b] [--size SIZE] [--fsid UUID] [--device-uuid UUID] [--time SECS] [--force] DEVICE|FILE";

/// A size as mkfs.btrfs reads `--byte-count` and `--nodesize`: whole bytes, or a whole number
/// with one suffix `k m g t p e` (powers of 1024, either case) or `b` (bytes), nothing after it.
fn parse_size(text: &str) -> Result<u64, String> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits);
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        "e" => 60,
        _ => {
            return Err(format!(
                "invalid size {text:?}: use bytes or a whole number with k, m, g, t, p or e (powers of 1024), e.g. 300M"
            ))
        }
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}: it does not start with a whole number"))?;
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("invalid size {text:?}: too large"))
}

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
                let size = parse_size(value()?).map_err(|e| format!("--nodesize: {e}"))?;
                opts.nodesize =
                    u32::try_from(size).map_err(|_| format!("--nodesize: {size} is too large"))?;
            }
            "--csum" => opts.checksum = value()?.parse().map_err(|e| format!("{e}"))?,
            "--size" | "-b" => {
                opts.size = Some(parse_size(value()?).map_err(|e| format!("--size: {e}"))?)
            }
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
    opskit::run(format_and_report)
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
