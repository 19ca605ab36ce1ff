#!/usr/bin/env bash
# The whole test suite, as the README gives it: `bash tests/run.sh`.
#
# As root (a fresh Debian 12 machine with only the Rust toolchain is enough) it first installs
# what the tests need and is missing, then runs every tier:
#   1. the default suite (`cargo test --workspace`: kernel tests on loop devices, LVM through the
#      lvm2 CLI and through a private lvmdbusd, the QEMU guest with device-mapper, Docker's btrfs
#      driver on our filesystem through a private dockerd), with no btrfs-progs binary on PATH,
#      proving the library and examples never call it;
#   2. the oracle tier: the same figures compared with btrfs-progs' answers, from two oracles:
#      the host's btrfs-progs 6.2 and the sid userland's 7.x (run chrooted, tests/kernel/progs.rs
#      `Progs`); where their outputs differ the tests say which one is right.
# The default suite includes the modern Docker tier (`--test docker_modern`: Docker 28 and
# containerd 2.1 of the sid userland, three ways of storing images on our btrfs).
# Unprivileged it installs nothing and runs `cargo test --workspace`: the root tests are listed
# as skipped. Exit status: that of the first tier that fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

# What the tests use, by tier: btrfs-progs is the oracle only; e2fsprogs makes the ext4
# comparison filesystem and has chattr (the append-only/immutable subvolume delete tests);
# lvm2, lvm2-dbusd and dbus are the LVM backends under test;
# thin-provisioning-tools, qemu-system-x86, busybox-static, kmod and cpio make the VM;
# docker.io (dockerd and Debian's client), containerd, runc and tini (`docker run --init`) are
# the Docker tier, whose images are made from busybox-static (no registry is reachable). docker.io
# also pulls in iptables, unused (the tier's dockerd runs with --iptables=false). Its postinst
# asks invoke-rc.d to start a system dockerd: on these machines (no systemd running)
# policy-rc.d refuses, so none runs; where one runs, the tier shares nothing with it.
# The upkeep tests (dockroot/tests/upkeep.rs) check the metrics with promtool (prometheus) and
# against node_exporter (prometheus-node-exporter, started by the test on a free localhost port
# and stopped by its pid), and the units with systemd-analyze and systemd-escape (systemd; no
# running systemd needed); the upkeep benchmark compares with btrfsmaintenance's balance script.
# Their postinsts ask invoke-rc.d/deb-systemd-invoke to start prometheus and node_exporter:
# without a running systemd nothing starts (checked: no process after the install), and no test
# touches a system service.
# debootstrap makes the Debian sid userland of today's Docker (docker.io 28, containerd 2.1,
# btrfs-progs 7.x: .ci/sid-userland), cached under /var/cache/btrfs-lvm; the modern Docker tier
# runs its programs chrooted in private mount namespaces, and the oracle tier asks its btrfs-progs
# as a second oracle. Nothing of it is installed on the host. btrfs-compsize (compsize) is a
# second oracle of the space-per-subvolume benchmark (benches/space_share.rs, its smoke mode in
# .ci/bench-smoke).
packages=(util-linux e2fsprogs btrfs-progs lvm2 lvm2-dbusd dbus thin-provisioning-tools
          qemu-system-x86 busybox-static kmod cpio docker.io containerd runc tini
          systemd prometheus prometheus-node-exporter btrfsmaintenance debootstrap
          btrfs-compsize)

step() { echo; echo "=== $* ==="; }

if [[ $(id -u) != 0 ]]; then
  step "not root: installing nothing; the root tests are listed as skipped"
  exec cargo test --locked --workspace
fi

start=$SECONDS
step "packages the tests need (only the missing ones are installed)"
bash .ci/install-packages "${packages[@]}"
step "VM kernel and initramfs for the LVM activation tier"
bash .ci/lvm-vm.sh prepare

step "Debian sid userland for today's Docker (cached)"
BTRFS_LVM_SID_ROOT=$(bash .ci/sid-userland prepare)
export BTRFS_LVM_SID_ROOT

step "default suite, with no btrfs-progs binary on PATH"
bash .ci/without-btrfs-progs cargo test --locked --workspace

step "oracle tier: compare with btrfs-progs 6.2 (host) and 7.x (sid userland)"
BTRFS_ORACLE=1 cargo test --locked --test kernel -- oracle --test-threads=1
BTRFS_ORACLE=1 cargo test --locked --test docker -- oracle

echo
echo "all test tiers passed in $((SECONDS - start)) s"
