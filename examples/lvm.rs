//! `lvm`: give Docker its own logical volume, with lvm-kit.
//!
//! ```text
//! lvm [--backend cli|dbus] [--devices DEV,...] report [--json]
//! lvm ... create VG NAME SIZE [--inactive]
//! lvm ... extend LV SIZE|+SIZE
//! lvm ... remove LV
//! lvm ... grow-btrfs MOUNTPOINT SIZE|+SIZE
//! ```
//! SIZE takes lvm2's units, as `lvcreate -L` does: `10g`, `512m`, `1.5t`, `2048s`, `4096b`; a
//! number without a unit is MiB. LV is `VG/LV`, `/dev/VG/LV` or `/dev/mapper/VG-LV`.

use btrfs_kit::{Filesystem, ResizeTarget};
use clap::{Parser, Subcommand, ValueEnum};
use lvm_kit::name::parse_lv_name;
use lvm_kit::{Bytes, CliBackend, Confinement, DbusBackend, LvCreate, LvmBackend, NewSize, Report};
use opskit::{errln, outln};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Manage LVM volumes through the lvm2 CLI or lvmdbusd")]
struct Args {
    /// Which backend runs the commands.
    #[arg(long, value_enum, default_value_t = Backend::Cli, global = true)]
    backend: Backend,
    /// Confine LVM to these devices (comma-separated). Only for the cli backend: lvmdbusd is
    /// confined by the global_filter of its own lvm.conf.
    #[arg(long, value_delimiter = ',', global = true)]
    devices: Vec<PathBuf>,
    /// The D-Bus address of lvmdbusd's bus (default: the system bus).
    #[arg(long, global = true)]
    dbus_address: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    /// The lvm2 command-line tools.
    Cli,
    /// lvmdbusd over D-Bus.
    Dbus,
}

#[derive(Subcommand)]
enum Cmd {
    /// List PVs, VGs and LVs.
    Report {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a linear LV of at least SIZE in VG.
    Create {
        /// The volume group.
        vg: String,
        /// The new LV's name.
        name: String,
        /// The size in lvm2's units (`10g`, `512m`, `2048s`, `4096b`; no unit: MiB).
        #[arg(value_parser = Bytes::parse_lvm2)]
        size: Bytes,
        /// Write metadata only: do not activate (works without device-mapper).
        #[arg(long)]
        inactive: bool,
    },
    /// Grow an LV to SIZE, or by +SIZE.
    Extend {
        /// The LV: VG/LV, /dev/VG/LV or /dev/mapper/VG-LV.
        lv: String,
        /// SIZE or +SIZE, in lvm2's units (no unit: MiB).
        size: NewSize,
    },
    /// Remove an LV.
    Remove {
        /// The LV: VG/LV, /dev/VG/LV or /dev/mapper/VG-LV.
        lv: String,
    },
    /// Grow the LV under a mounted single-device btrfs, then grow the filesystem online.
    GrowBtrfs {
        /// Where the btrfs is mounted.
        mountpoint: PathBuf,
        /// SIZE or +SIZE for the LV, in lvm2's units (no unit: MiB).
        size: NewSize,
    },
}

fn main() -> ExitCode {
    opskit::run(|| match run(Args::parse()) {
        Ok(()) => 0,
        Err(e) => {
            errln!("lvm: {e}");
            1
        }
    })
}

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn backend(args: &Args) -> AnyResult<Box<dyn LvmBackend>> {
    Ok(match args.backend {
        Backend::Cli => {
            let mut cli = CliBackend::new();
            if !args.devices.is_empty() {
                cli = cli.with_confinement(&Confinement::new(args.devices.iter().cloned())?);
            }
            Box::new(cli)
        }
        Backend::Dbus if !args.devices.is_empty() => {
            return Err(
                "--devices applies to the cli backend; confine lvmdbusd with a \
                        global_filter in the lvm.conf it runs with"
                    .into(),
            )
        }
        Backend::Dbus => Box::new(match &args.dbus_address {
            Some(address) => DbusBackend::at_address(address)?,
            None => DbusBackend::system()?,
        }),
    })
}

fn run(args: Args) -> AnyResult<()> {
    let lvm = backend(&args)?;
    match args.command {
        Cmd::Report { json } => {
            let report = lvm.report()?;
            if json {
                outln!("{}", report_json(&report)?);
            } else {
                print_table(&report);
            }
        }
        Cmd::Create {
            vg,
            name,
            size,
            inactive,
        } => {
            let mut request = LvCreate::size(size);
            if inactive {
                request = request.inactive();
            }
            let lv = lvm.lv_create(&vg, &name, request)?;
            outln!(
                "created {} size {} ({} bytes)",
                lv.full_name(),
                lv.size,
                lv.size.get()
            );
        }
        Cmd::Extend { lv, size } => {
            let (vg, name) = parse_lv_name(&lv)?;
            let before = lvm.lv(&vg, &name)?.size;
            let after = lvm.lv_extend(&vg, &name, size)?;
            outln!(
                "{} size {} ({} bytes), was {} bytes",
                after.full_name(),
                after.size,
                after.size.get(),
                before.get()
            );
        }
        Cmd::Remove { lv } => {
            let (vg, name) = parse_lv_name(&lv)?;
            lvm.lv_remove(&vg, &name)?;
            outln!("removed {vg}/{name}");
        }
        Cmd::GrowBtrfs { mountpoint, size } => grow_btrfs(lvm.as_ref(), &mountpoint, size)?,
    }
    Ok(())
}

fn report_json(report: &Report) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&serde_json::json!({
        "pvs": report.pvs,
        "vgs": report.vgs,
        "lvs": report.lvs,
    }))
}

