//! The `subvolume` example, end to end against a loop filesystem.

use crate::util::{run, MIB};
use btrfs_kit::subvolume;
use testkit::ensure;
use testkit::harness::{Failed, Trial};
use std::process::Output;
use testkit::fixture::Scratch;

pub fn trials() -> Vec<Trial> {
    testkit::trials![
        root: create_snapshot_list_show_delete_sync;
    ]
}

fn ok(out: &Output, what: &str) -> Result<String, Failed> {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "{what}: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(text)
}

fn failed(out: &Output, what: &str, needle: &str) -> Result<(), Failed> {
    let err = String::from_utf8_lossy(&out.stderr);
    {
        ensure!(
            out.status.code() == Some(1) && err.contains(needle),
            "{what} should fail naming {needle:?}: {:?} {err}",
            out.status
        );
        Ok(())
    }
}

fn json_lines(text: &str) -> Result<Vec<serde_json::Value>, Failed> {
    text.lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{e}: {l}").into()))
        .collect()
}

fn create_snapshot_list_show_delete_sync() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let p = |rel: &str| m.join(rel).to_string_lossy().into_owned();
    ok(&run("subvolume", &["create", &p("a")])?, "create a")?;
    std::fs::create_dir(m.join("a/dir"))?;
    ok(
        &run("subvolume", &["create", &p("a/dir/b")])?,
        "create a/dir/b",
    )?;
    ok(
        &run("subvolume", &["snapshot", "-r", &p("a"), &p("ro")])?,
        "snapshot -r",
    )?;
    ok(
        &run(
            "subvolume",
            &["snapshot", "--recursive", &p("a"), &p("deep")],
        )?,
        "snapshot --recursive",
    )?;

    let all = json_lines(&ok(
        &run("subvolume", &["list", &p(""), "--json"])?,
        "list --json",
    )?)?;
    let paths: Vec<&str> = all.iter().filter_map(|v| v["path"].as_str()).collect();
    ensure!(
        paths == ["a", "a/dir/b", "ro", "deep", "deep/dir/b"],
        "listed paths (pre-order, id order): {paths:?}"
    );
    let ro = json_lines(&ok(
        &run("subvolume", &["list", &p(""), "--json", "-r"])?,
        "list -r",
    )?)?;
    ensure!(
        ro.len() == 1 && ro[0]["path"] == "ro" && ro[0]["info"]["read_only"] == true,
        "read-only only: {ro:?}"
    );
    let table = ok(
        &run("subvolume", &["list", &p(""), "--sort=path"])?,
        "list table",
    )?;
    let rows: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    ensure!(
        rows == ["a", "a/dir/b", "deep", "deep/dir/b", "ro"],
        "table sorted by path:\n{table}"
    );
    let shown: serde_json::Value = serde_json::from_str(&ok(
        &run("subvolume", &["show", &p("ro"), "--json"])?,
        "show",
    )?)?;
    let a = subvolume::info(m.join("a"))?;
    ensure!(
        shown["parent_uuid"] == a.uuid.map(|u| u.to_string()).unwrap_or_default()
            && shown["read_only"] == true
            && shown["path"] == "ro",
        "show ro: {shown}"
    );

    failed(
        &run("subvolume", &["delete", &p("")])?,
        "delete the top level",
        "top-level",
    )?;
    std::fs::create_dir(m.join("plain"))?;
    failed(
        &run("subvolume", &["delete", &p("plain")])?,
        "delete a directory",
        "not a subvolume",
    )?;
    failed(
        &run("subvolume", &["delete", &p("a")])?,
        "delete a non-empty subvolume",
        "nested",
    )?;
    ok(&run("subvolume", &["delete", "-R", &p("a")])?, "delete -R")?;
    let ro_id = subvolume::subvolume_id(m.join("ro"))?.to_string();
    ok(
        &run("subvolume", &["delete", "--id", &ro_id, &p("")])?,
        "delete --id",
    )?;
    let synced = ok(&run("subvolume", &["sync", &p("")])?, "sync")?;
    ensure!(synced.contains("cleaned"), "{synced}");
    let left = json_lines(&ok(
        &run("subvolume", &["list", &p(""), "--json"])?,
        "list after",
    )?)?;
    let paths: Vec<&str> = left.iter().filter_map(|v| v["path"].as_str()).collect();
    ensure!(paths == ["deep", "deep/dir/b"], "left: {paths:?}");
    Ok(())
}
