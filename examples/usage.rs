//! Show space info and device usage like `btrfs filesystem df` and `btrfs filesystem usage`,
//! each device's error counters like `btrfs device stats`, and alarm when data or metadata is
//! too full or a device has errors.
//!
//! ```text
//! cargo run --example usage -- [PATH] [--json] [--warn PERCENT]   # PATH: /var/lib/docker
//! ```
//!
//! Devices btrfs knows no path for (a degraded mount) show as `<missing>` (`"missing": true` in
//! JSON); device slack is the part of a device beyond what btrfs uses.
//!
//! Exit codes: 0 below the threshold and no device errors, 1 error, 2 usage error, 3 data or
//! metadata usage at or above `--warn` (default 80 %), 4 a device has nonzero error counters
//! (read, write, flush, corruption or generation errors; this wins over 3). Without root only
//! space info and the error counters are available (the per-device figures need
//! CAP_SYS_ADMIN); the threshold is then checked on allocated chunks only.

use btrfs_kit::devstats::DeviceStats;
use btrfs_kit::name::escaped;
use btrfs_kit::{Error, Filesystem, Usage};
use clap::Parser;
use opskit::{errln, outln};
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_ERROR: u8 = 1;
const EXIT_OVER_THRESHOLD: u8 = 3;
const EXIT_DEVICE_ERRORS: u8 = 4;

#[derive(Parser, Debug)]
#[command(
    about = "Show btrfs space usage and device error counters; warn when data or metadata is too full",
    after_help = "Exit codes: 0 fine, 1 error, 2 usage error, 3 data or metadata at or above --warn, \
4 a device has nonzero error counters (wins over 3). --json prints one JSON document."
)]
struct Args {
    /// A path on the mounted btrfs filesystem.
    #[arg(default_value = "/var/lib/docker")]
    path: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Warn (exit 3) when data or metadata usage reaches this percentage.
    #[arg(long, default_value_t = 80.0, value_parser = parse_percent)]
    warn: f64,
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage"))?;
    (0.0..=100.0)
        .contains(&v)
        .then_some(v)
        .ok_or_else(|| format!("{v} is not within 0..100"))
}

fn main() -> ExitCode {
    opskit::run(|| match run(&Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {e}");
            EXIT_ERROR
        }
    })
}

fn run(args: &Args) -> Result<u8, Error> {
    let fs = Filesystem::open(&args.path)?;
    let info = fs.info()?;
    let fill = fs.fill()?;
    let (space, usage) = (&fill.space, &fill.usage);
    let (data_pct, meta_pct) = (
        fill.data_used_ratio * 100.0,
        fill.metadata_used_ratio * 100.0,
    );
    let over = data_pct >= args.warn || meta_pct >= args.warn;
    let stats = fs.device_stats_all()?;
    let device_errors = stats.iter().any(|s| s.total() > 0);
    if args.json {
        let report = serde_json::json!({
            "path": args.path,
            "info": info,
            "space": space,
            "usage": usage,
            "data_used_percent": data_pct,
            "metadata_used_percent": meta_pct,
            "warn_percent": args.warn,
            "over_threshold": over,
            "device_stats": stats,
            "device_errors": device_errors,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        outln!(
            "{} (label {:?}, fsid {}, {} checksums)",
            args.path.display(),
            info.label,
            info.fsid,
            info.checksum
        );
        for s in space {
            outln!(
                "{}, {}: total={}, used={}",
                s.kind,
                s.profile,
                s.total,
                s.used
            );
        }
        match usage {
            Some(u) => print_usage(u),
            None => outln!("(per-device usage needs root: CAP_SYS_ADMIN)"),
        }
        outln!(
            "data used: {data_pct:.1}%, metadata used: {meta_pct:.1}% (warn at {:.0}%)",
            args.warn
        );
        print_device_stats(&stats);
        if over {
            errln!(
                "warning: {} is above {:.0}% full: free space or run the balance example",
                args.path.display(),
                args.warn
            );
        }
        if device_errors {
            errln!(
                "warning: a device of {} has errors: check its health (SMART, cables) and run the scrub example to find damaged files",
                args.path.display()
            );
        }
    }
    Ok(if device_errors {
        EXIT_DEVICE_ERRORS
    } else if over {
        EXIT_OVER_THRESHOLD
    } else {
        0
    })
}

/// Each device's counters, as `btrfs device stats` names them.
fn print_device_stats(stats: &[DeviceStats]) {
    outln!("Device errors:");
    for s in stats {
        let counters: Vec<String> = s
            .named()
            .iter()
            .map(|(name, value)| format!("{name} {value}"))
            .collect();
        outln!("    device {}: {}", s.devid, counters.join(", "));
    }
}

fn print_usage(u: &Usage) {
    outln!("Overall:");
    outln!("    Device size:        {:>12}", u.device_size.to_string());
    outln!(
        "    Device allocated:   {:>12}",
        u.device_allocated.to_string()
    );
    outln!(
        "    Device unallocated: {:>12}",
        u.device_unallocated.to_string()
    );
    outln!(
        "    Device missing:     {:>12}",
        u.device_missing.to_string()
    );
    outln!("    Device slack:       {:>12}", u.device_slack.to_string());
    outln!("    Used:               {:>12}", u.used.to_string());
    outln!(
        "    Free (estimated):   {:>12}  (min: {})",
        u.free_estimated.to_string(),
        u.free_min
    );
    outln!("    Data ratio:         {:>12.2}", u.data_ratio);
    outln!("    Metadata ratio:     {:>12.2}", u.metadata_ratio);
    outln!(
        "    Global reserve:     {:>12}  (used: {})",
        u.global_reserve.to_string(),
        u.global_reserve_used
    );
    for d in &u.devices {
        let path = if d.missing {
            "<missing>".to_string()
        } else {
            escaped(d.path.as_os_str()).to_string()
        };
        outln!(
            "Device {} {path}: size {}, slack {}, unallocated {}",
            d.devid,
            d.size,
            d.slack,
            d.unallocated
        );
        for a in &d.allocated {
            outln!("    {},{}: {}", a.kind, a.profile, a.bytes);
        }
    }
}
