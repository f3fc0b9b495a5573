"""How long `tunegate data check` takes on a 10,000-example training file (the acceptance bar is 60 s).

The file is generated, deterministically, from the demo's training examples: each generated example
is a demo conversation with another customer, another city, extra sentences from a pool, a ticket
reference and a date, so that the file looks like real support data (many templated, similar
examples, which is the hard case for near-duplicate search), and a few planted problems (exact
duplicates, near-duplicates, PII) so that every check has work to do.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/data_check_10k.py

It times the whole command as a user runs it (start-up, tokenizer, every check, with the demo's val
and golden files and leakage against every suite's data, as a run checks it) and prints the figure.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST = ["Ana", "Bram", "Chen", "Dara", "Emeka", "Farah", "Goran", "Hana", "Ivo", "Jun", "Kemal", "Lena", "Mateo",
         "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tomoko", "Uma", "Viktor", "Wen", "Yara", "Zeynep"]
LAST = ["Ahmed", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jansen", "Kowalski",
        "Lopez", "Mensah", "Novak", "Okafor", "Petrov", "Rossi", "Silva", "Tanaka", "Umar", "Varga", "Weber"]
CITIES = ["Lagos", "Lyon", "Osaka", "Denver", "Porto", "Nairobi", "Krakow", "Lima", "Perth", "Oslo", "Pune", "Quito"]
EXTRA = [
    "I already tried logging out and back in.", "This started after the last update.",
    "My colleague sees the same thing.", "I am on the desktop app.", "It also happens on my phone.",
    "We use the Team plan.", "Nothing in the help centre covered it.", "It worked fine last week.",
    "I restarted my laptop twice.", "The sync icon keeps spinning.", "I need it for a client meeting.",
    "Could you also tell me where the setting lives?", "Thanks for looking into it.",
    "Sorry if this was asked before.", "I am not very technical.", "Screenshots can be sent if useful.",
]


PLANTED_UP_TO = 310  # the planted problems sit in rows 100-309


def generate(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    demo = [json.loads(line) for line in (ROOT / "fixtures/demo/train.jsonl").read_text().splitlines()]
    lines = []
    for i in range(n):
        base = demo[i % len(demo)]
        user, answer = base["messages"][0]["content"], base["messages"][-1]["content"]
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        extra = " ".join(rng.sample(EXTRA, rng.randint(1, 3)))
        prompt = (f"Hi, this is {name} from {rng.choice(CITIES)}. {user} {extra} "
                  f"Ref {rng.randint(10000, 99999)}, sent {rng.randint(1, 28)}/{rng.randint(1, 12)}/2025.")
        lines.append(json.dumps({"id": f"gen-{i:05d}", "messages": [
            {"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
            "meta": {"task": base.get("meta", {}).get("task", "help")}}))
    # Planted: 20 exact duplicates, 20 near-duplicates (one word changed), 10 emails, 10 phone numbers.
    for k in range(20):
        lines[100 + k] = lines[k].replace(f"gen-{k:05d}", f"gen-{100 + k:05d}")
        record = json.loads(lines[k])
        record["id"] = f"gen-{200 + k:05d}"
        record["messages"][0]["content"] = record["messages"][0]["content"].replace("Hi,", "Hello,", 1)
        lines[200 + k] = json.dumps(record)
    for k in range(10):
        record = json.loads(lines[300 + k])
        record["messages"][0]["content"] += f" Reach me at user{k}@mailbox.org or +44 20 7946 {1000 + k}."
        lines[300 + k] = json.dumps(record)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="examples to generate (default 10,000)")
    parser.add_argument("--keep", metavar="PATH", help="also keep the generated file at PATH")
    args = parser.parse_args()
    if args.n < PLANTED_UP_TO:  # tests/test_benchmarks.py runs the smallest file that holds them
        parser.error(f"--n must be at least {PLANTED_UP_TO}: the planted problems are among the first {PLANTED_UP_TO} "
                     "examples")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.keep) if args.keep else Path(tmp) / "train-10k.jsonl"
        data.write_text("\n".join(generate(args.n)) + "\n")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        start = time.perf_counter()
        # As a run would check it: with the demo's val and golden files, and leakage against every suite's data.
        out = subprocess.run([sys.executable, "-m", "harness.cli", "data", "check", str(data), "fixtures/demo/val.jsonl",
                              "fixtures/demo/golden.jsonl", "--limit", "3"], cwd=ROOT, env=env, capture_output=True,
                             text=True)
        seconds = time.perf_counter() - start
    print(out.stdout, end="")
    print(out.stderr, end="", file=sys.stderr)
    # Exit 1 means findings (the planted problems are errors), but a crash exits 1 too: the check ran to its
    # end only if it printed its summary line.
    completed = "tunegate: data check:" in out.stdout
    print(f"benchmark: `tunegate data check` on {args.n:,} examples took {seconds:.1f} s wall-clock "
          f"(exit {out.returncode}{'' if completed else ', no summary: the check did not complete'}; the bar is 60 s)")
    return 0 if completed and out.returncode in (0, 1) and seconds < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
