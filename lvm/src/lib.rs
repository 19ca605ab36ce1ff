//! LVM2 management through the lvm2 CLI and lvmdbusd (placeholder: see the lvm issue).
