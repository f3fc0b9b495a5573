"""The explicit registry of evaluation suites. Each suite is a module with the same small interface:

- NAME, GATES (gate names), ITEMS (the pytest parameters its per-item tests take);
- enabled(config), data_paths(config) -> {key: path} (hashed into results and adapter metadata);
- items(session) -> {param: [item with .id]}: loaded and validated before anything trains;
- leakage_examples(session): the prompts that must not appear in the training data;
- evaluate(session) -> outcome (runs every role once, through the engine's cache);
- gate(name, outcome, session) -> GateResult.

The per-suite pytest files live in `suites/`; the plugin and the verdict consult this registry to
know which items and gates a complete run must have produced.
"""
from harness.suites import (
    behaviour,
    bias,
    diversity,
    golden,
    judge,
    memorisation,
    mmlu,
    safety,
)

SUITES = {m.NAME: m for m in (golden, safety, mmlu, diversity, bias, behaviour, memorisation, judge)}

__all__ = ["SUITES"]
