#!/usr/bin/env bash
# The C API under valgrind memcheck: tests/c/smoke.c (every entry point and error path),
# tests/c/reload.c (4 threads scanning, one through a moderator, while the rules are
# reloaded 30 times) and tests/c/batch.c (the batch call with its hits handle against one
# call per text) must end with 0 errors and 0 bytes definitely lost, linked against two
# builds of the library: the release library (what hosts link: `cargo build --release --lib
# --no-default-features`)
# and our crate at opt-level 0 (dependencies stay at the dev profile's opt-level 2, so only
# the one crate is rebuilt, in the usual target directory), whose line tables are exact.
# No suppressions: the optimiser once loaded a poster's name before knowing there was a
# poster (Post::field reads it through black_box since; issue 20, item 16).
# --fair-sched=yes: valgrind runs one thread at a time, and with its default lock the four
# scanning threads of reload.c could keep the main thread from running for 15 minutes and
# more (seen on 2026-12-05: stuck in pthread_create while the scanners looped); its ticket
# lock gives each thread its turn.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
target=${CARGO_TARGET_DIR:-target}
CARGO_PROFILE_DEV_OPT_LEVEL=0 cargo build --locked --lib --quiet
cargo build --locked --release --lib --no-default-features --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '[[rule]]\nid = "a"\ncategory = 7\nseverity = "high"\nterms = ["甲甲"]\n' > "$work/a.toml"
printf '[[rule]]\nid = "b"\ncategory = 7\nseverity = "high"\nterms = ["乙乙"]\n' > "$work/b.toml"
printf '出售冰毒\n今天天气不错\n賭*博和ｄｕｂｏ\n\xff\xfe\n你这个傻逼\n' > "$work/texts.txt"
vg=(valgrind --quiet --fair-sched=yes --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --error-exitcode=9)
for profile in debug release; do
  for prog in smoke reload batch; do
    cc -std=c11 -g -Wall -Werror -Iinclude "tests/c/$prog.c" "$target/$profile/libshenhe.a" -lpthread -ldl -lm -o "$work/$prog"
  done
  "${vg[@]}" "$work/smoke" > "$work/smoke.out"
  "${vg[@]}" "$work/reload" "$work/a.toml" "$work/b.toml" 30 > "$work/reload.out"
  grep -q "decisions with a mixed or wrong rule set: 0" "$work/reload.out"
  "${vg[@]}" "$work/batch" "$work/texts.txt" > "$work/batch.out"
  grep -q "0 mismatches" "$work/batch.out"
  echo "valgrind: the $profile library is clean"
done
echo "valgrind: the C API is clean in both builds (0 errors, 0 bytes definitely lost)"
