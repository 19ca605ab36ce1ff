//! Watching `/dev/kmsg` for btrfs warnings and errors about one device during a test.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A reader positioned at the end of the kernel log when the test began.
pub struct KmsgWatch {
    file: File,
}

impl KmsgWatch {
    /// Starts watching: later records only.
    pub fn start() -> std::io::Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open("/dev/kmsg")?;
        file.seek(SeekFrom::End(0))?;
        Ok(KmsgWatch { file })
    }

    /// Records logged since `start` at warning level or worse that concern btrfs on `device`
    /// (e.g. `loop7`) or come from btrfs code (`fs/btrfs/` in a WARNING).
    pub fn problems(&mut self, device: &str) -> std::io::Result<Vec<String>> {
        let tag = format!("(device {device}");
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend(problem_in(&String::from_utf8_lossy(&buf[..n]), &tag)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // EPIPE: records were overwritten before we read them; keep reading.
                Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// The message of one `/dev/kmsg` record (`prio,seq,usec,flags;message`) if it is a warning or
/// worse (level ≤ 4) about btrfs on the device tagged `(device NAME`, or from btrfs code.
pub fn problem_in(record: &str, tag: &str) -> Option<String> {
    let (head, msg) = record.split_once(';')?;
    let prio: u32 = head.split(',').next()?.parse().ok()?;
    let msg = msg.lines().next().unwrap_or("");
    // "(device loop7)" or "(device loop7 state EA)", never "(device loop71)".
    let ours = msg.contains("BTRFS")
        && (msg.contains(&format!("{tag})")) || msg.contains(&format!("{tag} ")));
    (prio & 7 <= 4 && (ours || msg.contains("fs/btrfs/"))).then(|| msg.to_string())
}

/// The kernel's name of a block device, as the log tags it (`/dev/loop7` → `loop7`).
pub fn device_name(dev: &Path) -> String {
    dev.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