fn print_table(report: &Report) {
    outln!("{:<24} {:>16} {:>16} {:>8}", "VG", "SIZE", "FREE", "EXTENT");
    for vg in &report.vgs {
        outln!(
            "{:<24} {:>16} {:>16} {:>8}",
            vg.name,
            vg.size.get(),
            vg.free.get(),
            vg.extent_size.get()
        );
    }
    outln!("{:<40} {:>16} {:<10} PATH", "LV", "SIZE", "ATTR");
    for lv in report.lvs.iter().filter(|l| l.is_public()) {
        outln!(
            "{:<40} {:>16} {:<10} {}",
            lv.full_name(),
            lv.size.get(),
            lv.attr.raw,
            lv.path.display()
        );
    }
    outln!("{:<24} {:<24} {:>16} {:>16}", "PV", "VG", "SIZE", "FREE");
    for pv in &report.pvs {
        outln!(
            "{:<24} {:<24} {:>16} {:>16}",
            pv.name.display(),
            pv.vg_name.as_deref().unwrap_or("-"),
            pv.size.get(),
            pv.free.get()
        );
    }
}

/// `lvextend` the LV under a mounted btrfs, then `BTRFS_IOC_RESIZE` its device to `max`.
fn grow_btrfs(lvm: &dyn LvmBackend, mountpoint: &Path, size: NewSize) -> AnyResult<()> {
    let fs = Filesystem::open(mountpoint)?;
    let devices = fs.devices()?;
    let [device] = devices.as_slice() else {
        return Err(format!(
            "{} has {} devices; grow-btrfs handles a single-device btrfs on one LV",
            mountpoint.display(),
            devices.len()
        )
        .into());
    };
    let wanted = std::fs::canonicalize(&device.path)?;
    let report = lvm.report()?;
    let lv = report
        .lvs
        .iter()
        .find(|lv| {
            [&lv.path, &lv.dm_path]
                .iter()
                .any(|p| std::fs::canonicalize(p).is_ok_and(|p| p == wanted))
        })
        .ok_or_else(|| {
            format!(
                "the btrfs at {} is on {}, which is not an active LV that this backend sees",
                mountpoint.display(),
                device.path.display()
            )
        })?;
    let grown = lvm.lv_extend(&lv.vg_name, &lv.name, size)?;
    let fs_size = fs.resize(device.devid, ResizeTarget::Max)?;
    outln!(
        "{}: LV {} bytes, btrfs device {} now {} bytes",
        grown.full_name(),
        grown.size.get(),
        device.devid,
        fs_size.0
    );
    if fs_size.0 != grown.size.get() {
        return Err(format!(
            "btrfs device size {} differs from the LV size {} after resize",
            fs_size.0,
            grown.size.get()
        )
        .into());
    }
    Ok(())
}
