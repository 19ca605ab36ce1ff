//! Reading `dockroot doctor --json` back: the document a run printed, one check of it, the
//! items a check lists. Shared with the workspace's Docker tier (`tests/docker/`), which
//! includes this file.

use serde_json::Value;
use std::process::Output;
use testkit::harness::Failed;

/// The JSON document a `doctor --json` run printed on stdout.
pub fn parse(out: &Output) -> Result<Value, Failed> {
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "doctor --json: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into()
    })
}

/// The check `id` of a doctor report.
pub fn check<'a>(report: &'a Value, id: &str) -> Result<&'a Value, Failed> {
    report["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == id))
        .ok_or_else(|| format!("no check {id} in {report}").into())
}

/// Every item a check lists (none when it has no `items`).
pub fn items(check: &Value) -> Vec<String> {
    check["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
