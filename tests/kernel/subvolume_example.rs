//! The `subvolume` example, end to end against a loop filesystem.

use crate::data::MIB;
use crate::example_bin::{example, run};
use btrfs_kit::subvolume;
use std::process::Output;
use testkit::ensure;
use testkit::fixture::Scratch;
use testkit::harness::Failed;

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
    ensure!(
        out.status.code() == Some(1) && err.contains(needle),
        "{what} should fail naming {needle:?}: {:?} {err}",
        out.status,
    );
    Ok(())
}

fn json_lines(text: &str) -> Result<Vec<serde_json::Value>, Failed> {
    text.lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{e}: {l}").into()))
        .collect()
}

testkit::register!(root: create_snapshot_list_show_delete_sync);
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
        "listed paths (pre-order, id order): {paths:?}",
    );
    let ro = json_lines(&ok(
        &run("subvolume", &["list", &p(""), "--json", "-r"])?,
        "list -r",
    )?)?;
    ensure!(
        ro.len() == 1 && ro[0]["path"] == "ro" && ro[0]["info"]["read_only"] == true,
        "read-only only: {ro:?}",
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
        "show ro: {shown}",
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

testkit::register!(root: names_that_are_not_utf8_are_listed_and_shown_losslessly);
/// Linux names are bytes: a subvolume whose name is Latin-1 (not UTF-8), one with a newline
/// and one with a literal backslash are listed with all the others (text and JSON, both
/// kernel interfaces) and shown; text escapes them, one line each, and JSON carries the exact
/// bytes. (Issue 15 item 6: `list --json` printed 10 of 13 and exited 1.)
fn names_that_are_not_utf8_are_listed_and_shown_losslessly() -> Result<(), Failed> {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let scratch = Scratch::btrfs(512 * MIB)?;
    let m = scratch.path();
    let odd: [&[u8]; 3] = [b"caf\xe9", b"two\nlines", b"back\\xe9slash"];
    for i in 0..10 {
        subvolume::create(m.join(format!("plain{i:02}")))?;
    }
    for name in odd {
        subvolume::create(m.join(OsStr::from_bytes(name)))?;
    }
    let total = 10 + odd.len();
    // The library yields every one, with its exact name.
    let fs = btrfs_kit::Filesystem::open(m)?;
    for mode in [subvolume::Mode::Privileged, subvolume::Mode::Unprivileged] {
        let names: Vec<Vec<u8>> = fs
            .subvolumes()
            .mode(mode)
            .iter()?
            .map(|e| {
                Ok(e?
                    .subvolume()
                    .ok_or("unreachable")?
                    .info
                    .name
                    .as_bytes()
                    .to_vec())
            })
            .collect::<Result<_, Failed>>()?;
        ensure!(names.len() == total, "{mode:?}: {} names", names.len());
        for name in odd {
            ensure!(
                names.iter().any(|n| n == name),
                "{mode:?}: {name:?} missing"
            );
        }
    }
    let path = m.to_str().ok_or("path")?;
    for mode in ["privileged", "unprivileged"] {
        let text = ok(
            &run("subvolume", &["list", path, "--json", "--mode", mode])?,
            "list --json",
        )?;
        let rows = json_lines(&text)?;
        ensure!(
            rows.len() == total,
            "{mode}: {} JSON lines:\n{text}",
            rows.len()
        );
        for name in odd {
            let exact = rows.iter().any(|r| match std::str::from_utf8(name) {
                Ok(utf8) => r["path"] == utf8 && r.get("path_bytes").is_none(),
                Err(_) => {
                    r["path_bytes"] == serde_json::json!(name)
                        && r["info"]["name_bytes"] == serde_json::json!(name)
                        && r["path"] == "caf\\xe9"
                }
            });
            ensure!(exact, "{mode}: no exact row for {name:?}:\n{text}");
        }
        let text = ok(&run("subvolume", &["list", path, "--mode", mode])?, "list")?;
        ensure!(
            text.lines().count() == total + 1,
            "{mode}: text list has {} lines (header + {total}):\n{text}",
            text.lines().count(),
        );
        for shown in ["caf\\xe9", "two\\x0alines", "back\\\\xe9slash"] {
            ensure!(
                text.lines().any(|l| l.ends_with(&format!(" {shown}"))),
                "{mode}: text list lacks {shown:?}:\n{text}",
            );
        }
    }
    let latin1 = m.join(OsStr::from_bytes(odd[0]));
    let show = |json: bool| -> Result<Output, Failed> {
        let mut cmd = std::process::Command::new(example("subvolume")?);
        cmd.arg("show").arg(&latin1);
        if json {
            cmd.arg("--json");
        }
        Ok(cmd.output()?)
    };
    let shown: serde_json::Value = serde_json::from_str(&ok(&show(true)?, "show --json")?)?;
    ensure!(
        shown["name_bytes"] == serde_json::json!(odd[0])
            && shown["path_bytes"] == serde_json::json!(odd[0])
            && shown["name"] == "caf\\xe9",
        "show --json: {shown}",
    );
    let text = ok(&show(false)?, "show")?;
    ensure!(
        text.lines().next() == Some("caf\\xe9") && text.contains("Name:\t\t\tcaf\\xe9"),
        "show:\n{text}",
    );
    Ok(())
}
