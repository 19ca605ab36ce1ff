#!/usr/bin/env bash
# A throwaway VM with device-mapper for the LVM activation tests.
#
#   bash .ci/lvm-vm.sh prepare            fetch the Debian kernel, build the initramfs (cached)
#   bash .ci/lvm-vm.sh run [--disk-size SIZE] -- CMD [ARGS...]
#                                         boot it, run CMD inside, exit with CMD's exit code
#
# The guest boots a stock Debian kernel under QEMU TCG (no KVM: see FIELD-NOTES), mounts the host
# root read-only over 9p, chroots into it with fresh /dev, /proc, /sys and tmpfs on /run and
# /tmp (binding back a checkout that lives under /tmp), and runs CMD in the current directory with TMPDIR=/run/tmp and a raw scratch disk at
# /dev/vda (LVM_KIT_VM_DISK). No udev runs in the guest. Nothing on the host is changed except
# the cache directory (default target/lvm-vm, or $LVM_VM_CACHE) and the scratch disk, a sparse
# file in a temporary directory that is removed afterwards.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${LVM_VM_CACHE:-${CARGO_TARGET_DIR:-$repo/target}/lvm-vm}
modules=(virtio_pci virtio_blk 9pnet_virtio 9p dm_mod dm_snapshot dm_thin_pool btrfs)

die() { echo "lvm-vm: $*" >&2; exit 2; }

kernel_version() {
  # The kernel the linux-image-amd64 metapackage points at, e.g. 6.1.0-56-amd64.
  apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -n1
}

