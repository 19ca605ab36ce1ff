//! `subvolume`: list, show, create, snapshot, delete and sync btrfs subvolumes through
//! btrfs-kit (no btrfs-progs).
//!
//! ```text
//! subvolume list [PATH] [--json] [-r|--readonly-only] [--sort=path|id|otime] [--mode=auto|privileged|unprivileged]
//! subvolume show PATH [--json]
//! subvolume create PATH
//! subvolume snapshot [-r] [--recursive] SRC DST
//! subvolume delete [-R] PATH
//! subvolume delete --id N PATH
//! subvolume sync [PATH]
//! ```
//!
//! PATH defaults to `/var/lib/docker`.
//!
//! Names are bytes on Linux and need not be UTF-8: text output escapes them (`\xe9` for a
//! byte that is not UTF-8, `\x0a` for a newline, `\\` for a backslash), so each subvolume is one
//! line; JSON gives `path` and `name` exactly when they are UTF-8, and otherwise the escaped
//! text plus the raw bytes in `path_bytes` / `name_bytes`.

use btrfs_kit::name::escaped;
use btrfs_kit::subvolume::{self, Entry, Mode, Recursion, SnapshotOptions, SubvolumeInfo};
use btrfs_kit::Filesystem;
use clap::{Parser, Subcommand, ValueEnum};
use opskit::{errln, outln};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

const DEFAULT_PATH: &str = "/var/lib/docker";

#[derive(Parser)]
#[command(about = "Manage btrfs subvolumes through kernel ioctls")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum SortKey {
    Path,
    Id,
    Otime,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Auto,
    Privileged,
    Unprivileged,
}

#[derive(Subcommand)]
enum Command {
    /// List the subvolumes below PATH.
    List {
        #[arg(default_value = DEFAULT_PATH)]
        path: PathBuf,
        /// One JSON object per line (JSON Lines), one line per subvolume; a name that is not
        /// UTF-8 also comes as raw bytes (`path_bytes`, `name_bytes`).
        #[arg(long)]
        json: bool,
        /// Only read-only subvolumes.
        #[arg(short = 'r', long = "readonly-only")]
        readonly_only: bool,
        /// Sort order; without it, subvolumes stream in pre-order as they are found.
        #[arg(long, value_enum)]
        sort: Option<SortKey>,
        /// Force the privileged or unprivileged kernel interface.
        #[arg(long, value_enum, default_value = "auto")]
        mode: ModeArg,
    },
    /// Show one subvolume.
    Show {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Create an empty subvolume.
    Create { path: PathBuf },
    /// Snapshot SRC as DST.
    Snapshot {
        /// Read-only snapshot.
        #[arg(short = 'r')]
        read_only: bool,
        /// Also snapshot nested subvolumes.
        #[arg(long)]
        recursive: bool,
        src: PathBuf,
        dst: PathBuf,
    },
    /// Delete a subvolume by path, or by id on the filesystem holding PATH.
    Delete {
        /// Delete nested subvolumes first.
        #[arg(short = 'R', long)]
        recursive: bool,
        /// Delete the subvolume with this id.
        #[arg(long)]
        id: Option<u64>,
        path: PathBuf,
    },
    /// Wait until deleted subvolumes are cleaned (their space freed).
    Sync {
        #[arg(default_value = DEFAULT_PATH)]
        path: PathBuf,
    },
}

fn main() -> ExitCode {
    opskit::run(|| match run(Cli::parse().command) {
        Ok(()) => 0,
        Err(e) => {
            errln!("error: {e}");
            1
        }
    })
}

fn run(command: Command) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::List {
            path,
            json,
            readonly_only,
            sort,
            mode,
        } => list(&path, json, readonly_only, sort, mode),
        Command::Show { path, json } => {
            let info = subvolume::info(&path)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                show(&info);
            }
            Ok(())
        }
        Command::Create { path } => {
            subvolume::create(&path)?;
            outln!("created {}", escaped(path.as_os_str()));
            Ok(())
        }
        Command::Snapshot {
            read_only,
            recursive,
            src,
            dst,
        } => {
            let options = SnapshotOptions {
                read_only,
                recursive,
                ..Default::default()
            };
            subvolume::snapshot(&src, &dst, &options)?;
            outln!(
                "snapshot of {} at {}",
                escaped(src.as_os_str()),
                escaped(dst.as_os_str())
            );
            Ok(())
        }
        Command::Delete {
            recursive,
            id,
            path,
        } => {
            match id {
                Some(id) => Filesystem::open(&path)?.delete_subvolume_by_id(id)?,
                None => {
                    let recursion = if recursive {
                        Recursion::Yes
                    } else {
                        Recursion::No
                    };
                    subvolume::delete(&path, recursion)?;
                }
            }
            outln!("deleted");
            Ok(())
        }
        Command::Sync { path } => {
            let ids = Filesystem::open(&path)?.wait_for_deleted_subvolumes()?;
            outln!("{} deleted subvolume(s) cleaned", ids.len());
            Ok(())
        }
    }
}

