#!/usr/bin/env bash
# How bangfu's time and memory grow with the size of the ledger, beside
# rust-baseline: median wall time and peak RSS at several village counts,
# and the growth exponent b of a least-squares fit  value = a * villages^b.
#
#   bash benches/scaling.sh [--formats "json csv"] [--repeat N] [--sizes "250 2500 10000 37752"]
#
# Runs benches/compare.sh for each size (data generated on demand) and fits
# the medians it appends to each size's results.tsv.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
formats="json csv"; repeat=3; sizes="250 2500 10000 37752"
while [ $# -gt 0 ]; do
  case "$1" in
    --formats) formats=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
root=${BENCH_DATA:-/tmp/bangfu-bench/data}
for size in $sizes; do
  rm -f "$root/$size-seed1/results.tsv"
  bash "$here/benches/compare.sh" "$size" --repeat "$repeat" --formats "$formats" --skip pandas >/dev/null
done
python3 - "$root" "$sizes" <<'PY'
import math, sys
root, sizes = sys.argv[1], sys.argv[2].split()
rows = {}
for size in sizes:
    for line in open(f"{root}/{size}-seed1/results.tsv"):
        scale, tool, fmt, wall, _, rss, _, agree = line.rstrip("\n").split("\t")
        rows.setdefault((tool, fmt), []).append((int(size), float(wall), float(rss), agree))
def fit(points):
    xs = [math.log(x) for x, _ in points]; ys = [math.log(y) for _, y in points]
    n = len(xs); mx = sum(xs) / n; my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else float("nan")
print("| tool | input | " + " | ".join(f"{s} villages" for s in sizes) + " | time exponent | RSS exponent |")
print("|---|---|" + "---:|" * len(sizes) + "---:|---:|")
for (tool, fmt), pts in sorted(rows.items()):
    cells = " | ".join(f"{w:.3f} s, {r:.0f} MiB" + ("" if a == "yes" else " (DISAGREES)") for _, w, r, a in pts)
    print(f"| {tool} | {fmt} | {cells} | {fit([(s, w) for s, w, _, _ in pts]):.2f} | {fit([(s, r) for s, _, r, _ in pts]):.2f} |")
PY