prepare() {
  mkdir -p "$cache"
  # The initramfs is rebuilt whenever this script changes.
  local stamp
  stamp=$(sha256sum "$0" | cut -d' ' -f1)
  if [[ -s $cache/kver && -f $cache/vmlinuz && -f $cache/initramfs.gz &&
        $(cat "$cache/stamp" 2>/dev/null) == "$stamp" ]]; then
    echo "lvm-vm: ready: kernel $(cat "$cache/kver"), cache $cache"
    return
  fi
  local kver work
  kver=$(kernel_version)
  if [[ -z $kver ]]; then
    apt-get update -qq
    kver=$(kernel_version)
  fi
  [[ -n $kver ]] || die "cannot find the linux-image-amd64 kernel version (apt-cache depends)"
  for tool in busybox depmod modprobe cpio qemu-system-x86_64; do
    command -v "$tool" >/dev/null || [[ -x /bin/$tool || -x /sbin/$tool ]] ||
      die "$tool is missing: run bash tests/run.sh as root (it installs the test packages)"
  done
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  (cd "$work" && apt-get download "linux-image-$kver" >/dev/null 2>&1) ||
    die "apt-get download linux-image-$kver failed"
  dpkg-deb -x "$work"/linux-image-*.deb "$work/root"
  depmod -b "$work/root" "$kver"
  local ir=$work/initramfs
  mkdir -p "$ir"/{bin,dev,proc,sys,newroot,modules}
  cp "$(command -v busybox || echo /bin/busybox)" "$ir/bin/busybox"
  for applet in sh mount mkdir insmod cat echo chroot poweroff sleep dd printf sed; do
    ln -s busybox "$ir/bin/$applet"
  done
  # Modules in dependency order, each once.
  local n=0
  for m in "${modules[@]}"; do
    modprobe -d "$work/root" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
  done | awk '!seen[$0]++' | while read -r ko; do
    n=$((n + 1))
    name=$(printf '%02d-%s' "$n" "$(basename "$ko")")
    cp "$ko" "$ir/modules/$name"
    echo "$name" >> "$ir/modules/order"
  done
  cat > "$ir/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do
  # crc32c-intel needs SSE4.2, which TCG may lack: crc32c_generic covers it.
  insmod "/modules/$m" 2>/dev/null || echo "lvm-vm: insmod $m failed (ignored)"
done
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /newroot ||
  echo "lvm-vm: cannot mount the host root"
mount -t devtmpfs dev /newroot/dev
mkdir -p /newroot/dev/shm /newroot/dev/pts
mount -t tmpfs shm /newroot/dev/shm
mount -t devpts pts /newroot/dev/pts
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t tmpfs run /newroot/run
cmd=$(sed -n 's/.*lvmvm\.cmd=\([^ ]*\).*/\1/p' /proc/cmdline)
# A writable /tmp, but a checkout that lives under the host's /tmp (CI clones may) stays
# visible: its top folder is bound back from the host root before the tmpfs hides it.
mkdir -p /newroot/run/hosttmp
mount -o bind /newroot/tmp /newroot/run/hosttmp
mount -t tmpfs tmp /newroot/tmp
case "$cmd" in
  /tmp/*)
    top=${cmd#/tmp/}
    top=${top%%/*}
    mkdir -p "/newroot/tmp/$top"
    mount -o bind "/newroot/run/hosttmp/$top" "/newroot/tmp/$top"
    ;;
esac
mkdir -p /newroot/run/tmp /newroot/run/lock/lvm /newroot/run/lvm
for d in /newroot/etc/lvm/archive /newroot/etc/lvm/backup; do
  [ -d "$d" ] && mount -t tmpfs lvm "$d"
done
echo "lvm-vm: running $cmd"
chroot /newroot /bin/sh "$cmd"
rc=$?
echo "LVM-VM-EXIT=$rc"
# isa-debug-exit: QEMU exits with (value << 1) | 1.
printf "\\$(printf %o "$rc")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
INIT
  chmod +x "$ir/init"
  (cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) > "$cache/initramfs.gz.new"
  cp "$work/root/boot/vmlinuz-$kver" "$cache/vmlinuz"
  mv "$cache/initramfs.gz.new" "$cache/initramfs.gz"
  echo "$kver" > "$cache/kver"
  echo "$stamp" > "$cache/stamp"
  echo "lvm-vm: prepared kernel $kver with $(wc -l < "$ir/modules/order") modules in $cache"
}

run() {
  local disk_size=2G
  while [[ $# -gt 0 ]]; do
    case $1 in
      --disk-size) disk_size=$2; shift 2 ;;
      --) shift; break ;;
      *) die "unknown option $1" ;;
    esac
  done
  [[ $# -gt 0 ]] || die "usage: lvm-vm.sh run [--disk-size SIZE] -- CMD [ARGS...]"
  prepare >/dev/null
  local tmp
  tmp=$(mktemp -d "$cache/run-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  truncate -s "$disk_size" "$tmp/disk.raw"
  {
    echo "cd $(printf '%q' "$PWD") || exit 125"
    echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    echo "export TMPDIR=/run/tmp HOME=/run/tmp LC_ALL=C LVM_KIT_VM_DISK=/dev/vda"
    # No udev and no dmeventd in the guest: an lvm.conf that neither waits for udev nor asks
    # dmeventd to monitor thin pools and snapshots.
    echo "mkdir -p /run/lvm-etc && printf '%s\\n' 'activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }' 'devices { obtain_device_list_from_udev = 0 }' > /run/lvm-etc/lvm.conf"
    echo "export LVM_SYSTEM_DIR=/run/lvm-etc"
    [[ -n ${CI:-} ]] && echo "export CI=$(printf '%q' "$CI")"
    printf 'exec'; printf ' %q' "$@"; echo
  } > "$tmp/cmd.sh"
  local start=$SECONDS
  set +e
  timeout --foreground -k 10 "${LVM_VM_TIMEOUT:-900}" qemu-system-x86_64 -accel tcg -cpu max -smp 1 -m 1024 \
    -nodefaults -display none -serial stdio -no-reboot \
    -kernel "$cache/vmlinuz" -initrd "$cache/initramfs.gz" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 lvmvm.cmd=$tmp/cmd.sh" \
    -fsdev local,id=r,path=/,security_model=none,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=r,mount_tag=hostroot \
    -drive "file=$tmp/disk.raw,format=raw,if=virtio,cache=unsafe" \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 </dev/null | tee "$tmp/serial.log"
  local qemu=${PIPESTATUS[0]}
  set -e
  local rc
  rc=$(sed -n 's/^LVM-VM-EXIT=\([0-9]*\).*/\1/p' "$tmp/serial.log" | tail -n1)
  echo "lvm-vm: guest finished in $((SECONDS - start)) s (qemu status $qemu, command status ${rc:-none})"
  [[ -n $rc ]] || { echo "lvm-vm: the guest did not report an exit code" >&2; exit 3; }
  exit "$rc"
}

case ${1:-} in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  *) die "usage: lvm-vm.sh prepare | run [--disk-size SIZE] -- CMD [ARGS...]" ;;
esac
