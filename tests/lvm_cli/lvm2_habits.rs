//! What operators type from their lvm2 habits, through `examples/lvm` with the CLI backend,
//! each checked against lvm2 itself on the same VG: sizes in lvm2's units, LV device paths,
//! extends that cannot grow, and an unprivileged caller.

use crate::lvm_common::example::{self, ok};
use crate::lvm_common::fixture::Sandbox;
use lvm_kit::{Bytes, LvCreate, LvmBackend, MIB};
use std::process::Output;
use testkit::ensure;
use testkit::harness::{ctx, Failed};

/// Sizes as operators type them; for each, lvm2's `lvcreate -L` and the example's `create` must
/// agree: the same size, both refusing on the command line, or both failing with lvm2's message.
const SIZES: &[&str] = &[
    "100", "1", "4", "4m", "4M", "4k", "4K", "4096", "4096b", "4096B", "1b", "511b", "512b",
    "1000b", "1024b", "512.7b", "8s", "8S", "1s", "1.5s", "0", "0m", "0.0001", ".5", "0.5", ".5g",
    "0.3k", "1.5k", "1.0001k", "2g", "1G", "10GiB", "10GB", "4mb", "1t", "1T", "1p", "1P", "1e",
    "1E", "15e", "16e", "4194304", "+4m", "-4m", "++4m", "4 m", " 4m", "1,5", "inf", "nan", ".",
    "10%FREE", "m",
];

/// lvm2 accepts these through `strtod` (hex, exponents) or by ignoring what follows the unit;
/// the example refuses them as typos. Listed so the test notices if lvm2 changes.
const REFUSED_TYPOS: &[&str] = &["0x10", "1e1", "4mfoo", "4m "];

/// What one side did with a size.
#[derive(Debug)]
enum Outcome {
    /// Created an LV of this many bytes.
    Created(u64),
    /// Refused the command line (lvm2 exit 3, the example's usage error exit 2).
    Refused(String),
    /// The command failed later (lvm2 exit 5, the example's exit 1), with this message.
    Failed(String),
}

impl std::fmt::Display for Outcome {
    /// One short line, for the printed table.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = |m: &str| {
            let line = m.lines().next().unwrap_or("");
            line.chars().take(90).collect::<String>()
        };
        match self {
            Outcome::Created(b) => write!(f, "created {b} B"),
            Outcome::Refused(m) => write!(f, "refused: {}", short(m)),
            Outcome::Failed(m) => write!(f, "failed: {}", short(m)),
        }
    }
}

/// lvm2's error lines, without its warnings and usage hints.
fn lvm2_errors(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("WARNING") && !l.starts_with("Run `"))
        .map(str::to_owned)
        .collect()
}

/// `lvs` of `vg/lv` in bytes, then the LV removed.
fn size_then_remove(sb: &Sandbox, full: &str) -> Result<u64, Failed> {
    let size = sb.lvm_bytes("lvs", "lv_size", full)?;
    sb.lvm_text(&["lvremove", "-y", full])?;
    Ok(size)
}

fn lvm2_create(sb: &Sandbox, vg: &str, size: &str) -> Result<Outcome, Failed> {
    let out = sb.lvm_output(&[
        "lvcreate", "-an", "-Zn", "-y", "-L", size, "-n", "theirs", vg,
    ])?;
    let first = lvm2_errors(&out).into_iter().next().unwrap_or_default();
    Ok(match out.status.code() {
        Some(0) => Outcome::Created(size_then_remove(sb, &format!("{vg}/theirs"))?),
        Some(3) => Outcome::Refused(first),
        Some(5) => Outcome::Failed(first),
        other => return Err(format!("lvcreate -L {size:?}: exit {other:?}: {first}").into()),
    })
}

fn example_create(sb: &Sandbox, args: &[String], vg: &str, size: &str) -> Result<Outcome, Failed> {
    let out = example::run(args, &["create", "--inactive", vg, "ours", "--", size])?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    Ok(match out.status.code() {
        Some(0) => {
            let bytes = size_then_remove(sb, &format!("{vg}/ours"))?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            ensure!(
                stdout.contains(&format!("({bytes} bytes)")),
                "create {size:?} printed {stdout:?} for an LV of {bytes} bytes"
            );
            Outcome::Created(bytes)
        }
        Some(2) if stderr.contains("invalid size") => Outcome::Refused(stderr),
        Some(1) => Outcome::Failed(stderr),
        other => return Err(format!("example create {size:?}: exit {other:?}: {stderr}").into()),
    })
}

