#!/usr/bin/env bash
# Debian packages the LVM tests need: lvm2 (the CLI backend), lvm2-dbusd and dbus (the D-Bus
# backend against a private bus), thin-provisioning-tools (thin pools in the VM), and for the
# VM activation tests QEMU, a static busybox, kmod and cpio. Then prepares the VM kernel and
# initramfs (bash .ci/lvm-vm.sh prepare) so the tests do not download during `cargo test`.
set -euo pipefail
packages=(lvm2 lvm2-dbusd dbus thin-provisioning-tools qemu-system-x86 busybox-static kmod cpio
          btrfs-progs)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
export DEBIAN_FRONTEND=noninteractive
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "packages ready: ${packages[*]}"
bash "$(dirname "$0")/lvm-vm.sh" prepare
