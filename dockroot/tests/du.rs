//! `dockroot du` on a real btrfs: a graph-driver data root built by hand from the files moby
//! writes (image configs, repositories.json, layerdb cache-ids with real chain ids, a
//! container's mount record), its layers real subvolumes and snapshots holding files of known
//! sizes, so every figure follows from the construction: what each image, the container and
//! the orphans would free, and what they reference.

mod support;

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use support::layout::{id, put, subvolumes};
use support::Env;
use testkit::ensure;
use testkit::fixture::{FsKind, Scratch};
use testkit::harness::Failed;

const KIB: u64 = 1024;

fn main() {
    testkit::harness::run(testkit::harness::registered())
}

/// `size` bytes of seeded pseudo-random (incompressible) data, fsynced.
fn write_random(path: &Path, size: u64, seed: u64) -> Result<(), Failed> {
    let mut f = std::fs::File::create(path)?;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; size as usize];
    for w in buf.chunks_exact_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        w.copy_from_slice(&state.to_le_bytes());
    }
    f.write_all(&buf)?;
    f.sync_all()?;
    Ok(())
}

fn digest(n: u32) -> String {
    format!("sha256:{}", id(n))
}

/// moby's `CreateChainID`, written here from its definition.
fn chain(diffs: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in diffs {
        let next = match out.last() {
            None => d.clone(),
            Some(p) => {
                let h = Sha256::digest(format!("{p} {d}"));
                format!(
                    "sha256:{}",
                    h.iter().map(|b| format!("{b:02x}")).collect::<String>()
                )
            }
        };
        out.push(next);
    }
    out
}

/// An image config and its layers' cache ids (`layers[i]` for diff id `i`).
fn image(root: &Path, image: u32, diffs: &[u32], layers: &[u32], tag: &str) -> Result<(), Failed> {
    let diffs: Vec<String> = diffs.iter().map(|&d| digest(d)).collect();
    let config = serde_json::json!({"rootfs": {"type": "layers", "diff_ids": diffs}});
    put(
        root,
        &format!("image/btrfs/imagedb/content/sha256/{}", id(image)),
        &config.to_string(),
    )?;
    for (c, &layer) in chain(&diffs).iter().zip(layers) {
        let hex = c.strip_prefix("sha256:").ok_or("chain id")?;
        put(
            root,
            &format!("image/btrfs/layerdb/sha256/{hex}/cache-id"),
            &id(layer),
        )?;
    }
    let repos_path = root.join("image/btrfs/repositories.json");
    let mut repos: serde_json::Value = match std::fs::read(&repos_path) {
        Ok(b) => serde_json::from_slice(&b)?,
        Err(_) => serde_json::json!({"Repositories": {}}),
    };
    let repo = tag.split(':').next().ok_or("tag")?;
    repos["Repositories"][repo][tag] = serde_json::Value::String(digest(image));
    std::fs::write(repos_path, repos.to_string())?;
    Ok(())
}

fn snapshot(from: &Path, to: &Path) -> Result<(), Failed> {
    btrfs_kit::subvolume::snapshot(from, to, &btrfs_kit::subvolume::SnapshotOptions::writable())?;
    Ok(())
}