/// A VG of disk 0 with extents of `extent` (lvm2's default when `None`).
fn new_vg(sb: &Sandbox, tag: &str, extent: Option<Bytes>) -> Result<String, Failed> {
    let vg = sb.vg_name(tag);
    ctx("pv", sb.cli.pv_create(sb.disk(0)))?;
    ctx("vg", sb.cli.vg_create(&vg, &[sb.disk(0)], extent))?;
    Ok(vg)
}

/// A VG of 4 MiB extents holding the 8 MiB LV `lv`; returns the VG's name.
fn vg_with_lv(sb: &Sandbox, tag: &str, lv: &str) -> Result<String, Failed> {
    let vg = new_vg(sb, tag, Some(Bytes::mib(4)))?;
    let request = LvCreate::size(Bytes::mib(8)).inactive();
    ctx("lv", sb.cli.lv_create(&vg, lv, request))?;
    Ok(vg)
}

fn cli_args(sb: &Sandbox) -> Vec<String> {
    let devices: Vec<String> = sb.paths().iter().map(|p| p.display().to_string()).collect();
    vec![
        "--backend".into(),
        "cli".into(),
        "--devices".into(),
        devices.join(","),
    ]
}

testkit::register!(prefix "cli"; root: sizes_follow_lvm2_units);
/// Every size of [`SIZES`] means to the example what it means to `lvcreate -L`, in a VG of
/// 512-byte extents so that every sector counts. Prints the table.
fn sizes_follow_lvm2_units() -> Result<(), Failed> {
    let sb = Sandbox::new(1, 256 * MIB)?;
    let vg = new_vg(&sb, "units", Some(Bytes(512)))?;
    let args = cli_args(&sb);
    let mut wrong = Vec::new();
    println!("{:<10} | {:<60} | ours", "input", "lvm2 2.03 lvcreate -L");
    for &size in SIZES.iter().chain(REFUSED_TYPOS) {
        let theirs = lvm2_create(&sb, &vg, size)?;
        let ours = example_create(&sb, &args, &vg, size)?;
        println!(
            "{:<10} | {:<60} | {ours}",
            format!("{size:?}"),
            theirs.to_string()
        );
        let agree = match (&theirs, &ours) {
            (Outcome::Created(a), Outcome::Created(b)) => a == b,
            (Outcome::Refused(_), Outcome::Refused(_)) => true,
            (Outcome::Failed(theirs), Outcome::Failed(ours)) => ours.contains(theirs.as_str()),
            (Outcome::Created(_), Outcome::Refused(_)) => REFUSED_TYPOS.contains(&size),
            _ => false,
        };
        if !agree || (REFUSED_TYPOS.contains(&size) && !matches!(theirs, Outcome::Created(_))) {
            wrong.push(format!("{size:?}: lvm2 {theirs}; ours {ours}"));
        }
    }
    ensure!(
        wrong.is_empty(),
        "sizes that differ from lvm2:\n{}",
        wrong.join("\n")
    );
    Ok(())
}

testkit::register!(prefix "cli"; root: extend_that_cannot_grow_fails);
/// An extend by more than lvm2 can count in extents (1 EiB, 16 PiB in 4 MiB extents) fails and
/// changes nothing, as `lvextend -L +1e` does (lvm2 exits 5).
fn extend_that_cannot_grow_fails() -> Result<(), Failed> {
    let sb = Sandbox::new(1, 64 * MIB)?;
    let full = format!("{}/lv", vg_with_lv(&sb, "huge", "lv")?);
    let args = cli_args(&sb);
    for grow in ["+1e", "+16p"] {
        let theirs = sb.lvm_output(&["lvextend", "-y", "-L", grow, &full])?;
        ensure!(
            theirs.status.code() == Some(5),
            "lvm2 lvextend -L {grow}: {:?} {:?}",
            theirs.status,
            lvm2_errors(&theirs)
        );
        let ours = example::run(&args, &["extend", &full, grow])?;
        let stderr = String::from_utf8_lossy(&ours.stderr);
        ensure!(
            ours.status.code() == Some(1) && stderr.contains("32 bits"),
            "extend {grow}: {:?}: {}{stderr}",
            ours.status,
            String::from_utf8_lossy(&ours.stdout)
        );
        ensure!(
            sb.lvm_bytes("lvs", "lv_size", &full)? == 8 * MIB,
            "extend {grow} changed the LV"
        );
    }
    Ok(())
}

/// lvm2's device-mapper name of `vg/lv`: `-` doubled inside each name.
fn dm_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

