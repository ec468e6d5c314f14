#!/usr/bin/env bash
# The price of the audit log, end to end: `shenhe scan` of N generated posts (default
# 1,000,000) with and without `--audit`, alternating, REPS times each (default 3), on all
# cores. Prints the median wall times, their ratio (throughput with the audit divided by
# throughput without it) and the store's size per million posts.
#
# Usage: scripts/bench-audit.sh [N] [REPS]     (needs python3; builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
reps=${2:-3}
cargo build --release --locked --quiet
bin=${CARGO_TARGET_DIR:-target}/release/shenhe
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 examples/make_posts.py --count "$n" --seed 7 > "$work/posts.jsonl"
plain=() audit=()
for _ in $(seq "$reps"); do
  t0=$(date +%s.%N)
  "$bin" scan -q -i "$work/posts.jsonl" -o /dev/null
  t1=$(date +%s.%N)
  rm -f "$work"/audit.db*
  "$bin" scan -q -i "$work/posts.jsonl" -o /dev/null --audit "$work/audit.db"
  t2=$(date +%s.%N)
  plain+=("$t0:$t1") audit+=("$t1:$t2")
done
size=$(stat -c %s "$work/audit.db")
python3 - "$n" "$size" "${plain[*]}" "${audit[*]}" <<'PY'
import statistics, sys
n, size = int(sys.argv[1]), int(sys.argv[2])
def spans(arg):
    return [float(b) - float(a) for a, b in (x.split(":") for x in arg.split())]
plain, audit = spans(sys.argv[3]), spans(sys.argv[4])
p, a = statistics.median(plain), statistics.median(audit)
print(f"{n} posts: without --audit {p:.2f} s, with --audit {a:.2f} s (medians of {len(plain)})")
print(f"throughput ratio with/without: {p / a:.2f}")
print(f"store size: {size / 1e6:.0f} MB, {size / 1e6 * 1e6 / n:.0f} MB per million posts")
PY
