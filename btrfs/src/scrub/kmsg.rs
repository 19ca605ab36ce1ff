//! Watching the kernel log (`/dev/kmsg`) during a scrub for the addresses of the errors it
//! finds: the scrub ioctl only returns counts.
//!
//! The kernel logs, per bad sector, `scrub: fixed up error at logical L on dev D physical P`
//! or `scrub: unable to fixup (regular) error at logical L on dev D physical P` (`on mirror M`
//! when it cannot map the device; before 6.x without the `scrub: ` prefix). Up to at least
//! Linux 6.18, `L` and `P` are the start of the 64 KiB stripe holding the sector, not the
//! sector itself, so the damage module checks the whole stripe.
//!
//! What this needs and what it can miss: reading `/dev/kmsg` needs CAP_SYSLOG (root) unless
//! `kernel.dmesg_restrict=0`; the kernel rate-limits these messages (10 per 5 s per message,
//! then "callbacks suppressed"), and the ring buffer can overwrite records before they are
//! read (the read then fails with EPIPE). Both are detected and reported as an incomplete
//! damage report; only kernel records (facility 0) are trusted.

use crate::info::DeviceInfo;
use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// One error the scrub logged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ErrorRecord {
    /// Whether the kernel repaired it.
    pub corrected: bool,
    /// The logical address it names (the stripe start, see the module docs).
    pub logical: u64,
    /// The device path, when the kernel could map it.
    pub device: Option<PathBuf>,
    /// The physical offset on that device.
    pub physical: Option<u64>,
}

/// Decodes one scrub error message (the text after the `;` of a kmsg record).
pub(crate) fn parse_message(msg: &str) -> Option<ErrorRecord> {
    let corrected = if msg.contains("fixed up error at logical ") {
        true
    } else if msg.contains("unable to fixup (regular) error at logical ") {
        false
    } else {
        return None;
    };
    let after = |key: &str| msg.split_once(key).map(|(_, rest)| rest);
    let number = |s: &str| -> Option<u64> {
        s.split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|d| d.parse().ok())
    };
    let logical = number(after("error at logical ")?)?;
    let (device, physical) = match after(" on dev ") {
        Some(rest) => {
            let (dev, phys) = rest.rsplit_once(" physical ")?;
            (Some(PathBuf::from(dev.trim())), number(phys))
        }
        None => (None, None),
    };
    Some(ErrorRecord {
        corrected,
        logical,
        device,
        physical,
    })
}

/// Splits a kmsg record `prio,seq,usec,flags;message` into (priority, sequence, message).
fn split_record(record: &str) -> Option<(u32, u64, &str)> {
    let (head, msg) = record.split_once(';')?;
    let mut fields = head.split(',');
    let prio = fields.next()?.parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    Some((prio, seq, msg.lines().next().unwrap_or("")))
}

/// A reader of the kernel log from the moment it was opened, keeping the scrub error records
/// about one filesystem.
pub(crate) struct KernelLog {
    file: Option<File>,
    /// `(device NAME` tags of the filesystem's devices, as btrfs prefixes its messages.
    tags: Vec<String>,
    last_seq: Option<u64>,
    /// Why the log could not be read, if it could not.
    pub unreadable: Option<String>,
    /// Whether records were lost (overwritten before read).
    pub lost: bool,
    /// The scrub error records seen, in log order.
    pub records: Vec<ErrorRecord>,
}

impl KernelLog {
    /// Opens `/dev/kmsg` positioned at its end. Never fails: when the log cannot be read the
    /// reason is kept and reported with the damage.
    pub(crate) fn open(devices: &[DeviceInfo]) -> KernelLog {
        let tags = devices
            .iter()
            .filter_map(|d| {
                let real = d.path.canonicalize().unwrap_or_else(|_| d.path.clone());
                Some(format!("(device {}", real.file_name()?.to_string_lossy()))
            })
            .collect();
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open("/dev/kmsg")
            .and_then(|mut f| f.seek(SeekFrom::End(0)).map(|_| f));
        let (file, unreadable) = match opened {
            Ok(f) => (Some(f), None),
            Err(e) => (
                None,
                Some(format!(
                    "cannot read the kernel log /dev/kmsg ({e}); it needs root (CAP_SYSLOG)"
                )),
            ),
        };
        KernelLog {
            file,
            tags,
            last_seq: None,
            unreadable,
            lost: false,
            records: Vec::new(),
        }
    }

    fn ours(&self, msg: &str) -> bool {
        msg.contains("BTRFS")
            && self
                .tags
                .iter()
                .any(|t| msg.contains(&format!("{t})")) || msg.contains(&format!("{t} ")))
    }

    /// Reads every record logged since the last call.
    pub(crate) fn drain(&mut self) {
        let Some(mut file) = self.file.take() else {
            return;
        };
        // One record per read; the kernel caps records at 8 KiB with the header.
        let mut buf = vec![0u8; 16 << 10];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let Some((prio, seq, msg)) = split_record(&text) else {
                        continue;
                    };
                    if self.last_seq.is_some_and(|last| seq != last + 1) {
                        self.lost = true;
                    }
                    self.last_seq = Some(seq);
                    // Facility 0 is the kernel; anything else was written by user space.
                    if prio >> 3 != 0 || !self.ours(msg) {
                        continue;
                    }
                    if let Some(record) = parse_message(msg) {
                        self.records.push(record);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::PIPE.raw_os_error()) => {
                    self.lost = true;
                }
                Err(e) => {
                    self.unreadable = Some(format!("reading /dev/kmsg failed: {e}"));
                    return;
                }
            }
        }
        self.file = Some(file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernels_wordings() {
        let m = "BTRFS error (device loop2): scrub: unable to fixup (regular) error at logical 13631488 on dev /dev/loop2 physical 13631488";
        assert_eq!(
            parse_message(m),
            Some(ErrorRecord {
                corrected: false,
                logical: 13631488,
                device: Some("/dev/loop2".into()),
                physical: Some(13631488),
            })
        );
        let m = "BTRFS error (device loop2 state E): scrub: fixed up error at logical 137822208 on dev /dev/loop3 physical 116850688";
        let r = parse_message(m).unwrap();
        assert!(r.corrected);
        assert_eq!((r.logical, r.physical), (137822208, Some(116850688)));
        let m =
            "BTRFS error (device sdb): unable to fixup (regular) error at logical 4096 on mirror 2";
        let r = parse_message(m).unwrap();
        assert_eq!((r.logical, r.device, r.physical), (4096, None, None));
        assert_eq!(
            parse_message("BTRFS info (device loop2): scrub: started on devid 1"),
            None
        );
    }

    #[test]
    fn splits_records_and_matches_devices() {
        let (prio, seq, msg) =
            split_record("3,1234,5678,-;BTRFS error (device loop7): x\n SUBSYSTEM=block\n")
                .unwrap();
        assert_eq!((prio, seq, msg), (3, 1234, "BTRFS error (device loop7): x"));
        let log = KernelLog {
            file: None,
            tags: vec!["(device loop7".into()],
            last_seq: None,
            unreadable: None,
            lost: false,
            records: Vec::new(),
        };
        assert!(log.ours("BTRFS error (device loop7): x"));
        assert!(log.ours("BTRFS error (device loop7 state E): x"));
        assert!(!log.ours("BTRFS error (device loop71): x"));
    }
}
