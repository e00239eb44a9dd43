#!/usr/bin/env bash
# Agreement with the generator's truth: for each scale, seed and format, the
# six benchmark rules of `bangfu check` (normalised) must equal the truth file
# byte for byte.
#
#   bash benches/agree.sh                       # tiny county city × seeds 1-3 × json yaml csv
#   SCALES="tiny" SEEDS="7 8" bash benches/agree.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
scales=${SCALES:-tiny county city}
seeds=${SEEDS:-1 2 3}
formats=${FORMATS:-json yaml csv}
work=${WORK:-$(mktemp -d)}
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
bin=$here/target/release/bangfu
fail=0
for scale in $scales; do
  for seed in $seeds; do
    for format in $formats; do
      case $format in csv) out=$work/$scale-$seed-csv ;; *) out=$work/$scale-$seed.$format ;; esac
      truth=$work/$scale-$seed.truth.jsonl
      [ -e "$out" ] || python3 "$bench/gen_dataset.py" --scale "$scale" --seed "$seed" --format "$format" --out "$out" --truth "$truth" 2>/dev/null
      set +e
      "$bin" check "$out" --format jsonl --rule 'three_one.*' --rule 'five_ones.*' --rule 'exit.*' >"$work/out.jsonl"
      rc=$?
      set -e
      if [ "$rc" -ge 2 ]; then echo "FAIL $scale seed $seed $format: exit $rc"; fail=1; continue; fi
      python3 "$bench/normalize.py" "$work/out.jsonl" >"$work/out.norm"
      python3 "$bench/normalize.py" "$truth" >"$work/truth.norm"
      if cmp -s "$work/out.norm" "$work/truth.norm"; then
        echo "ok   $scale seed $seed $format: $(wc -l <"$work/truth.norm") violations"
      else
        echo "FAIL $scale seed $seed $format:"; diff "$work/out.norm" "$work/truth.norm" | head -5; fail=1
      fi
    done
  done
done
exit $fail
