#!/usr/bin/env bash
# Two threads on one engine against one, from C (examples/c/threads.c): the posts are the
# sample posts that the bundled rules allow, their texts joined into 3,000-char posts (clean
# text, as a forum's most common case); each thread scans all of them PASSES times per round.
# Prints the best of REPEATS rounds of each and the ratio of their throughputs.
#
# Usage: scripts/bench-c-threads.sh [PASSES] [REPEATS] [RULES_PATH]   (bundled rules by default)
#        POSTS=file.jsonl scripts/bench-c-threads.sh ...   (other posts, one JSON post a line)
set -euo pipefail
cd "$(dirname "$0")/.."
passes=${1:-20}
repeats=${2:-5}
rules=${3:-}
cargo build --release --locked --quiet --lib
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -Iinclude examples/c/threads.c "${CARGO_TARGET_DIR:-target}/release/libshenhe.a" \
  -lpthread -ldl -lm -o "$work/threads"
posts=${POSTS:-}
if [ -z "$posts" ]; then
  cargo build --release --locked --quiet
  "${CARGO_TARGET_DIR:-target}/release/shenhe" scan -i examples/posts.jsonl -q --no-escalation \
    > "$work/decisions.jsonl"
  python3 - examples/posts.jsonl "$work/decisions.jsonl" > "$work/posts.jsonl" <<'PY'
import json, sys
posts = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
decisions = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
clean = "".join(p["text"].replace("\n", "") for p, d in zip(posts, decisions)
                if d.get("action") == "allow")
for i in range(64):
    start = (i * 997) % len(clean)
    text = (clean[start:] + clean)[:3000]
    print(json.dumps({"id": i + 1, "text": text}, ensure_ascii=False))
PY
  posts=$work/posts.jsonl
fi
"$work/threads" "$posts" "$passes" "$repeats" ${rules:+"$rules"}