testkit::register!(prefix "du"; root: images_containers_and_orphans_free_what_their_construction_says);
fn images_containers_and_orphans_free_what_their_construction_says() -> Result<(), Failed> {
    let scratch = Scratch::btrfs(1024 << 20)?;
    let root = scratch.path();
    let dir = subvolumes(root);
    std::fs::create_dir_all(&dir)?;
    let sub = |n: u32| dir.join(id(n));
    // Layer 1 (both images): 1 MiB. Layer 2 (image A) adds 256 KiB, layer 3 (image B) 512 KiB
    // and deletes nothing; a container of A writes 128 KiB; an orphan holds 64 KiB.
    btrfs_kit::subvolume::create(sub(1))?;
    write_random(&sub(1).join("base"), 1024 * KIB, 1)?;
    snapshot(&sub(1), &sub(2))?;
    write_random(&sub(2).join("a"), 256 * KIB, 2)?;
    snapshot(&sub(1), &sub(3))?;
    write_random(&sub(3).join("b"), 512 * KIB, 3)?;
    image(root, 100, &[11, 12], &[1, 2], "app-a:latest")?;
    image(root, 101, &[11, 13], &[1, 3], "app-b:1")?;
    let init = dir.join(format!("{}-init", id(20)));
    snapshot(&sub(2), &init)?;
    snapshot(&init, &sub(20))?;
    write_random(&sub(20).join("log"), 128 * KIB, 4)?;
    put(
        root,
        &format!("containers/{}/config.v2.json", id(200)),
        &serde_json::json!({"Name": "/web", "Image": digest(100)}).to_string(),
    )?;
    let mounts = format!("image/btrfs/layerdb/mounts/{}", id(200));
    put(root, &format!("{mounts}/mount-id"), &id(20))?;
    put(
        root,
        &format!("{mounts}/init-id"),
        &format!("{}-init", id(20)),
    )?;
    btrfs_kit::subvolume::create(sub(50))?;
    write_random(&sub(50).join("junk"), 64 * KIB, 5)?;
    btrfs_kit::Filesystem::open(root)?.sync()?;

    let env = Env::new()?;
    let path = root.to_str().ok_or("path")?;
    let out = env.run(&["du", path, "--json"])?;
    ensure!(
        out.status.code() == Some(0),
        "du --json: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().ok_or(format!("{k} in {v}"));
    let image_row = |tag: &str| -> Result<&serde_json::Value, Failed> {
        r["images"]
            .as_array()
            .ok_or("images")?
            .iter()
            .find(|i| {
                i["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|x| x == tag))
            })
            .ok_or_else(|| format!("no image {tag}").into())
    };
    let a = image_row("app-a:latest")?;
    let b = image_row("app-b:1")?;
    // A references base and a; its own layer 2 is what the container snapshots, so nothing
    // of it is A's alone while the container exists.
    ensure!(
        (n(a, "referenced")?, n(a, "frees")?, n(a, "own_layers")?) == (1280 * KIB, 0, 1),
        "image A: {a}"
    );
    // B's own layer 3 holds b alone; base is shared with A.
    ensure!(
        (n(b, "referenced")?, n(b, "frees")?, n(b, "own_layers")?) == (1536 * KIB, 512 * KIB, 1),
        "image B: {b}"
    );
    let c = &r["containers"][0];
    ensure!(
        c["name"] == "web" && c["layers"].as_array().map(Vec::len) == Some(2),
        "container: {c}"
    );
    ensure!(
        (n(c, "referenced")?, n(c, "frees")?) == (1408 * KIB, 128 * KIB),
        "container: {c}"
    );
    ensure!(
        n(&r["orphans"], "frees")? == 64 * KIB,
        "orphans: {}",
        r["orphans"]
    );
    ensure!(
        n(&r["total"], "referenced")? == (1024 + 256 + 512 + 128 + 64) * KIB
            && n(&r["total"], "frees")? == n(&r["total"], "referenced")?,
        "total: {}",
        r["total"]
    );
    let rows = r["subvolumes"].as_array().ok_or("subvolumes")?;
    ensure!(rows.len() == 6, "{} subvolume rows", rows.len());
    let orphan = rows
        .iter()
        .find(|s| s["name"] == id(50))
        .ok_or("orphan row")?;
    ensure!(
        orphan["roles"][0]["kind"] == "orphan" && n(orphan, "frees")? == 64 * KIB,
        "orphan row: {orphan}"
    );

    let out = env.run(&["du", path])?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.code() == Some(0) && text.contains("app-b:1") && text.contains("web"),
        "du table: {text}"
    );
    Ok(())
}

testkit::register!(prefix "du"; root: a_data_root_that_is_not_btrfs_fails);
fn a_data_root_that_is_not_btrfs_fails() -> Result<(), Failed> {
    let scratch = Scratch::new(64 << 20, FsKind::Ext4)?;
    let env = Env::new()?;
    let out = env.run(&["du", scratch.path().to_str().ok_or("path")?])?;
    ensure!(
        out.status.code() == Some(1)
            && String::from_utf8_lossy(&out.stderr).contains("not a btrfs filesystem"),
        "du on ext4: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
