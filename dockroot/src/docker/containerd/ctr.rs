//! What containerd's API says, through `ctr` (which ships with containerd), when its databases
//! are open and must not be read: namespaces, snapshots and plugin status.
//!
//! The outputs parsed (containerd 1.6 to 2.1 print the same; columns are aligned with spaces by
//! Go's tabwriter, and no field holds a space):
//!
//! * `ctr --address SOCK namespaces ls -q`: one namespace per line;
//! * `ctr --address SOCK -n NS snapshots --snapshotter S ls`: a header `KEY PARENT KIND`, then
//!   one line per snapshot, the parent column empty for a base layer (so two or three fields:
//!   key first, kind last: `View`, `Active` or `Committed`);
//! * `ctr --address SOCK plugins ls`: a header `TYPE ID PLATFORMS STATUS`, then one line per
//!   plugin, the status last (`ok`, `skip`, `error`), platforms `-` when none.

use super::snapshotter::Kind;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why `ctr` gave no answer.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` failed: {detail}; is containerd running on that socket and ctr installed (it ships with containerd)?")]
pub struct CtrError {
    /// The command line.
    pub command: String,
    /// What went wrong (its stderr, or why it did not start).
    pub detail: String,
}

/// A client of one containerd through `ctr`.
#[derive(Debug, Clone)]
pub struct Ctr {
    program: PathBuf,
    address: PathBuf,
}

/// A snapshot as `ctr snapshots ls` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CtrSnapshot {
    /// Its key in the namespace.
    pub key: String,
    /// Its parent's key.
    pub parent: Option<String>,
    /// Its kind.
    pub kind: Kind,
}

impl Ctr {
    /// `program` talking to the containerd on `address`.
    pub fn new(program: impl Into<PathBuf>, address: impl Into<PathBuf>) -> Ctr {
        Ctr {
            program: program.into(),
            address: address.into(),
        }
    }

    /// The socket.
    pub fn address(&self) -> &Path {
        &self.address
    }

    fn run(&self, args: &[&str]) -> Result<String, CtrError> {
        let command = format!(
            "{} --address {} {}",
            self.program.display(),
            self.address.display(),
            args.join(" ")
        );
        let out = Command::new(&self.program)
            .arg("--address")
            .arg(&self.address)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| CtrError {
                command: command.clone(),
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(CtrError {
                command,
                detail: format!(
                    "{}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The namespaces.
    pub fn namespaces(&self) -> Result<Vec<String>, CtrError> {
        Ok(parse_lines(&self.run(&["namespaces", "ls", "-q"])?))
    }

    /// The snapshots of `snapshotter` in `namespace`.
    pub fn snapshots(
        &self,
        namespace: &str,
        snapshotter: &str,
    ) -> Result<Vec<CtrSnapshot>, CtrError> {
        let text = self.run(&[
            "-n",
            namespace,
            "snapshots",
            "--snapshotter",
            snapshotter,
            "ls",
        ])?;
        parse_snapshots(&text).map_err(|detail| CtrError {
            command: format!("ctr -n {namespace} snapshots --snapshotter {snapshotter} ls"),
            detail,
        })
    }

    /// The status of plugin `kind`/`id` (`ok`, `skip`, `error`), None when not listed.
    pub fn plugin_status(&self, kind: &str, id: &str) -> Result<Option<String>, CtrError> {
        Ok(parse_plugin_status(
            &self.run(&["plugins", "ls"])?,
            kind,
            id,
        ))
    }
}

fn parse_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Parses `ctr snapshots ls`.
pub fn parse_snapshots(text: &str) -> Result<Vec<CtrSnapshot>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields == ["KEY", "PARENT", "KIND"] {
            continue;
        }
        let (key, parent, kind) = match fields.as_slice() {
            [key, kind] => (*key, None, *kind),
            [key, parent, kind] => (*key, Some(parent.to_string()), *kind),
            _ => return Err(format!("an unexpected line {line:?}")),
        };
        let kind = Kind::from_ctr(kind).ok_or_else(|| format!("an unknown kind in {line:?}"))?;
        out.push(CtrSnapshot {
            key: key.into(),
            parent,
            kind,
        });
    }
    Ok(out)
}

/// The status column of the `ctr plugins ls` line of `kind`/`id`.
pub fn parse_plugin_status(text: &str, kind: &str, id: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() >= 3 && f[0] == kind && f[1] == id).then(|| f[f.len() - 1].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listings_with_and_without_parents() {
        let text = "KEY                                                                     PARENT                                                                  KIND\nsha256:23e8a12d778c86c87e003cb8c570241949046d114d3f77eb948b2eb92ac23fd3                                                                         Committed\nabc-init                                                                sha256:23e8a12d778c86c87e003cb8c570241949046d114d3f77eb948b2eb92ac23fd3 Committed\nabc   abc-init   Active\n";
        let s = parse_snapshots(text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].parent.as_deref(), s[0].kind), (None, Kind::Committed));
        assert_eq!(s[2].parent.as_deref(), Some("abc-init"));
        assert_eq!(s[2].kind, Kind::Active);
        assert!(parse_snapshots("a b c d\n").is_err());
        let plugins = "TYPE                                   ID                       PLATFORMS      STATUS\nio.containerd.snapshotter.v1           btrfs                    linux/amd64    skip\nio.containerd.snapshotter.v1           native                   linux/amd64    ok\n";
        assert_eq!(
            parse_plugin_status(plugins, "io.containerd.snapshotter.v1", "btrfs").as_deref(),
            Some("skip")
        );
        assert_eq!(
            parse_plugin_status(plugins, "io.containerd.snapshotter.v1", "zfs"),
            None
        );
    }
}
