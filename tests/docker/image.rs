//! Images without a registry: a root filesystem of busybox-static in a tempdir, `docker import`,
//! then `docker build --network none` of a few layers.
//!
//! Docker's btrfs driver finds a layer's changes by comparing size and whole-second mtime, so a
//! file rewritten with the same size within one second can be missing from a layer: every
//! file here has its own size.

use crate::daemon::Dockerd;
use crate::data::write_file;
use crate::http::{free_port, wait_for_page};
use std::time::Duration;
use testkit::ensure;
use testkit::harness::Failed;

/// Debian's busybox-static: one static binary, so the root filesystem needs nothing else.
const BUSYBOX: &str = "/bin/busybox";
/// The applets the tests' containers use.
const APPLETS: &[&str] = &[
    "sh",
    "httpd",
    "dd",
    "sync",
    "cat",
    "ls",
    "wc",
    "mkdir",
    "echo",
    "true",
    "sha256sum",
    "rm",
];

/// The imported busybox image.
pub const BASE: &str = "btrfs-lvm-base:1";
/// The app image built on it (four more layers).
pub const APP: &str = "btrfs-lvm-app:1";

/// The page the app image serves.
pub const PAGE: &str = "served by busybox httpd from a btrfs snapshot\n";

/// A file copied into an image: its path in the image, size and SHA-256 (hex).
#[derive(Debug, Clone)]
pub struct ImageFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Imports a root filesystem holding only busybox (and links to its applets) as `tag`.
pub fn import_busybox(d: &Dockerd, tag: &str) -> Result<(), Failed> {
    let root = d.work_dir().join("rootfs");
    std::fs::create_dir_all(root.join("bin"))?;
    std::fs::copy(BUSYBOX, root.join("bin/busybox"))
        .map_err(|e| format!("copy {BUSYBOX} (install busybox-static): {e}"))?;
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))?;
    }
    for dir in ["tmp", "etc", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(dir))?;
    }
    let tarball = d.work_dir().join("rootfs.tar");
    let out = std::process::Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .output()?;
    ensure!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.ok(&["import", tarball.to_str().ok_or("path")?, tag])?;
    Ok(())
}

/// Builds `tag` from `dockerfile` in a fresh context holding `files` (name, size) of seeded
/// random bytes, with no network; the files with their SHA-256.
pub fn build(
    d: &Dockerd,
    tag: &str,
    dockerfile: &str,
    files: &[(&str, u64)],
) -> Result<Vec<ImageFile>, Failed> {
    let context = d
        .work_dir()
        .join(format!("context-{}", tag.replace(':', "-")));
    std::fs::create_dir_all(&context)?;
    std::fs::write(context.join("Dockerfile"), dockerfile)?;
    let mut out = Vec::new();
    for (i, (name, size)) in files.iter().enumerate() {
        let sum = write_file(&context.join(name), *size, 1000 + i as u64)?;
        out.push(ImageFile {
            path: format!("/data/{name}"),
            size: *size,
            sha256: hex(&sum),
        });
    }
    let context = context.to_str().ok_or("path")?;
    d.ok(&[
        "build",
        "--network",
        "none",
        "--force-rm",
        "-t",
        tag,
        context,
    ])?;
    Ok(out)
}

/// The app image: busybox, three files of different sizes in three COPY layers and the page
/// written by a RUN step: the import's layer plus four.
pub fn build_app(d: &Dockerd, base: &str, tag: &str) -> Result<Vec<ImageFile>, Failed> {
    let dockerfile = format!(
        "FROM {base}\n\
         COPY small /data/small\n\
         COPY medium /data/medium\n\
         RUN [\"/bin/sh\", \"-c\", \"mkdir -p /www && echo '{}' > /www/index.html\"]\n\
         COPY large /data/large\n",
        PAGE.trim_end()
    );
    build(
        d,
        tag,
        &dockerfile,
        &[("small", 10_000), ("medium", 300_001), ("large", 1_200_003)],
    )
}

/// Checks inside a container of `image` that every file has its size and SHA-256.
pub fn check_files(d: &Dockerd, image: &str, files: &[ImageFile]) -> Result<(), Failed> {
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let script = format!("sha256sum {0}; wc -c {0}", paths.join(" "));
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "sh",
        "-c",
        &script,
    ])?;
    for f in files {
        ensure!(
            out.lines()
                .any(|l| l.split_whitespace().eq([f.sha256.as_str(), &f.path])),
            "{}: SHA-256 differs in the image:\n{out}",
            f.path,
        );
        ensure!(
            out.lines().any(|l| {
                l.split_whitespace()
                    .eq([f.size.to_string().as_str(), &f.path])
            }),
            "{}: size differs in the image:\n{out}",
            f.path,
        );
    }
    Ok(())
}

/// The number of layers of `image`.
pub fn layer_count(d: &Dockerd, image: &str) -> Result<usize, Failed> {
    Ok(
        d.ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", image])?
            .parse()?,
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs container `name` of `image` (the app image) serving [`PAGE`] with busybox httpd on a
/// free port of 127.0.0.1 (host network; `--init`, since httpd as PID 1 ignores SIGTERM) and
/// waits until the page is served; the port.
pub fn serve(d: &Dockerd, name: &str, image: &str) -> Result<u16, Failed> {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    d.ok(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "--init",
        image,
        "httpd",
        "-f",
        "-p",
        &listen,
        "-h",
        "/www",
    ])?;
    let body = wait_for_page(port, "/", Duration::from_secs(30))?;
    ensure!(body == PAGE, "page: {body:?}");
    Ok(port)
}
