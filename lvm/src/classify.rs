//! Turning a failed lvm2 command's messages into a typed [`Error`].

use crate::error::{CommandFailure, DeniedBy, Error, ObjectKind};

/// What the failed command was acting on, for errors whose message names nothing.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The object kind.
    pub object: ObjectKind,
    /// Its name (`VG`, `VG/LV` or a device path).
    pub name: String,
    /// The VG involved, if any.
    pub vg: Option<String>,
}

impl Target {
    /// A volume group.
    pub(crate) fn vg(vg: &str) -> Self {
        Target {
            object: ObjectKind::VolumeGroup,
            name: vg.to_owned(),
            vg: Some(vg.to_owned()),
        }
    }

    /// The logical volume `vg/lv`.
    pub(crate) fn lv(vg: &str, lv: &str) -> Self {
        Target {
            object: ObjectKind::LogicalVolume,
            name: format!("{vg}/{lv}"),
            vg: Some(vg.to_owned()),
        }
    }

    /// A physical volume (device path).
    pub(crate) fn pv(device: &str) -> Self {
        Target {
            object: ObjectKind::PhysicalVolume,
            name: device.to_owned(),
            vg: None,
        }
    }

    /// Everything (reports).
    pub(crate) fn all() -> Self {
        Target {
            object: ObjectKind::VolumeGroup,
            name: String::new(),
            vg: None,
        }
    }
}

/// The first `"quoted"` word of a message.
fn quoted(message: &str) -> Option<&str> {
    let start = message.find('"')? + 1;
    let len = message[start..].find('"')?;
    Some(&message[start..start + len])
}

/// Whether lvm2 refused because the new size equals the old one.
pub(crate) fn is_same_size(messages: &[String]) -> bool {
    messages.iter().any(|m| m.contains("matches existing size"))
}

