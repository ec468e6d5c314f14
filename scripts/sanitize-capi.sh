#!/usr/bin/env bash
# The C API under AddressSanitizer and UndefinedBehaviorSanitizer: the C test programs
# (tests/c/smoke.c: every entry point and error path; reload.c: 4 threads scanning while
# the rules are reloaded 200 times; batch.c: the batch call against one call per text)
# and the submit-hook example are built with -fsanitize=address,undefined against the
# static library and must run clean (any report aborts with a non-zero exit), leaks
# included (LeakSanitizer).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --lib --quiet
lib=${CARGO_TARGET_DIR:-target}/debug/libshenhe.a
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '[[rule]]\nid = "a"\ncategory = 7\nseverity = "high"\nterms = ["甲甲"]\n' > "$work/a.toml"
printf '[[rule]]\nid = "b"\ncategory = 7\nseverity = "high"\nterms = ["乙乙"]\n' > "$work/b.toml"
printf '出售冰毒\n今天天气不错\n賭*博和ｄｕｂｏ\n\xff\xfe\n你这个傻逼\n' > "$work/texts.txt"
san=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
for src in tests/c/smoke.c tests/c/reload.c tests/c/batch.c examples/c/submit_hook.c; do
  cc -std=c11 -g -Wall -Werror "${san[@]}" -Iinclude "$src" "$lib" -lpthread -ldl -lm \
    -o "$work/$(basename "$src" .c)"
done
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=9
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$work/smoke" > "$work/smoke.out"
"$work/reload" "$work/a.toml" "$work/b.toml" 200 > "$work/reload.out"
grep -q "decisions with a mixed or wrong rule set: 0" "$work/reload.out"
"$work/batch" "$work/texts.txt" > "$work/batch.out"
grep -q "0 mismatches" "$work/batch.out"
printf '{"id":1,"text":"出售冰毒","poster":{"ip":"203.0.113.1","port":5}}\n{"text":1}\n' |
  "$work/submit_hook" - "$work/reports" "$work/audit.db" > "$work/hook.out" 2>/dev/null
grep -q "post 1: reject, reported" "$work/hook.out"
echo "sanitizers: the C API is clean under ASan+UBSan (200 reloads under load, batch = one by one)"
