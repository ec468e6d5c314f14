#!/usr/bin/env bash
# `shenhe serve` under load next to `shenhe scan` on the same posts, in one run: wrk (Debian's
# package) with 16 connections on loopback POSTs the 300 sample posts in turn to
# /v1/moderate, for SECS seconds (default 10), against a service with a sealed audit store and
# one without; `shenhe scan --threads 2` decides the same posts repeated to 300,000 lines,
# with and without --audit. Prints posts per second, p50/p99 latency, non-2xx answers and the
# ratios to the CLI. REPS rounds (default 2), alternating. A third service run gives every
# request a post id of its own (a forum's traffic: a held post is a new row in the review
# queue, not a lookup of the one held in the first round).
#
# Usage: scripts/bench-serve.sh [SECS] [REPS]     (needs wrk and python3; builds release)
#        SHENHE_BENCH_BIN=/path/to/shenhe scripts/bench-serve.sh   (another build, for A/B)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
reps=${2:-2}
command -v wrk >/dev/null || { echo "bench-serve: needs wrk (apt-get install wrk)" >&2; exit 2; }
if [ -n "${SHENHE_BENCH_BIN:-}" ]; then
  bin=$(realpath "$SHENHE_BENCH_BIN")
else
  cargo build --release --locked --quiet
  bin=$PWD/${CARGO_TARGET_DIR:-target}/release/shenhe
fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cp examples/posts.jsonl "$work/posts.jsonl"
for _ in $(seq 1000); do cat examples/posts.jsonl; done > "$work/big.jsonl"
"$bin" audit keygen -o "$work/audit.key"
key=$("$bin" serve key new --name load --role moderate 2>/dev/null | head -1)
sha=$(printf %s "$key" | sha256sum | cut -d' ' -f1)
for mode in with without; do
  {
    echo "[server]"
    echo "listen = \"127.0.0.1:0\""
    [ "$mode" = with ] && printf 'audit = "audit.db"\naudit_key_file = "audit.key"\n'
    printf '\n[[server.keys]]\nname = "load"\nsha256 = "%s"\nroles = ["moderate"]\nrate_limit = 0\n' "$sha"
  } > "$work/$mode.toml"
done
cat > "$work/post.lua" <<'LUA'
local posts = {}
for line in io.lines(os.getenv("POSTS")) do posts[#posts + 1] = line end
local i, n = 0, 0
-- One tag per wrk thread (each has its own Lua state), for ids unique across threads.
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
local tag = tostring(math.random(1, 1e9))
local unique = os.getenv("UNIQUE") == "1"
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
wrk.headers["Content-Type"] = "application/json"
-- The requests are formatted once: wrk shares the service's two cores, and formatting each
-- request again cost about 5% of the service's posts per second. Only ids of their own need
-- a request built each time.
local formatted = {}
init = function(args)
  for k, body in ipairs(posts) do formatted[k] = wrk.format(nil, "/v1/moderate", nil, body) end
end
request = function()
  i = i % #posts + 1
  if not unique then return formatted[i] end
  n = n + 1
  local body = posts[i]:gsub('^{"id":"', '{"id":"' .. tag .. "-" .. n .. "-", 1)
  return wrk.format(nil, "/v1/moderate", nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %.3f %.3f %.1f\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests / (summary.duration / 1e6)))
end
LUA
serve() { # mode [unique] -> prints "rps p50 p99 bad"
  rm -f "$work"/audit.db*
  (cd "$work" && exec "$bin" serve --config "$1.toml" > "$work/addr" 2> "$work/$1.log") &
  local pid=$!
  for _ in $(seq 100); do grep -q :// "$work/addr" 2>/dev/null && break; sleep 0.1; done
  local url; url=$(sed -n 's/.*\(http:\/\/[^ ]*\).*/\1/p' "$work/addr" | head -1)
  UNIQUE=${2:-0} POSTS=$work/posts.jsonl KEY=$key wrk -t 2 -c 16 -d "${secs}s" -s "$work/post.lua" "$url" \
    | awk '/^RESULT/ {print $6, $4, $5, $3}'
  kill -TERM "$pid"; wait "$pid" || true
}
cli() { # extra args -> posts per second
  rm -f "$work"/cli.db*
  local t0 t1; t0=$(date +%s.%N)
  "$bin" scan -q --threads 2 -i "$work/big.jsonl" -o /dev/null "$@"
  t1=$(date +%s.%N)
  python3 -c "print(300000 / ($t1 - $t0))"
}
for r in $(seq "$reps"); do
  plain=$(cli) audited=$(cli --audit "$work/cli.db" --audit-key-file "$work/audit.key")
  read -r w_rps w_p50 w_p99 w_bad <<<"$(serve with)"
  read -r n_rps n_p50 n_p99 n_bad <<<"$(serve without)"
  read -r u_rps u_p50 u_p99 u_bad <<<"$(serve with 1)"
  python3 - <<PY
plain, audited = $plain, $audited
print(f"round $r: CLI --threads 2: {plain:,.0f} posts/s, with --audit {audited:,.0f}")
for name, rps, p50, p99, bad in [("with audit", $w_rps, $w_p50, $w_p99, $w_bad), ("no store", $n_rps, $n_p50, $n_p99, $n_bad),
                                 ("with audit, every post new", $u_rps, $u_p50, $u_p99, $u_bad)]:
    print(f"  serve {name}: {rps:,.0f} posts/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms, {bad} not 2xx;"
          f" {rps / plain:.3f}x the CLI, {rps / audited:.3f}x the CLI with --audit")
PY
done
