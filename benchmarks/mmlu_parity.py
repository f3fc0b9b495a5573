"""Per-question parity of tunegate's MMLU scoring with lm-evaluation-harness.

Runs lm-eval (HF backend) and tunegate's engine on the same model, questions, dtype and batch
size, in both formats, and prints how many predictions agree. lm-eval is not a tunegate
dependency: install it in any Python environment and pass that interpreter.

    python benchmarks/mmlu_parity.py --lm-eval-python /path/to/venv/bin/python [--dtype float32]
"""
from __future__ import annotations

import argparse
import json
import subprocess
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


def lm_eval_predictions(python: str, model_dir: Path, data: Path, fmt: str, dtype: str, batch: int,
                        work: Path) -> tuple[list[int], list[int], float]:
    """lm-eval's raw and length-normalised predictions, in file order, and its wall time."""
    task = {"task": f"tunegate_mmlu_{fmt}", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}},
            "test_split": "test", "output_type": "multiple_choice", "description": DESCRIPTION,
            "doc_to_target": "answer", "target_delimiter": " ",
            "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}], **TASKS[fmt]}
    (work / f"{fmt}.yaml").write_text(json.dumps(task))  # JSON is valid YAML
    out = work / f"out-{fmt}"
    started = time.perf_counter()
    subprocess.run([python, "-m", "lm_eval", "--model", "hf", "--model_args",
                    f"pretrained={model_dir},dtype={dtype}", "--tasks", task["task"], "--include_path", str(work),
                    "--batch_size", str(batch), "--device", "cpu", "--log_samples", "--output_path", str(out)],
                   check=True)
    seconds = time.perf_counter() - started
    samples = sorted(out.rglob(f"samples_{task['task']}_*.jsonl"))[-1]
    rows = sorted((json.loads(line) for line in samples.read_text().splitlines()), key=lambda r: r["doc_id"])
    raw, norm = [], []
    for r in rows:
        lls = [float(x[0]) for x in r["filtered_resps"]]
        lengths = [len(c) for c in r["doc"]["choices"]] if fmt == "cloze" else [1, 1, 1, 1]
        raw.append(max(range(4), key=lambda j: lls[j]))
        norm.append(max(range(4), key=lambda j: lls[j] / lengths[j]))
    return raw, norm, seconds


def tunegate_predictions(model_dir: Path, data: Path, fmt: str, dtype: str, batch: int):
    from harness import mmlu
    from harness.engine import BASE, Engine
    from harness.models import load_model, load_tokenizer, resolve_base

    ref = resolve_base(str(model_dir), ROOT / ".tunegate")
    engine = Engine(load_model(ref, dtype), load_tokenizer(ref), ref, None, batch)
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    questions = [mmlu.Question(r["id"], r["subject"], r["question"], tuple(r["choices"]), r["answer"]) for r in rows]
    started = time.perf_counter()
    lls = [ll for ll, _ in engine.loglikelihood(BASE, mmlu.requests(questions, fmt))]
    seconds = time.perf_counter() - started
    scored = mmlu.score(questions, lls, fmt)
    return [r["pred"] for r in scored], [r["pred_norm"] for r in scored], [q.answer for q in questions], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm-eval-python", required=True, help="a Python with lm_eval[hf] installed")
    parser.add_argument("--model", default=str(ROOT / ".tunegate/models/SmolLM2-135M-Instruct"))
    parser.add_argument("--data", default=str(ROOT / "fixtures/mmlu/mmlu.jsonl"))
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--formats", default="letter,cloze")
    args = parser.parse_args()
    model, data = Path(args.model), Path(args.data)
    print(f"model {model.name}, {sum(1 for _ in data.open())} questions, {args.dtype}, batch {args.batch_size}")
    print(f"{'format':8} {'metric':9} {'agree':>13} {'tunegate acc':>13} {'lm-eval acc':>12} {'tunegate s':>11} {'lm-eval s':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            ours_raw, ours_norm, gold, ours_s = tunegate_predictions(model, data, fmt, args.dtype, args.batch_size)
            theirs_raw, theirs_norm, theirs_s = lm_eval_predictions(args.lm_eval_python, model, data, fmt, args.dtype,
                                                                    args.batch_size, Path(tmp))
            metrics = [("acc", ours_raw, theirs_raw)] + ([("acc_norm", ours_norm, theirs_norm)] if fmt == "cloze" else [])
            for name, ours, theirs in metrics:
                agree = sum(a == b for a, b in zip(ours, theirs))
                acc_o = sum(a == g for a, g in zip(ours, gold)) / len(gold)
                acc_t = sum(a == g for a, g in zip(theirs, gold)) / len(gold)
                print(f"{fmt:8} {name:9} {agree:>5}/{len(ours)} {agree / len(ours):6.1%} {acc_o:13.4f} {acc_t:12.4f} "
                      f"{ours_s:11.1f} {theirs_s:10.1f}", flush=True)


if __name__ == "__main__":
    main()
