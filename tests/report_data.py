"""Synthetic but schema-valid run results for report tests, with hostile model outputs on demand."""
from __future__ import annotations

import random

HOSTILE = [
    '<script>document.title="PWNED-script"</script>',
    '<img src=x onerror="document.title=\'PWNED-img\'">',
    '<svg onload="document.title=\'PWNED-svg\'"></svg>',
    '</pre></td></tr></table><iframe src="javascript:alert(1)"></iframe>',
    '<a href="javascript:document.title=\'PWNED-a\'">click</a> <b>bold</b> &amp; &lt;',
    '{{ 7*7 }} ${7*7} <!-- --> ]]> @octocat | `tick` [link](http://evil.example) ![img](http://evil.example/x.png)',
]
ROLES = ("base", "candidate", "champion")


def gate(name, passed, value, *, base=None, champion=None, **extra):
    g = {"name": name, "suite": name.split(".")[0], "kind": "absolute", "passed": passed, "value": value,
         "threshold": None, "baseline_role": None, "baseline": None, "margin": None, "p_value": None, "ci": None,
         "detail": f"{name} detail", "base_value": base, "champion_value": champion}
    g.update(extra)
    return g


def results(run_id="20261122-120000-abcd", *, n=30, hostile=False, status="BLOCKED", seed=1, output_len=20,
            started="2026-11-22T12:00:00+00:00", champion=True):
    """A run with `n` golden/safety items answered by every role; with `hostile`, the first items'
    outputs, prompts, ids and slice values are HTML/Markdown attacks."""
    rnd = random.Random(seed)
    roles = ROLES if champion else ROLES[:2]
    examples = []
    for i in range(n):
        suite = "golden" if i % 3 else "safety"
        attack = HOSTILE[i % len(HOSTILE)] if hostile and i < 2 * len(HOSTILE) else None
        for role in roles:
            out = attack or (f"answer {i} by {role} " + "x" * output_len)
            passed = rnd.random() < (0.5 if role == "candidate" else 0.75)
            critical_failed = i == 1 and role == "candidate"
            examples.append({
                "suite": suite, "example_id": f"ex-{i}" if not attack or i % 2 else f"ex-{i}{attack}", "role": role,
                "prompt": [{"role": "system", "content": "sys"}, {"role": "user", "content": attack or f"Question {i}?"}],
                "output": out, "passed": passed and not critical_failed, "scores": {},
                "slice": {"region": (attack if attack and i % 2 else ["NA", "EMEA", "APAC"][i % 3]), "customer": f"C{i}"},
                "critical": i == 1, "critical_failed": critical_failed,
                "reason": "" if not attack else attack,
            })
    ok = status == "PROMOTED"
    return {
        "schema_version": 1, "run_id": run_id, "started_at": started, "finished_at": started, "git_commit": "abc1234",
        "verdict": {"status": status, "line": f"tunegate: {status}" + ("" if ok else ": golden.pass_rate"),
                    "failed_gates": [] if ok else ["golden.pass_rate"], "promoted_adapter": "sft-1" if ok else None},
        "complete": True, "base_model": {"source": "bundled", "fingerprint": "f" * 64},
        "candidate": {"id": "sft-1", "fingerprint": "x", "path": "/nowhere", "trained_now": True},
        "champion": {"id": "sft-0", "fingerprint": "y", "path": "/nowhere"} if champion else None,
        "config_hash": "c" * 64, "data": {"train": "d" * 64},
        "training": {"loss_history": {"train": [[1, 3.0], [2, 2.5], [3, 2.1], [4, 1.9]], "val": [[2, 2.7], [4, 2.2]]},
                     "best_val_loss": 2.2, "steps": 4, "train_seconds": 12.0},
        "suites": {"golden": {r: {"pass_rate": 0.5, "passed": 5, "n": 10, "ci": [0.2, 0.8]} for r in roles}},
        "gates": [gate("golden.pass_rate", ok, 0.4 + rnd.random() / 5, base=0.1, champion=0.5 if champion else None,
                       threshold=0.6, ci=[0.2, 0.6]),
                  gate("golden.noninferior_champion", True if champion else None, 0.45, base=0.1,
                       champion=0.5 if champion else None, kind="noninferior", baseline_role="champion",
                       baseline=0.5 if champion else None, margin=0.05, p_value=0.2 if champion else None)],
        "examples": examples, "engine": {},
    }
