#!/usr/bin/env bash
# User-space instructions per call, ours vs btrfs-progs, counted by callgrind (repeatable on a
# noisy machine; the kernel's work is not counted on either side). Needs root and valgrind.
#
#   bash benches/callgrind.sh [OP...]      # OP: noop checked-noop space usage (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${CALLS:-100}
bin=$(cargo bench --bench vs_progs --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not build the vs_progs bench" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ops=("$@")
[ ${#ops[@]} -gt 0 ] || ops=(noop checked-noop space usage)
printf '| operation | ours: instructions per call | btrfs-progs: instructions per run | ratio |\n|---|---|---|---|\n'
for op in "${ops[@]}"; do
  valgrind --tool=callgrind --callgrind-out-file="$out/ours.out" \
    --collect-atstart=no --toggle-collect='*measure::ours*' \
    "$bin" --profile "$op" --calls "$calls" >"$out/stdout" 2>"$out/stderr"
  ours=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/stderr" | tail -1)
  progs=$(sed -n 's/^btrfs-progs: \([0-9]*\) instructions.*/\1/p' "$out/stdout")
  [ -n "$ours" ] && [ -n "$progs" ] || { cat "$out/stderr" "$out/stdout" >&2; exit 1; }
  per=$((ours / calls))
  printf '| %s | %s | %s | %s× |\n' "$op" "$per" "$progs" "$((progs / (per > 0 ? per : 1)))"
done
