#!/usr/bin/env bash
# bangfu beside the hand-written Rust baseline and pandas
# (../shared/bench/peers) on the same generated ledgers: medians of wall time
# and peak RSS over alternating runs, their ratios to rust-baseline, and
# whether each tool's violations equal the generator's truth.
#
#   bash benches/compare.sh SCALE [--repeat N] [--seed N] [--formats "json csv"]
#                                 [--skip pandas] [--keep]
#
# SCALE: tiny | county | city | sichuan | national | a number of villages.
# Data goes to $BENCH_DATA (default /tmp/bangfu-bench/data/SCALE-seedN) and is
# generated with ../shared/bench/gen_dataset.py when missing. Each round runs
# rust-baseline, bangfu and pandas in turn, so machine noise hits all of them
# alike; ratios are of medians taken in this one command. A row per tool and
# format is also appended to $data/results.tsv. `--keep` keeps the outputs.
set -euo pipefail
set -f  # no globbing: rule patterns such as three_one.* are passed as they are
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
scale=${1:?usage: compare.sh SCALE [--repeat N] [--seed N] [--formats "json csv"] [--skip pandas]}
shift
repeat=3; seed=1; formats="json csv"; skip=""
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --formats) formats=$2; shift 2 ;;
    --skip) skip=$2; shift 2 ;;
    --keep) shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [[ "$scale" =~ ^[0-9]+$ ]]; then scale_args=(--villages "$scale"); else scale_args=(--scale "$scale"); fi
data=${BENCH_DATA:-/tmp/bangfu-bench/data}/$scale-seed$seed
mkdir -p "$data"

cargo build --release --quiet --manifest-path "$here/Cargo.toml"
bangfu=${CARGO_TARGET_DIR:-$here/target}/release/bangfu
baseline_target=${BASELINE_TARGET:-/tmp/bangfu-bench/rust-baseline-target}
CARGO_TARGET_DIR=$baseline_target cargo build --release --quiet --manifest-path "$bench/peers/rust-baseline/Cargo.toml"
baseline=$baseline_target/release/bench-baseline
py=python3
[ -x "${TOOLS:-/tmp/bangfu-bench/tools}/venv/bin/python" ] && py=${TOOLS:-/tmp/bangfu-bench/tools}/venv/bin/python
tools="baseline bangfu"
if [[ ",$skip," != *,pandas,* ]] && "$py" -c 'import pandas' 2>/dev/null; then tools="$tools pandas"; fi

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# run NAME OUTFILE CMD... : appends "wall_s rss_kib" to $data/NAME.times
run() {
  local name=$1 out=$2; shift 2
  local start end
  start=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$data/time.tmp" "$@" >"$out" 2>"$data/$name.stderr" || true
  end=$(date +%s%N)
  echo "$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", (e - s) / 1e9 }') $(tail -n 1 "$data/time.tmp")" >>"$data/$name.times"
}

cmd_of() { # TOOL INPUT
  case $1 in
    baseline) echo "$baseline $2" ;;
    bangfu) echo "$bangfu check $2 --format jsonl --rule three_one.* --rule five_ones.* --rule exit.*" ;;
    pandas) echo "$py $bench/peers/python/check_pandas.py $2" ;;
  esac
}

echo "# $scale (seed $seed), medians of $repeat alternating runs; x = ratio to rust-baseline of the same format"
printf '| tool | input | wall s | x rust | peak RSS MiB | x rust | violations | agrees |\n'
printf '|---|---|---:|---:|---:|---:|---:|---|\n'
for format in $formats; do
  case $format in csv) input=$data/ledger-csv ;; *) input=$data/ledger.$format ;; esac
  truth=$data/truth.jsonl
  [ -e "$input" ] || python3 "$bench/gen_dataset.py" "${scale_args[@]}" --seed "$seed" --format "$format" --out "$input" --truth "$truth" --quiet
  python3 "$bench/normalize.py" "$truth" >"$data/truth.norm"
  for tool in $tools; do rm -f "$data/$tool-$format.times"; done
  for _ in $(seq "$repeat"); do
    for tool in $tools; do
      # shellcheck disable=SC2046
      run "$tool-$format" "$data/$tool.out" $(cmd_of "$tool" "$input")
    done
  done
  bw=$(cut -d' ' -f1 "$data/baseline-$format.times" | median)
  br=$(cut -d' ' -f2 "$data/baseline-$format.times" | median)
  for tool in $tools; do
    w=$(cut -d' ' -f1 "$data/$tool-$format.times" | median)
    r=$(cut -d' ' -f2 "$data/$tool-$format.times" | median)
    python3 "$bench/normalize.py" "$data/$tool.out" >"$data/$tool.norm" 2>/dev/null || true
    if cmp -s "$data/$tool.norm" "$data/truth.norm"; then agree=yes; else agree=NO; fi
    n=$(wc -l <"$data/$tool.norm")
    name=$tool; [ "$tool" = baseline ] && name=rust-baseline
    printf '| %s | %s | %.3f | %s | %.0f | %s | %s | %s |\n' "$name" "$format" "$w" "$(ratio "$w" "$bw")" \
      "$(awk -v r="$r" 'BEGIN { print r / 1024 }')" "$(ratio "$r" "$br")" "$n" "$agree"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scale" "$name" "$format" "$w" "$(ratio "$w" "$bw")" \
      "$(awk -v r="$r" 'BEGIN { printf "%.0f", r / 1024 }')" "$(ratio "$r" "$br")" "$agree" >>"$data/results.tsv"
  done
  rm -f "$data"/*.out
done
