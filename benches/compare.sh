#!/usr/bin/env bash
# bangfu beside the hand-written Rust baseline (../shared/bench/peers/rust-baseline)
# on the same files: medians of wall time and peak RSS, and their ratios.
#
#   bash benches/compare.sh SCALE [--repeat N] [--seed N] [--formats "json csv"]
#
# SCALE: tiny | county | city | sichuan | national | a number of villages.
# Runs alternate (baseline, bangfu, baseline, …) so machine noise hits both.
# Both must report the same violations as the generator's truth file.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
scale=${1:?usage: compare.sh SCALE [--repeat N] [--seed N] [--formats "json csv"]}
shift
repeat=3; seed=1; formats="json csv"
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --formats) formats=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [[ "$scale" =~ ^[0-9]+$ ]]; then scale_args=(--villages "$scale"); else scale_args=(--scale "$scale"); fi
data=${BENCH_DATA:-/tmp/bangfu-bench/data}/$scale-seed$seed
mkdir -p "$data"

cargo build --release --quiet --manifest-path "$here/Cargo.toml"
bangfu=$here/target/release/bangfu
baseline_target=${BASELINE_TARGET:-/tmp/bangfu-bench/rust-baseline-target}
CARGO_TARGET_DIR=$baseline_target cargo build --release --quiet --manifest-path "$bench/peers/rust-baseline/Cargo.toml"
baseline=$baseline_target/release/bench-baseline

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# run NAME OUTFILE CMD... : appends "wall_s rss_kib" to $data/NAME.times
run() {
  local name=$1 out=$2; shift 2
  local start end
  start=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$data/time.tmp" "$@" >"$out" 2>"$data/$name.stderr" || true
  end=$(date +%s%N)
  echo "$(echo "($end - $start) / 1000000000" | bc -l) $(tail -n 1 "$data/time.tmp")" >>"$data/$name.times"
}

printf '| tool | input | wall s (median of %s) | x baseline | peak RSS MiB | x baseline | violations | agrees |\n' "$repeat"
printf '|---|---|---:|---:|---:|---:|---:|---|\n'
for format in $formats; do
  case $format in csv) input=$data/ledger-csv ;; *) input=$data/ledger.$format ;; esac
  truth=$data/truth.jsonl
  [ -e "$input" ] || python3 "$bench/gen_dataset.py" "${scale_args[@]}" --seed "$seed" --format "$format" --out "$input" --truth "$truth" --quiet
  python3 "$bench/normalize.py" "$truth" >"$data/truth.norm"
  rm -f "$data/baseline-$format.times" "$data/bangfu-$format.times"
  for _ in $(seq "$repeat"); do
    run "baseline-$format" "$data/baseline.out" "$baseline" "$input"
    run "bangfu-$format" "$data/bangfu.out" "$bangfu" check "$input" --format jsonl --rule 'three_one.*' --rule 'five_ones.*' --rule 'exit.*'
  done
  bw=$(cut -d' ' -f1 "$data/baseline-$format.times" | median)
  br=$(cut -d' ' -f2 "$data/baseline-$format.times" | median)
  fw=$(cut -d' ' -f1 "$data/bangfu-$format.times" | median)
  fr=$(cut -d' ' -f2 "$data/bangfu-$format.times" | median)
  for tool in baseline bangfu; do
    python3 "$bench/normalize.py" "$data/$tool.out" >"$data/$tool.norm" 2>/dev/null || true
    if cmp -s "$data/$tool.norm" "$data/truth.norm"; then agree=yes; else agree=NO; fi
    n=$(wc -l <"$data/$tool.norm")
    if [ "$tool" = baseline ]; then
      printf '| rust-baseline | %s | %.3f | 1.00 | %.0f | 1.00 | %s | %s |\n' "$format" "$bw" "$(echo "$br/1024" | bc -l)" "$n" "$agree"
    else
      printf '| bangfu | %s | %.3f | %.2f | %.0f | %.2f | %s | %s |\n' "$format" "$fw" "$(echo "$fw/$bw" | bc -l)" "$(echo "$fr/1024" | bc -l)" "$(echo "$fr/$br" | bc -l)" "$n" "$agree"
    fi
  done
done
