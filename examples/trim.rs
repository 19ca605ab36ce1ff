//! Trim a mounted btrfs filesystem (`FITRIM`): tell the devices which blocks are unused, so thin
//! pools, sparse images and SSDs can reclaim them.
//!
//! ```text
//! cargo run --example trim -- [PATH] [--minimum SIZE] [--start SIZE --length SIZE] [--json]
//! ```
//!
//! Exit codes: 0 trimmed, 1 error, 2 usage error, 3 no device of the filesystem supports
//! discard (nothing to do; scripts looping over filesystems may treat it as success).

use btrfs_kit::trim::TrimOptions;
use btrfs_kit::{ByteSize, ErrorKind, Filesystem};
use clap::Parser;
use opskit::{errln, outln};
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_ERROR: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_NO_DISCARD: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    about = "Discard the unused space of a mounted btrfs filesystem (FITRIM); needs root",
    after_help = "--json prints one JSON document on stdout.\n\
Exit codes: 0 trimmed, 1 error, 2 usage error, 3 no device supports discard."
)]
struct Args {
    /// A path on the mounted btrfs filesystem.
    #[arg(default_value = "/var/lib/docker")]
    path: PathBuf,
    /// Skip free extents shorter than this (e.g. 64K; default: the devices' discard granularity).
    #[arg(short = 'm', long, value_name = "SIZE", default_value = "0")]
    minimum: ByteSize,
    /// First filesystem (logical) address to trim.
    #[arg(long, value_name = "SIZE", default_value = "0", requires = "length")]
    start: ByteSize,
    /// How many bytes of the address space to trim (default: all).
    #[arg(long, value_name = "SIZE")]
    length: Option<ByteSize>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    opskit::run(trim_and_report)
}

/// Trims, prints the outcome; returns the exit code.
fn trim_and_report() -> u8 {
    let args = Args::parse();
    let result = Filesystem::open(&args.path).and_then(|fs| {
        let mut options = TrimOptions::default().minimum_extent(args.minimum);
        if let Some(length) = args.length {
            options = options.range(args.start, length);
        }
        fs.trim(&options)
    });
    let (text, code) = match result {
        Ok(outcome) if args.json => (
            serde_json::json!({
                "path": args.path, "trimmed": outcome.trimmed.bytes(),
                "minimum_extent": outcome.minimum_extent.bytes(),
            })
            .to_string(),
            0,
        ),
        Ok(outcome) => (
            format!(
                "{}: {} ({:#} bytes) trimmed",
                args.path.display(),
                outcome.trimmed,
                outcome.trimmed
            ),
            0,
        ),
        Err(e) => {
            let code = match e.kind() {
                ErrorKind::DiscardUnsupported => EXIT_NO_DISCARD,
                ErrorKind::InvalidArguments { .. } => EXIT_USAGE,
                _ => EXIT_ERROR,
            };
            errln!("error: {e}");
            if args.json {
                let json = serde_json::json!({ "path": args.path, "error": e.to_string(),
                    "discard_supported": code != EXIT_NO_DISCARD });
                (json.to_string(), code)
            } else {
                return code;
            }
        }
    };
    outln!("{text}");
    code
}
