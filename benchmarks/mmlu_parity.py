"""Per-question parity and speed of tunegate's MMLU scoring against lm-evaluation-harness.

Runs lm-eval (HF backend) and tunegate's engine on the same model, questions, shots, dtype and batch
size, in both formats, and prints how many predictions agree and each side's wall time. Each side is
timed as a whole process, from interpreter start to predictions (imports, model load, prompts,
scoring), and the runs are interleaved. As lm-eval's own MMLU does, each subject is a task of its
own, with its k-shot examples the first k of its dev split. lm-eval is not a tunegate dependency:
install it in any Python environment and pass that interpreter.

    python benchmarks/mmlu_parity.py --lm-eval-python /path/to/venv/bin/python [--shots 5] [--per-subject 50]

When that interpreter cannot import lm_eval, only tunegate's side runs (its accuracy and time), after
a line saying so: tests/test_benchmarks.py runs it that way on a tiny model, where lm-eval is not
installed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTION = "The following are multiple choice questions (with answers) about {{subject.replace('_', ' ')}}.\n\n"
TASKS = {
    "letter": {"doc_to_text": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\n"
                              "D. {{choices[3]}}\nAnswer:",
               "doc_to_choice": ["A", "B", "C", "D"]},
    "cloze": {"doc_to_text": "Question: {{question.strip()}}\nAnswer:", "doc_to_choice": "{{choices}}"},
}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def questions(data: Path, per_subject: int | None) -> list[dict]:
    """The questions in file order, at most `per_subject` (the first ones) of each subject."""
    seen: dict[str, int] = {}
    out = []
    for r in _rows(data):
        seen[r["subject"]] = seen.get(r["subject"], 0) + 1
        if per_subject is None or seen[r["subject"]] <= per_subject:
            out.append(r)
    return out


def predictions(lls: list[list[float]], rows: list[dict], fmt: str) -> tuple[list[int], list[int]]:
    """Raw and length-normalised (acc_norm: by characters) predictions, as lm-eval computes them."""
    raw, norm = [], []
    for values, r in zip(lls, rows):
        lengths = [len(c) for c in r["choices"]] if fmt == "cloze" else [1, 1, 1, 1]
        raw.append(max(range(4), key=lambda j: values[j]))
        norm.append(max(range(4), key=lambda j: values[j] / lengths[j]))
    return raw, norm


def lm_eval_run(python: str, model_dir: Path, rows: list[dict], dev: Path, fmt: str, shots: int, dtype: str,
                batch: int, work: Path) -> tuple[list[list[float]], float]:
    """lm-eval's four log-likelihoods per question, in `rows`' order, and its wall time."""
    dev_rows = _rows(dev)
    names = []
    for subject in dict.fromkeys(r["subject"] for r in rows):
        name = f"tunegate_{fmt}_{subject}"
        files = {"test": work / f"{subject}.test.jsonl", "dev": work / f"{subject}.dev.jsonl"}
        files["test"].write_text("".join(json.dumps(r) + "\n" for r in rows if r["subject"] == subject))
        files["dev"].write_text("".join(json.dumps(r) + "\n" for r in dev_rows if r["subject"] == subject))
        task = {"task": name, "dataset_path": "json",
                "dataset_kwargs": {"data_files": {k: str(v) for k, v in files.items()}},
                "test_split": "test", "fewshot_split": "dev", "fewshot_config": {"sampler": "first_n"},
                "num_fewshot": shots, "output_type": "multiple_choice", "description": DESCRIPTION,
                "doc_to_target": "answer", "target_delimiter": " ", "fewshot_delimiter": "\n\n",
                "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}], **TASKS[fmt]}
        (work / f"{name}.yaml").write_text(json.dumps(task))  # JSON is valid YAML
        names.append(name)
    out = work / f"out-{fmt}-{time.monotonic_ns()}"
    started = time.perf_counter()
    subprocess.run([python, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model_dir},dtype={dtype}",
                    "--tasks", ",".join(names), "--include_path", str(work), "--num_fewshot", str(shots),
                    "--batch_size", str(batch), "--device", "cpu", "--log_samples", "--output_path", str(out)],
                   check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    by_subject: dict[str, list[list[float]]] = {}
    for name in names:
        samples = sorted(out.rglob(f"samples_{name}_*.jsonl"))[-1]
        docs = sorted((json.loads(line) for line in samples.read_text().splitlines()), key=lambda s: s["doc_id"])
        by_subject[name.removeprefix(f"tunegate_{fmt}_")] = [[float(x[0]) for x in d["filtered_resps"]] for d in docs]
    return [by_subject[r["subject"]].pop(0) for r in rows], seconds


def lm_eval_missing(python: str) -> str | None:
    """Why `python` cannot run lm-eval (it cannot import lm_eval), or None when it can. An interpreter
    that does not run at all is an error, not a missing lm-eval."""
    probe = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('lm_eval') else 3)"
    try:
        code = subprocess.run([python, "-c", probe], capture_output=True, text=True).returncode
    except OSError as e:
        sys.exit(f"--lm-eval-python {python}: cannot run it ({e.strerror})")
    if code == 3:
        return f"{python} cannot import lm_eval (install lm_eval[hf] in that environment)"
    if code != 0:
        sys.exit(f"--lm-eval-python {python}: the interpreter failed (exit {code})")
    return None


def tunegate_child(model_dir: str, rows_file: str, dev: str, fmt: str, shots: int, dtype: str, batch: int) -> None:
    """In a child process: load the model, score, print the log-likelihoods as JSON."""
    from harness.engine.local import Engine
    from harness.engine.models import load_model, load_tokenizer, resolve_base
    from harness.roles import BASE
    from harness.suites import mmlu_format as mmlu

    def question(r: dict) -> mmlu.Question:
        return mmlu.Question(r["id"], r["subject"], r["question"], tuple(r["choices"]), r["answer"])

    ref = resolve_base(model_dir, ROOT / ".tunegate")
    engine = Engine(load_model(ref, dtype), load_tokenizer(ref), ref, None, batch)
    qs = [question(r) for r in _rows(Path(rows_file))]
    k_shots: dict[str, list] = {}
    for r in _rows(Path(dev)):
        k_shots.setdefault(r["subject"], []).append(question(r))
    pairs = mmlu.requests(qs, fmt, {s: v[:shots] for s, v in k_shots.items()})
    lls = [ll for ll, _ in engine.loglikelihood(BASE, pairs)]
    print(json.dumps([lls[4 * i: 4 * i + 4] for i in range(len(qs))]))


def tunegate_run(model_dir: Path, rows: list[dict], dev: Path, fmt: str, shots: int, dtype: str, batch: int,
                 work: Path) -> tuple[list[list[float]], float]:
    rows_file = work / "questions.jsonl"
    rows_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = (f"from benchmarks.mmlu_parity import tunegate_child; tunegate_child({str(model_dir)!r}, "
            f"{str(rows_file)!r}, {str(dev)!r}, {fmt!r}, {shots}, {dtype!r}, {batch})")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"tunegate's side failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1]), time.perf_counter() - started


def tunegate_only(fmt: str, ours: list[list[float]], rows: list[dict], gold: list[int], seconds: list[float]) -> None:
    """The table's lines with tunegate's figures alone ('-' where lm-eval's would be)."""
    raw, norm = predictions(ours, rows, fmt)
    time_s = f"{statistics.median(seconds):.1f} ({min(seconds):.1f})"
    for name, o in [("acc", raw)] + ([("acc_norm", norm)] if fmt == "cloze" else []):
        acc = sum(a == g for a, g in zip(o, gold)) / len(gold)
        print(f"{fmt:7} {name:9} {'-':>14} {acc:13.4f} {'-':>12} {time_s:>15} {'-':>15} {'-':>9}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm-eval-python", required=True, help="a Python with lm_eval[hf] installed")
    parser.add_argument("--model", default=str(ROOT / ".tunegate/models/SmolLM2-135M-Instruct"))
    parser.add_argument("--data", default=str(ROOT / "harness/defaults/mmlu/mmlu.jsonl"))
    parser.add_argument("--dev", default=str(ROOT / "harness/defaults/mmlu/dev.jsonl"))
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--formats", default="letter,cloze")
    parser.add_argument("--shots", type=int, default=0, help="solved dev examples per subject before each question")
    parser.add_argument("--per-subject", type=int, default=None, help="at most this many questions a subject")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side, interleaved")
    args = parser.parse_args()
    model, dev = Path(args.model), Path(args.dev)
    rows = questions(Path(args.data), args.per_subject)
    gold = [r["answer"] for r in rows]
    missing = lm_eval_missing(args.lm_eval_python)
    print(f"model {model.name}, {len(rows)} questions, {args.shots}-shot, {args.dtype}, batch {args.batch_size}, "
          f"{args.repeats} run(s) a side; times are whole processes, median (min)")
    if missing:
        print(f"lm-eval side skipped: {missing}; tunegate's side only, no parity figures", flush=True)
    print(f"{'format':7} {'metric':9} {'agree':>14} {'tunegate acc':>13} {'lm-eval acc':>12} "
          f"{'tunegate s':>15} {'lm-eval s':>15} {'speed-up':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            ours_s, theirs_s = [], []
            for _ in range(args.repeats):
                ours, seconds = tunegate_run(model, rows, dev, fmt, args.shots, args.dtype, args.batch_size, Path(tmp))
                ours_s.append(seconds)
                if missing:
                    continue
                theirs, seconds = lm_eval_run(args.lm_eval_python, model, rows, dev, fmt, args.shots, args.dtype,
                                              args.batch_size, Path(tmp))
                theirs_s.append(seconds)
            if missing:
                tunegate_only(fmt, ours, rows, gold, ours_s)
                continue
            (ours_raw, ours_norm), (theirs_raw, theirs_norm) = predictions(ours, rows, fmt), predictions(theirs, rows, fmt)
            largest = max(abs(a - b) for x, y in zip(ours, theirs) for a, b in zip(x, y))
            metrics = [("acc", ours_raw, theirs_raw)] + ([("acc_norm", ours_norm, theirs_norm)] if fmt == "cloze" else [])
            for name, o, t in metrics:
                agree = sum(a == b for a, b in zip(o, t))
                acc_o = sum(a == g for a, g in zip(o, gold)) / len(gold)
                acc_t = sum(a == g for a, g in zip(t, gold)) / len(gold)
                times = [f"{statistics.median(s):.1f} ({min(s):.1f})" for s in (ours_s, theirs_s)]
                print(f"{fmt:7} {name:9} {agree:>6}/{len(o)} {agree / len(o):6.1%} {acc_o:13.4f} {acc_t:12.4f} "
                      f"{times[0]:>15} {times[1]:>15} {statistics.median(theirs_s) / statistics.median(ours_s):8.2f}x",
                      flush=True)
            print(f"{fmt:7} largest log-likelihood difference {largest:.2e}", flush=True)


if __name__ == "__main__":
    main()
