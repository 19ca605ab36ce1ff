#!/usr/bin/env bash
# Peak RSS and wall time of the defragmentation dry run (examples/defrag --dry-run --json) and
# of filefrag (e2fsprogs) over the same files, each a whole process measured by GNU time (%M).
#
# Why this beside the vs_progs harness: the harness measures its own side's heap, not the whole
# process, and gives filefrag's peak RSS only to the resolution of its spawner (see
# benches/vs_progs/measure.rs); here both are whole processes, measured the same way.
#
# usage (as root; needs GNU time, e2fsprogs, btrfs-progs, perl):
#   cargo build --release --example defrag
#   bash benches/defrag_rss.sh [DEFRAG_BINARY...]    # default target/release/examples/defrag
#
# One loop-mounted btrfs (its own sparse image and mount, removed on exit) gets 10 000, then
# 100 000 files of 4 KiB in 100 directories; at each size every binary and filefrag (batches of
# 10 000 paths, from find, untimed) run once untimed, then three times measured; the medians
# are printed (time and peak RSS of the run with the median time).
set -euo pipefail
cd "$(dirname "$0")/.."
binaries=("$@")
[ ${#binaries[@]} -gt 0 ] || binaries=(target/release/examples/defrag)
for b in "${binaries[@]}"; do
    [ -x "$b" ] || { echo "no executable $b (cargo build --release --example defrag)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }

work=$(mktemp -d /tmp/btrfs-lvm-rss-XXXXXX)
mnt="$work/mnt"
mounted=
cleanup() {
    if [ -n "$mounted" ]; then umount "$mnt"; fi
    rm -rf "$work"
}
trap cleanup EXIT
mkdir "$mnt"
truncate -s 1536M "$work/img"
mkfs.btrfs -q "$work/img" >/dev/null
# A loop device of mount's own (autoclear): umount detaches it.
mount -o loop "$work/img" "$mnt"
mounted=1

# The median of three runs of "$@": "SECONDS KiB" (GNU time's %e and %M).
measure() {
    local out="$work/time" i
    "$@" >/dev/null 2>&1 || true
    for i in 1 2 3; do
        /usr/bin/time -o "$out" -f '%e %M' "$@" >/dev/null
        cat "$out"
    done | sort -n -k1 | sed -n 2p
}

# filefrag over every file, batches of 10 000 paths; each batch's GNU time line appended to $1.
filefrag_all() {
    find "$mnt" -type f -print0 | xargs -0 -n 10000 /usr/bin/time -a -o "$1" -f '%e %M' filefrag
}

# The median of three runs of filefrag_all: "SECONDS KiB" (wall summed, the largest peak RSS).
measure_filefrag() {
    local i
    filefrag_all /dev/null >/dev/null
    for i in 1 2 3; do
        : >"$work/ff"
        filefrag_all "$work/ff" >/dev/null
        awk '{ s += $1; if ($2 > m) m = $2 } END { printf "%.2f %d\n", s, m }' "$work/ff"
    done | sort -n -k1 | sed -n 2p
}

made=0
for count in 10000 100000; do
    perl -e '
        my ($root, $from, $to) = @ARGV;
        for my $d (0 .. 99) { my $p = sprintf("%s/d%03d", $root, $d); mkdir $p unless -d $p }
        for my $i ($from .. $to - 1) {
            my $p = sprintf("%s/d%03d/s%06d", $root, $i % 100, $i);
            open(my $f, ">", $p) or die "$p: $!";
            print $f chr($i % 251) x 4096;
            close($f) or die "$p: $!";
        }' "$mnt" "$made" "$count"
    made=$count
    sync -f "$mnt"
    for b in "${binaries[@]}"; do
        read -r secs kib < <(measure "$b" --dry-run --json "$mnt")
        printf '%7d files  %-45s %6.2f s  %7d KiB\n' "$count" "$b --dry-run --json" "$secs" "$kib"
    done
    read -r secs kib < <(measure_filefrag)
    printf '%7d files  %-45s %6.2f s  %7d KiB\n' "$count" "filefrag (batches of 10 000)" "$secs" "$kib"
done
