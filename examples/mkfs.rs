//! Formats a device or file as btrfs with the native formatter (no btrfs-progs needed).
//!
//! ```text
//! mkfs [--label L] [--metadata dup|single] [--nodesize N] [--csum ALG] [--size SIZE]
//!      [--fsid UUID] [--device-uuid UUID] [--time SECS] [--force] DEVICE|FILE
//! ```
//!
//! Prints the fsid and the chunk layout. A FILE that does not exist is created when `--size`
//! is given. SIZE and N take mkfs.btrfs's units: bytes, or a number with one of the suffixes
//! `k m g t p e` (powers of 1024, either case) or `b` (bytes), e.g. `300M`, `16k`. `--help`
//! says more; exit codes: 0 formatted, 1 mkfs failed, 2 bad arguments.

use btrfs_kit::mkfs::{mkfs, MetadataProfile, MkfsOptions};
use btrfs_kit::ByteSize;
use btrfs_kit::ChecksumType;
use clap::Parser;
use opskit::{errln, outln};
use std::process::ExitCode;

/// Formats a device or file as btrfs with the native formatter (no btrfs-progs needed).
///
/// Prints the fsid and the chunk layout. A FILE that does not exist is created when --size is
/// given. SIZE and N take mkfs.btrfs's units: bytes, or a number with one of the suffixes
/// k m g t p e (powers of 1024, either case) or b (bytes), e.g. 300M, 16k.
///
/// Exit codes: 0 formatted, 1 mkfs failed, 2 bad arguments.
#[derive(Parser, Debug)]
#[command(name = "mkfs")]
struct Args {
    /// The filesystem's label.
    #[arg(short = 'L', long, value_name = "L")]
    label: Option<String>,
    /// The metadata profile: dup or single.
    #[arg(short = 'm', long, value_name = "dup|single", value_parser = metadata)]
    metadata: Option<MetadataProfile>,
    /// The node (tree block) size, e.g. 16k.
    #[arg(short = 'n', long, value_name = "N", value_parser = nodesize)]
    nodesize: Option<u32>,
    /// The checksum algorithm: crc32c, xxhash64, sha256 or blake2b.
    #[arg(long, value_name = "ALG", value_parser = checksum)]
    csum: Option<ChecksumType>,
    /// The filesystem's size (default: the whole device or file), e.g. 300M.
    #[arg(short = 'b', long, value_name = "SIZE", value_parser = size)]
    size: Option<u64>,
    /// The filesystem's UUID (default: a random one).
    #[arg(long, value_name = "UUID")]
    fsid: Option<uuid::Uuid>,
    /// The device's UUID (default: a random one).
    #[arg(long, value_name = "UUID")]
    device_uuid: Option<uuid::Uuid>,
    /// The creation time in Unix seconds (default: now), for reproducible images.
    #[arg(long, value_name = "SECS")]
    time: Option<u64>,
    /// Format even if the target already holds a filesystem.
    #[arg(short = 'f', long)]
    force: bool,
    /// The device or file to format.
    #[arg(value_name = "DEVICE|FILE")]
    target: String,
}

/// A size as mkfs.btrfs reads `--byte-count` and `--nodesize`: bytes, or a number with one
/// suffix `k m g t p e` (powers of 1024, either case) or `b` (bytes).
fn size(text: &str) -> Result<u64, String> {
    text.parse::<ByteSize>().map(ByteSize::bytes).map_err(|_| {
        format!(
            "invalid size {text:?}: use bytes or a whole number with k, m, g, t, p or e (powers of 1024), e.g. 300M"
        )
    })
}

fn nodesize(text: &str) -> Result<u32, String> {
    let size = size(text)?;
    u32::try_from(size).map_err(|_| format!("{size} is too large"))
}

fn metadata(text: &str) -> Result<MetadataProfile, String> {
    text.parse().map_err(|e| format!("{e}"))
}

fn checksum(text: &str) -> Result<ChecksumType, String> {
    text.parse().map_err(|e| format!("{e}"))
}

impl Args {
    /// The formatter's options and the target.
    fn options(self) -> (MkfsOptions, String) {
        let mut opts = MkfsOptions::default();
        if let Some(label) = self.label {
            opts.label = label;
        }
        if let Some(metadata) = self.metadata {
            opts.metadata = metadata;
        }
        if let Some(nodesize) = self.nodesize {
            opts.nodesize = nodesize;
        }
        if let Some(checksum) = self.csum {
            opts.checksum = checksum;
        }
        opts.size = self.size;
        opts.fsid = self.fsid;
        opts.device_uuid = self.device_uuid;
        opts.time = self.time;
        opts.force = self.force;
        (opts, self.target)
    }
}

fn main() -> ExitCode {
    opskit::run(format_and_report)
}

/// Parses the arguments, formats, prints the layout; returns the exit code.
fn format_and_report() -> u8 {
    // clap prints --help and bad arguments itself and exits (2 for bad arguments).
    let (opts, target) = Args::parse().options();
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
