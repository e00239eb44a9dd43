#!/usr/bin/env bash
# How fast a what-if session answers after load: `bangfu repl --timing` on a
# generated ledger, each `:set` timed on its own (medians over --repeat runs).
#
#   bash benches/repl.sh [SCALE] [--repeat N]     # default: sichuan, 3 runs
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
scale=${1:-sichuan}
repeat=3
[ "${2:-}" = "--repeat" ] && repeat=${3:-3}
data=${BENCH_DATA:-/tmp/bangfu-bench/data}/$scale-seed1
mkdir -p "$data"
[ -e "$data/ledger.json" ] || python3 "$bench/gen_dataset.py" --scale "$scale" --seed 1 --format json --out "$data/ledger.json" --truth "$data/truth.jsonl" --quiet
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
commands=(":set three_one.threshold 15" ":set exit.max_incidence 0.02" ":undo" ":set pairing_2023.round 2022" "count(villages where poor)")
args=()
for c in "${commands[@]}"; do args+=(--eval "$c"); done
log=$(mktemp)
for _ in $(seq "$repeat"); do
  "$here/target/release/bangfu" repl "$data/ledger.json" --timing "${args[@]}" 2>>"$log" >/dev/null
done
echo "| step | median s (of $repeat) |"
echo "|---|---:|"
for step in load "${commands[@]}"; do
  grep -F "[$step: " "$log" | sed -E 's/.*: ([0-9.]+) s\]/\1/' | sort -n | awk -v step="$step" '{a[NR]=$1} END {printf "| `%s` | %.3f |\n", step, a[int((NR+1)/2)]}'
done
rm -f "$log"
