#!/usr/bin/env bash
# Runs `shenhe scan` the way ../shared/peers/bench_cli.py times a CLI: a lexicon (one term
# a line) and a JSONL corpus in, decisions out. The lexicon becomes a one-rule rule file
# with plain substring semantics (boundary = "none") and, by default, no normalisation
# (normalize = []), so the hit count equals the overlapping-match count of the exact
# peers. SHENHE_NORMALIZE=default keeps the default steps instead (the evasion-resistant
# row; its count is higher: it also finds the evasive plants). The conversion is part of
# the timed run.
#
#   PROJECT_CLI="$PWD/scripts/peers-cli.sh {lexicon} {corpus}" PROJECT_COUNT_FIELD=hits \
#   SKIP=refs,rust,c,python,node bash ../shared/peers/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
lexicon=$(readlink -f "$1")
corpus=$2
rules=$(mktemp --suffix=.toml)
trap 'rm -f "$rules"' EXIT
normalize='normalize = []'
[ "${SHENHE_NORMALIZE:-exact}" = default ] && normalize=''
cat > "$rules" <<TOML
[[rule]]
id = "lexicon"
category = 7
severity = "medium"
boundary = "none"
$normalize
terms_file = "$lexicon"
TOML
"${SHENHE:-$here/target/release/shenhe}" scan --rules "$rules" -i "$corpus" -q ${SHENHE_THREADS:+--threads "$SHENHE_THREADS"}
