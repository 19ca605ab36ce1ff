//! What callers ask for: the sizes of new and resized LVs, and the devices LVM may see.

use crate::error::{Error, Result};
use crate::size::{parse_signed, Bytes, Sign, SizeParseError};
use std::path::PathBuf;

/// How big a new LV should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LvSize {
    /// At least this many bytes (lvm2 rounds up to whole extents).
    Bytes(Bytes),
    /// Exactly this many extents.
    Extents(u64),
    /// This percentage (1..=100) of the VG's free space.
    PercentFree(u8),
}

/// A request to create a linear LV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LvCreate {
    /// The size.
    pub size: LvSize,
    /// Activate it after creation. `false` writes metadata only (`-an -Zn`), which works without
    /// device-mapper.
    pub activate: bool,
    /// Zero the first 4 KiB when active (`-Z y`). Ignored when not activating.
    pub zero: bool,
}

impl LvCreate {
    /// An active, zeroed LV of at least `size` bytes.
    pub fn size(size: Bytes) -> Self {
        LvCreate {
            size: LvSize::Bytes(size),
            activate: true,
            zero: true,
        }
    }

    /// An active, zeroed LV of `count` extents.
    pub fn extents(count: u64) -> Self {
        LvCreate {
            size: LvSize::Extents(count),
            ..LvCreate::size(Bytes(0))
        }
    }

    /// An active, zeroed LV using `percent` of the VG's free space.
    pub fn percent_free(percent: u8) -> Self {
        LvCreate {
            size: LvSize::PercentFree(percent),
            ..LvCreate::size(Bytes(0))
        }
    }

    /// Writes metadata only: no activation, no zeroing (works without device-mapper).
    pub fn inactive(mut self) -> Self {
        self.activate = false;
        self.zero = false;
        self
    }
}

/// A request to create a thin pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinPoolCreate {
    /// The pool's data size.
    pub size: Bytes,
}

/// The target of a resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewSize {
    /// Exactly this size (rounded up to whole extents).
    To(Bytes),
    /// The current size plus this much.
    Add(Bytes),
    /// The current size minus this much (only for [`LvmBackend::lv_resize`](crate::LvmBackend::lv_resize)).
    Subtract(Bytes),
}

impl std::str::FromStr for NewSize {
    type Err = SizeParseError;

    /// `10g` → `To`, `+1g` → `Add`, `-1g` → `Subtract`, in lvm2's units (see
    /// [`Bytes::parse_lvm2`]: no unit means MiB). A zero size or change is refused, as lvm2
    /// refuses `-L 0` and `-L +0`.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let (sign, size) = parse_signed(s)?;
        if size.get() == 0 {
            return Err(SizeParseError {
                input: s.to_owned(),
                reason: "a size or size change may not be zero".into(),
            });
        }
        Ok(match sign {
            Sign::Absolute => NewSize::To(size),
            Sign::Plus => NewSize::Add(size),
            Sign::Minus => NewSize::Subtract(size),
        })
    }
}

/// Whether a resize may only grow (`lvextend`) or also shrink (`lvresize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResizeMode {
    /// Grow only: [`crate::LvmBackend::lv_extend`], `lvextend`.
    Extend,
    /// Grow or shrink: [`crate::LvmBackend::lv_resize`], `lvresize`.
    Resize,
}

impl ResizeMode {
    /// The lvm2 command that does it.
    pub(crate) fn command(self) -> &'static str {
        match self {
            ResizeMode::Extend => "lvextend",
            ResizeMode::Resize => "lvresize",
        }
    }
}

/// The set of block devices LVM may look at. Everything else is invisible to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confinement {
    devices: Vec<PathBuf>,
}

impl Confinement {
    /// Confines LVM to these devices.
    pub fn new<I, P>(devices: I) -> Result<Self>
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        let devices: Vec<PathBuf> = devices.into_iter().map(Into::into).collect();
        for d in &devices {
            let text = d.to_str().unwrap_or("");
            if !d.is_absolute() || text.is_empty() || text.contains([',', '"', '|', '\n']) {
                return Err(Error::InvalidRequest {
                    operation: "confine LVM to devices".into(),
                    reason: format!(
                        "device {d:?} must be an absolute UTF-8 path without ',', '\"', '|' or newlines"
                    ),
                });
            }
        }
        Ok(Confinement { devices })
    }

    /// The devices.
    pub fn devices(&self) -> &[PathBuf] {
        &self.devices
    }

    /// An lvm.conf `devices { global_filter = [...] }` accepting only these devices: what an
    /// lvmdbusd started for these devices needs in its `LVM_SYSTEM_DIR/lvm.conf`.
    pub fn global_filter(&self) -> String {
        filter_list(&self.devices)
    }
}

/// An lvm.conf filter list accepting exactly `devices` and rejecting everything else:
/// `[ "a|^/dev/loop3$|", "r|.*|" ]`.
pub(crate) fn filter_list(devices: &[PathBuf]) -> String {
    let rules: Vec<String> = devices
        .iter()
        .map(|d| format!("\"a|^{}$|\"", regex_escape(&d.to_string_lossy())))
        .chain(["\"r|.*|\"".to_owned()])
        .collect();
    format!("[ {} ]", rules.join(", "))
}

/// Escapes regex metacharacters for an lvm2 filter.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// lvm2 counts an LV's extents in 32 bits (`MAX_EXTENT_COUNT`); `lvresize` refuses a new count
/// at or above it when growing by a relative size, and silently truncates an absolute one (so
/// `lvextend -L` to 1 EiB in a VG of 4 MiB extents "matches existing size"). Refused here first.
const MAX_EXTENTS: u64 = u32::MAX as u64;