/// Classifies a failure from lvm2's error messages (command log errors and stderr lines).
pub(crate) fn classify(
    operation: &str,
    target: &Target,
    messages: &[String],
    failure: CommandFailure,
) -> Error {
    let operation = operation.to_owned();
    let vg = || target.vg.clone().unwrap_or_else(|| target.name.clone());
    // A non-root caller: lvm2 cannot open its lock files (or the devices) and then also says
    // "Can't get lock", which must not read as a busy VG.
    if let Some(m) = messages
        .iter()
        .find(|m| m.to_ascii_lowercase().contains("permission denied"))
    {
        return Error::PermissionDenied {
            operation,
            by: DeniedBy::Lvm2,
            detail: m.clone(),
        };
    }
    for m in messages {
        let lower = m.to_ascii_lowercase();
        let name = || quoted(m).unwrap_or(&target.name).to_owned();
        if lower.contains("volume group") && lower.contains("not found") {
            return Error::NotFound {
                operation,
                object: ObjectKind::VolumeGroup,
                name: name(),
            };
        }
        if lower.contains("failed to find logical volume")
            || (lower.contains("logical volume") && lower.contains("not found"))
        {
            return Error::NotFound {
                operation,
                object: ObjectKind::LogicalVolume,
                name: name(),
            };
        }
        if lower.contains("device not found")
            || lower.contains("no device found")
            || lower.contains("no pv found")
            || lower.contains("failed to find device")
            || lower.contains("failed to find physical volume")
        {
            return Error::NotFound {
                operation,
                object: ObjectKind::PhysicalVolume,
                name: target.name.clone(),
            };
        }
        if lower.contains("already exists") {
            let object = if lower.contains("logical volume") {
                ObjectKind::LogicalVolume
            } else if lower.contains("volume group") {
                ObjectKind::VolumeGroup
            } else {
                target.object
            };
            return Error::AlreadyExists {
                operation,
                object,
                name: target.name.clone(),
            };
        }
        if lower.contains("insufficient free space")
            || lower.contains("insufficient suitable")
            || lower.contains("insufficient free extents")
        {
            return Error::InsufficientSpace {
                operation,
                vg: vg(),
                detail: m.clone(),
            };
        }
        if lower.contains("couldn't find device with uuid")
            || lower.contains("pvs are missing")
            || lower.contains("missing physical volume")
            || lower.contains("while pvs are missing")
        {
            return Error::MissingPv {
                operation,
                vg: vg(),
                detail: m.clone(),
            };
        }
        if lower.contains("lock")
            && (lower.contains("can't get")
                || lower.contains("giving up")
                || lower.contains("busy")
                || lower.contains("failed to lock")
                || lower.contains("resource temporarily unavailable"))
        {
            return Error::Busy {
                operation,
                vg: vg(),
                detail: m.clone(),
            };
        }
    }
    if let Some(m) = messages.iter().find(|m| {
        m.contains("device-mapper target(s) not detected")
            || m.contains("Failure to communicate with kernel device-mapper")
    }) {
        return Error::DeviceMapperUnavailable {
            operation,
            detail: m.clone(),
        };
    }
    Error::Command { operation, failure }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(messages: &[&str]) -> Error {
        let target = Target {
            object: ObjectKind::LogicalVolume,
            name: "vg/lv".into(),
            vg: Some("vg".into()),
        };
        let messages: Vec<String> = messages.iter().map(|s| s.to_string()).collect();
        let failure = CommandFailure {
            command: "lvm lvcreate".into(),
            exit_code: Some(5),
            stderr: messages.join("\n"),
        };
        classify("op", &target, &messages, failure)
    }

    #[test]
    fn classifies_real_lvm_messages() {
        // Messages as lvm2 2.03.16 prints them.
        assert!(matches!(run(&["Volume group \"nosuch\" not found"]),
            Error::NotFound { object: ObjectKind::VolumeGroup, ref name, .. } if name == "nosuch"));
        assert!(matches!(
            run(&["Failed to find logical volume \"vg/x\""]),
            Error::NotFound {
                object: ObjectKind::LogicalVolume,
                ..
            }
        ));
        assert!(matches!(
            run(&["Logical Volume \"l2\" already exists in volume group \"expvg1\""]),
            Error::AlreadyExists {
                object: ObjectKind::LogicalVolume,
                ..
            }
        ));
        assert!(matches!(
            run(&["A volume group called vg already exists."]),
            Error::AlreadyExists {
                object: ObjectKind::VolumeGroup,
                ..
            }
        ));
        assert!(matches!(
            run(&[
                "Volume group \"expvg1\" has insufficient free space (95 extents): 256 required."
            ]),
            Error::InsufficientSpace { .. }
        ));
        assert!(matches!(
            run(&[
                "Insufficient suitable allocatable extents for logical volume lv: 10 more required"
            ]),
            Error::InsufficientSpace { .. }
        ));
        assert!(matches!(
            run(&["Cannot change VG vg while PVs are missing."]),
            Error::MissingPv { .. }
        ));
        assert!(matches!(
            run(&["Giving up waiting for lock."]),
            Error::Busy { .. }
        ));
        // lvcreate as uid 65534 (lvm2 2.03.16): the lock file cannot be opened.
        let denied = run(&[
            "/run/lock/lvm/V_vg:aux: open failed: Permission denied",
            "Can't get lock for vg.",
            "Cannot process volume group vg",
        ]);
        assert!(
            matches!(denied, Error::PermissionDenied { ref detail, .. } if detail.contains("V_vg")),
            "{denied}"
        );
        assert!(denied.to_string().contains("must run as root"), "{denied}");
        assert!(matches!(
            run(&["striped: Required device-mapper target(s) not detected in your kernel."]),
            Error::DeviceMapperUnavailable { .. }
        ));
        assert!(matches!(run(&["something else"]), Error::Command { .. }));
        assert!(is_same_size(&[
            "New size (3 extents) matches existing size (3 extents).".into()
        ]));
    }
}