testkit::register!(prefix "cli"; root: example_accepts_lvm2_lv_paths);
/// `extend` and `remove` take the LV forms lvm2's tools take: `/dev/VG/LV` and
/// `/dev/mapper/VG-LV` (with dashes doubled), checked against `lvextend` itself.
fn example_accepts_lvm2_lv_paths() -> Result<(), Failed> {
    let sb = Sandbox::new(1, 64 * MIB)?;
    let lv = "my-lv";
    let vg = vg_with_lv(&sb, "da-sh", lv)?;
    let full = format!("{vg}/{lv}");
    let mapper = format!("/dev/mapper/{}", dm_name(&vg, lv));
    // lvm2 itself takes the device-mapper form (no device-mapper needed to name it).
    sb.lvm_text(&["lvextend", "-y", "-L", "+4m", &mapper])?;
    ensure!(
        sb.lvm_bytes("lvs", "lv_size", &full)? == 12 * MIB,
        "lvm2's extend"
    );
    let args = cli_args(&sb);
    let dev = format!("/dev/{vg}/{lv}");
    for (form, expect) in [(&dev, 16), (&mapper, 20)] {
        ok(&example::run(&args, &["extend", form, "+4m"])?, form)?;
        ensure!(
            sb.lvm_bytes("lvs", "lv_size", &full)? == expect * MIB,
            "extend {form} +4m"
        );
    }
    let out = example::run(&args, &["extend", "/srv/x", "+4m"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("/dev/mapper/VG-LV"),
        "an unknown form should say which forms work: {err}"
    );
    ok(&example::run(&args, &["remove", &mapper])?, "remove")?;
    ensure!(
        ctx("report", sb.cli.report())?.lv(&vg, lv).is_none(),
        "{full} still there after remove {mapper}"
    );
    Ok(())
}

/// The uid an unprivileged probe runs as.
pub const NOBODY: u32 = 65534;

/// The environment variable that makes the test binary a child probe: `VG,DEVICE`.
pub const PROBE_ENV: &str = "LVM_KIT_TEST_UNPRIVILEGED_CREATE";

/// In a child started with [`PROBE_ENV`] (as uid 65534): tries an inactive lvcreate through
/// the library and prints the error kind. Returns the exit code, or `None` in a normal run.
pub fn child_probe() -> Option<i32> {
    let spec = std::env::var(PROBE_ENV).ok()?;
    let (vg, device) = spec.split_once(',')?;
    let confinement = lvm_kit::Confinement::new([device]).ok()?;
    let cli = lvm_kit::CliBackend::new()
        .with_confinement(&confinement)
        .with_metadata_backup(false);
    match cli.lv_create(vg, "probe", LvCreate::size(Bytes::mib(4)).inactive()) {
        Err(lvm_kit::Error::PermissionDenied { .. }) => println!("permission-denied"),
        Err(e) => println!("other: {e}"),
        Ok(lv) => println!("created {}", lv.full_name()),
    }
    Some(0)
}

testkit::register!(prefix "cli"; root: unprivileged_create_is_permission_denied);
/// As uid 65534, `create --inactive` fails with "permission denied" and says root is needed
/// (lvm2 cannot open its lock file, then says "Can't get lock", which is no busy VG), both
/// through the example and as the library's typed error.
fn unprivileged_create_is_permission_denied() -> Result<(), Failed> {
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new(1, 64 * MIB)?;
    let vg = new_vg(&sb, "nobody", None)?;
    let mut args = cli_args(&sb);
    args.extend(["create", "--inactive", vg.as_str(), "np", "4m"].map(String::from));
    let out = ctx(
        "run the example as uid 65534",
        std::process::Command::new(example::binary()?)
            .args(&args)
            .uid(NOBODY)
            .gid(NOBODY)
            .output(),
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1)
            && err.contains("permission denied")
            && err.contains("must run as root")
            && !err.contains("locked or busy"),
        "create as uid 65534: {:?}: {err}",
        out.status
    );
    let probe = ctx(
        "run the probe as uid 65534",
        std::process::Command::new("/proc/self/exe")
            .env(PROBE_ENV, format!("{vg},{}", sb.disk(0).display()))
            .uid(NOBODY)
            .gid(NOBODY)
            .output(),
    )?;
    let said = String::from_utf8_lossy(&probe.stdout);
    ensure!(
        probe.status.success() && said.trim() == "permission-denied",
        "library probe as uid 65534: {:?}: {said}{}",
        probe.status,
        String::from_utf8_lossy(&probe.stderr)
    );
    ensure!(
        ctx("report", sb.cli.report())?.lv(&vg, "np").is_none()
            && ctx("report", sb.cli.report())?.lv(&vg, "probe").is_none(),
        "an unprivileged create made an LV"
    );
    Ok(())
}
