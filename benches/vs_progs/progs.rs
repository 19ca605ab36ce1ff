//! Parsing btrfs-progs' output, as a tool that shells out must.

use crate::measure::{BenchResult, ProgsRun};
use std::collections::BTreeMap;

/// The numbers in `text`, in order (digits only; `1.00` gives 1 and 0).
fn numbers(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// `Done, had to relocate X out of Y chunks` → X (chunks relocated).
pub fn balance_done(run: &ProgsRun) -> BenchResult<u64> {
    run.expect_code(&[0])?;
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("had to relocate"))
        .ok_or_else(|| {
            format!(
                "btrfs {:?}: no 'had to relocate' in {:?}",
                run.args, run.stdout
            )
        })?;
    numbers(line)
        .first()
        .copied()
        .ok_or_else(|| format!("no count in {line:?}").into())
}

/// One line of `btrfs filesystem df -b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfLine {
    /// `Data`, `Metadata`, `System`, `GlobalReserve`.
    pub kind: String,
    /// `single`, `DUP`...
    pub profile: String,
    /// Bytes allocated.
    pub total: u64,
    /// Bytes used.
    pub used: u64,
}

/// `Data, single: total=360710144, used=251658240` per line.
pub fn df(run: &ProgsRun) -> BenchResult<Vec<DfLine>> {
    run.expect_code(&[0])?;
    run.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (head, tail) = line
                .split_once(':')
                .ok_or_else(|| format!("df line without ':': {line:?}"))?;
            let (kind, profile) = head
                .split_once(',')
                .ok_or_else(|| format!("df line without ',': {line:?}"))?;
            let value = |key: &str| -> BenchResult<u64> {
                let start = tail
                    .find(key)
                    .ok_or_else(|| format!("df line without {key}: {line:?}"))?
                    + key.len();
                let digits: String = tail[start..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                Ok(digits.parse()?)
            };
            Ok(DfLine {
                kind: kind.trim().to_string(),
                profile: profile.trim().to_string(),
                total: value("total=")?,
                used: value("used=")?,
            })
        })
        .collect()
}

/// What `btrfs filesystem usage -b` prints, parsed.
#[derive(Debug, Default)]
pub struct UsageReport {
    /// The `Overall:` figures by name (`Device size`, `Free (estimated)`...), ratios ×100.
    pub overall: BTreeMap<String, u64>,
    /// The per kind/profile sections (`Data,single`, `Unallocated`).
    pub sections: Vec<UsageSection>,
}

/// One section of `btrfs filesystem usage`: name, size, used, and bytes per device.
#[derive(Debug)]
pub struct UsageSection {
    /// `Data,single`, `Unallocated`...
    pub name: String,
    /// Its size (0 for `Unallocated`).
    pub size: u64,
    /// Bytes used (0 for `Unallocated`).
    pub used: u64,
    /// (device path, bytes) per device.
    pub devices: Vec<(String, u64)>,
}

/// Parses the overall figures, the per-kind sections and their device lines.
pub fn usage(run: &ProgsRun) -> BenchResult<UsageReport> {
    run.expect_code(&[0])?;
    let mut report = UsageReport::default();
    let mut in_overall = false;
    for line in run.stdout.lines() {
        if line.trim().is_empty() {
            in_overall = false;
            continue;
        }
        if line.starts_with("Overall:") {
            in_overall = true;
            continue;
        }
        if in_overall {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("usage line without ':': {line:?}"))?;
            let value = value.trim();
            let n = if let Some((int, frac)) = value.split_once('.') {
                // Ratios such as "1.00": keep two decimals.
                let frac: String = frac.chars().take_while(char::is_ascii_digit).collect();
                int.parse::<u64>()? * 100 + frac.parse::<u64>().unwrap_or(0)
            } else {
                numbers(value).first().copied().unwrap_or(0)
            };
            report.overall.insert(name.trim().to_string(), n);
        } else if !line.starts_with(char::is_whitespace) {
            let (name, rest) = line
                .split_once(':')
                .ok_or_else(|| format!("usage section without ':': {line:?}"))?;
            // `Data,single: Size:N, Used:N (x%)`; `Unallocated:` has no figures of its own.
            let n = numbers(rest);
            let (size, used) = match (name, n.as_slice()) {
                ("Unallocated", _) => (0, 0),
                (_, [size, used, ..]) => (*size, *used),
                _ => return Err(format!("usage section without size and used: {line:?}").into()),
            };
            report.sections.push(UsageSection {
                name: name.to_string(),
                size,
                used,
                devices: Vec::new(),
            });
        } else {
            let mut parts = line.split_whitespace();
            let (Some(device), Some(bytes)) = (parts.next(), parts.next()) else {
                return Err(format!("usage device line: {line:?}").into());
            };
            let section = report
                .sections
                .last_mut()
                .ok_or_else(|| format!("device line before any section: {line:?}"))?;
            section.devices.push((device.to_string(), bytes.parse()?));
        }
    }
    if !report.overall.contains_key("Device size") {
        return Err(format!("no 'Device size' in usage output: {:?}", run.stdout).into());
    }
    Ok(report)
}

/// A balance as `btrfs balance status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusReport {
    /// Whether it says "is running".
    pub running: bool,
    /// Chunks relocated so far.
    pub relocated: u64,
    /// Chunks expected.
    pub expected: u64,
    /// Chunks considered.
    pub considered: u64,
}

/// `Balance on '/mnt' is running` / `1 out of about 3 chunks balanced (2 considered), 67% left`,
/// or `No balance found on '/mnt'` (`None`).
pub fn status(run: &ProgsRun) -> BenchResult<Option<StatusReport>> {
    // 0: no balance; 1: a balance is running or paused.
    run.expect_code(&[0, 1])?;
    if run.stdout.contains("No balance found") {
        return Ok(None);
    }
    let running = run
        .stdout
        .lines()
        .next()
        .is_some_and(|l| l.contains("is running"));
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("chunks balanced"))
        .ok_or_else(|| format!("balance status: {:?}", run.stdout))?;
    let n = numbers(line);
    if n.len() < 3 {
        return Err(format!("balance status line: {line:?}").into());
    }
    Ok(Some(StatusReport {
        running,
        relocated: n[0],
        expected: n[1],
        considered: n[2],
    }))
}