fn list(
    path: &std::path::Path,
    json: bool,
    readonly_only: bool,
    sort: Option<SortKey>,
    mode: ModeArg,
) -> Result<(), Box<dyn std::error::Error>> {
    let fs = Filesystem::open(path)?;
    let mode = match mode {
        ModeArg::Auto => Mode::Auto,
        ModeArg::Privileged => Mode::Privileged,
        ModeArg::Unprivileged => Mode::Unprivileged,
    };
    let iter = fs.subvolumes().mode(mode).iter()?;
    let keep = |e: &Entry| !readonly_only || e.subvolume().is_some_and(|s| s.info.read_only);
    let print = |e: &Entry| {
        if json {
            serde_json::to_string(e).map(|s| outln!("{s}"))
        } else {
            print_row(e);
            Ok(())
        }
    };
    if !json {
        outln!(
            "{:>8} {:>8} {:>8} {:<3} {:<20} PATH",
            "ID",
            "PARENT",
            "GEN",
            "RO",
            "CREATED"
        );
    }
    match sort {
        None => {
            for entry in iter {
                let entry = entry?;
                if keep(&entry) {
                    print(&entry)?;
                }
            }
        }
        Some(key) => {
            let mut all = iter
                .filter(|e| e.as_ref().is_ok_and(keep) || e.is_err())
                .collect::<Result<Vec<_>, _>>()?;
            match key {
                SortKey::Id => all.sort_by_key(Entry::id),
                SortKey::Path => all.sort_by_key(path_of),
                SortKey::Otime => all.sort_by_key(|e| e.subvolume().and_then(|s| s.info.otime)),
            }
            for entry in &all {
                print(entry)?;
            }
        }
    }
    Ok(())
}

fn path_of(e: &Entry) -> Option<PathBuf> {
    match e {
        Entry::Subvolume(s) => Some(s.path.clone()),
        Entry::Unreachable(u) => u.path.clone(),
    }
}

fn print_row(e: &Entry) {
    match e {
        Entry::Subvolume(s) => outln!(
            "{:>8} {:>8} {:>8} {:<3} {:<20} {}",
            s.info.id,
            s.info.parent_id.unwrap_or(0),
            s.info.generation,
            if s.info.read_only { "ro" } else { "rw" },
            time(s.info.otime),
            escaped(s.path.as_os_str())
        ),
        Entry::Unreachable(u) => outln!(
            "{:>8} {:>8} {:>8} {:<3} {:<20} {} (unreachable: {})",
            u.id,
            u.parent_id,
            "-",
            "-",
            "-",
            u.path
                .as_ref()
                .map_or("?".into(), |p| escaped(p.as_os_str()).to_string()),
            u.reason
        ),
    }
}

/// UTC `YYYY-MM-DD HH:MM:SS`; `-` for no time, or one RFC 3339 cannot write (before 1970,
/// from the year 10000 on: a damaged item).
fn time(t: Option<SystemTime>) -> String {
    let writable =
        SystemTime::UNIX_EPOCH..SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_800);
    match t.filter(|t| writable.contains(t)) {
        Some(t) => humantime::format_rfc3339_seconds(t)
            .to_string()
            .replacen('T', " ", 1)
            .trim_end_matches('Z')
            .to_string(),
        None => "-".into(),
    }
}

fn show(i: &SubvolumeInfo) {
    fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
        v.map_or("-".to_string(), |v| v.to_string())
    }
    let uuid = opt::<btrfs_kit::subvolume::Uuid>;
    outln!(
        "{}",
        i.path
            .as_ref()
            .map_or("(path needs CAP_SYS_ADMIN)".into(), |p| escaped(
                p.as_os_str()
            )
            .to_string())
    );
    outln!("\tName:\t\t\t{}", escaped(&i.name));
    outln!("\tUUID:\t\t\t{}", uuid(i.uuid));
    outln!("\tParent UUID:\t\t{}", uuid(i.parent_uuid));
    outln!("\tReceived UUID:\t\t{}", uuid(i.received_uuid));
    outln!("\tCreation time:\t\t{}", time(i.otime));
    outln!("\tSubvolume ID:\t\t{}", i.id);
    outln!("\tGeneration:\t\t{}", i.generation);
    outln!("\tGen at creation:\t{}", i.otransid);
    outln!("\tParent ID:\t\t{}", opt(i.parent_id));
    outln!(
        "\tFlags:\t\t\t{}",
        if i.read_only { "readonly" } else { "-" }
    );
    outln!("\tSend transid:\t\t{}", opt(i.stransid));
    outln!("\tReceive transid:\t{}", opt(i.rtransid));
}