/// Computes a resize target in bytes, rounded up to whole extents as lvm2 does.
///
/// Returns `Ok(None)` when the rounded target equals the current size: resizing to the current
/// size is a no-op success. [`ResizeMode::Extend`] refuses shrinking. A target lvm2 cannot
/// count in extents is refused.
pub(crate) fn resize_target(
    operation: &str,
    current: Bytes,
    extent_size: Bytes,
    request: NewSize,
    mode: ResizeMode,
) -> Result<Option<Bytes>> {
    let refuse = |reason: String| Error::InvalidRequest {
        operation: operation.to_owned(),
        reason,
    };
    let target = match request {
        NewSize::To(b) => b,
        NewSize::Add(b) => current
            .checked_add(b)
            .ok_or_else(|| refuse("the new size overflows".into()))?,
        NewSize::Subtract(b) => Bytes(
            current
                .get()
                .checked_sub(b.get())
                .ok_or_else(|| refuse(format!("cannot shrink {current} by {b}")))?,
        ),
    };
    let extents = target.get().div_ceil(extent_size.get().max(1));
    if extent_size.get() > 0 && extents >= MAX_EXTENTS {
        let largest = Bytes((MAX_EXTENTS - 1) * extent_size.get());
        return Err(refuse(format!(
            "the new size {target} would be {extents} extents of {extent_size}, but lvm2 counts \
             extents in 32 bits: an LV in this VG can be at most {largest} ({} bytes)",
            largest.get()
        )));
    }
    let target = target.round_up_to(extent_size);
    if target == current {
        return Ok(None);
    }
    if target.get() == 0 {
        return Err(refuse(
            "the new size would be zero; remove the LV instead".into(),
        ));
    }
    if mode == ResizeMode::Extend && target < current {
        return Err(refuse(format!(
            "extend can only grow: the LV is {current} and the target is {target}; use resize to shrink"
        )));
    }
    Ok(Some(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_targets_round_and_detect_no_ops() {
        let ext = Bytes::mib(4);
        let cur = Bytes::mib(12);
        assert_eq!(
            resize_target(
                "t",
                cur,
                ext,
                NewSize::To(Bytes::mib(12)),
                ResizeMode::Extend
            )
            .unwrap(),
            None
        );
        assert_eq!(
            resize_target(
                "t",
                cur,
                ext,
                NewSize::To(Bytes::mib(9)),
                ResizeMode::Extend
            )
            .unwrap(),
            None
        );
        assert_eq!(
            resize_target("t", cur, ext, NewSize::Add(Bytes(1)), ResizeMode::Extend).unwrap(),
            Some(Bytes::mib(16))
        );
        assert_eq!(
            resize_target("t", cur, ext, NewSize::Add(Bytes(0)), ResizeMode::Extend).unwrap(),
            None
        );
        assert!(resize_target(
            "t",
            cur,
            ext,
            NewSize::To(Bytes::mib(4)),
            ResizeMode::Extend
        )
        .is_err());
        assert_eq!(
            resize_target(
                "t",
                cur,
                ext,
                NewSize::Subtract(Bytes::mib(4)),
                ResizeMode::Resize
            )
            .unwrap(),
            Some(Bytes::mib(8))
        );
        assert!(resize_target(
            "t",
            cur,
            ext,
            NewSize::Subtract(Bytes::mib(12)),
            ResizeMode::Resize
        )
        .is_err());
        // 1 EiB and 16 PiB in 4 MiB extents: 2^38 and 2^32 extents, beyond lvm2's u32 count.
        for huge in [Bytes(1 << 60), Bytes(1 << 54)] {
            let r = resize_target("t", cur, ext, NewSize::Add(huge), ResizeMode::Extend);
            assert!(
                matches!(r, Err(Error::InvalidRequest { ref reason, .. }) if reason.contains("32 bits")),
                "{r:?}"
            );
        }
        let largest = Bytes((MAX_EXTENTS - 1) * ext.get());
        assert_eq!(
            resize_target("t", cur, ext, NewSize::To(largest), ResizeMode::Extend).unwrap(),
            Some(largest)
        );
        assert!(resize_target(
            "t",
            cur,
            ext,
            NewSize::To(Bytes(largest.get() + 1)),
            ResizeMode::Extend
        )
        .is_err());
    }

    #[test]
    fn parses_new_sizes_and_confinement() {
        assert_eq!(
            "+1g".parse::<NewSize>().unwrap(),
            NewSize::Add(Bytes::gib(1))
        );
        assert_eq!("2g".parse::<NewSize>().unwrap(), NewSize::To(Bytes::gib(2)));
        assert_eq!(
            "-1m".parse::<NewSize>().unwrap(),
            NewSize::Subtract(Bytes::mib(1))
        );
        assert_eq!(
            "+4".parse::<NewSize>().unwrap(),
            NewSize::Add(Bytes::mib(4))
        );
        assert_eq!(
            "+1e".parse::<NewSize>().unwrap(),
            NewSize::Add(Bytes(1 << 60))
        );
        for bad in ["+0", "0", "-0", "+1b", "++1m", "+", "1x"] {
            assert!(bad.parse::<NewSize>().is_err(), "{bad}");
        }
        let c = Confinement::new(["/dev/loop3", "/dev/loop10"]).unwrap();
        assert_eq!(
            c.global_filter(),
            r#"[ "a|^/dev/loop3$|", "a|^/dev/loop10$|", "r|.*|" ]"#
        );
        assert!(Confinement::new(["/dev/a,b"]).is_err());
        assert!(Confinement::new(["loop0"]).is_err());
    }
}
