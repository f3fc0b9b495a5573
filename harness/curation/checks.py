"""`tunegate data check`: every check over a set of data files, as one report of findings.

Per file: the schema (while reading), the order and content of turns, the chat template and token
lengths, PII, exact and near duplicates. Across files: leakage, i.e. a question in the training
data (train, val) that is a near-duplicate of one in another file or in an evaluation suite's data.
Evaluation data is not compared with evaluation data: suites may share items on purpose (the bias
suite's counterfactual pairs may be made from the golden set). What each enabled suite needs of the
task's data (a slice key on every golden item, the attribute to swap, a pair's fields, a rubric's
schema file) is checked as its items load, so a problem there is one line, as in `pytest suites/`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.curation import consistency, dedup, pii
from harness.curation.findings import KINDS, Finding, error, warning
from harness.curation.records import DataFile, conversation_text, prompt_text, read_file
from harness.data.examples import Example


@dataclass(frozen=True)
class Settings:
    """Thresholds and training settings the checks need (from the config's [data] and [training])."""

    near_duplicate: float = 0.9
    leakage: float = 0.7
    max_length: int | None = None  # None: no truncation check
    system_prompt: str | None = None


@dataclass
class CheckReport:
    files: list[DataFile]
    findings: list[Finding]
    tokens: dict[str, list[int | None]]  # file name -> length of each example, when a tokenizer was given
    eval_sets: dict[str, int]  # evaluation suites' data compared for leakage: name -> items
    settings: Settings
    seconds: float = 0.0
    truncated: dict[str, int] = field(default_factory=dict)  # file name -> examples over max_length

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]


def pii_findings(ex: Example) -> list[Finding]:
    """One error per PII match in the example's turns and reference, masked so the report does not
    spread it further."""
    fields = [(f"turn {i + 1} ({m['role']})", m["content"]) for i, m in enumerate(ex.messages)]
    if ex.reference is not None and ex.reference != ex.target():
        fields.append(("'reference'", ex.reference))
    found = []
    for name, text in fields:
        for m in pii.find_pii(text):
            found.append(error("pii", ex.origin, f"{m.kind.replace('_', ' ')} in {name}, characters {m.start + 1}-"
                               f"{m.end}: {m.masked()}; remove it, or `tunegate data clean` replaces it with "
                               f"{pii.PLACEHOLDERS[m.kind]}"))
    return found


def duplicate_findings(examples: list[Example], threshold: float) -> list[Finding]:
    """A warning for every example that repeats an earlier one, exactly (after normalising) or nearly."""
    texts = [conversation_text(ex) for ex in examples]
    found, exact = [], set()
    for group in dedup.exact_groups(texts):
        first = examples[group[0]].origin
        for i in group[1:]:
            exact.add(i)
            found.append(warning("duplicate", examples[i].origin, f"duplicate of {first} (the same text once case, "
                                 "punctuation and spacing are ignored); `tunegate data clean` drops it", other=first))
    reported = set()
    for p in dedup.near_pairs(texts, threshold):
        if p.b in exact or p.b in reported:
            continue
        reported.add(p.b)  # each example once, against the earliest example it repeats
        first = examples[p.a].origin
        found.append(warning("near_duplicate", examples[p.b].origin, f"near-duplicate of {first} (Jaccard "
                             f"{p.similarity:.2f} >= {threshold}); `tunegate data clean` drops it", other=first))
    return found


def leakage_findings(train: DataFile, index: dedup.ShingleIndex, other_name: str, other: list[Example],
                     ) -> list[Finding]:
    """An error at each item of `other` whose question is a near-duplicate of one in the training-side
    file (`index`: its questions)."""
    found, reported = [], set()
    for p in index.matches([prompt_text(e) for e in other]):
        if p.b in reported:
            continue
        reported.add(p.b)
        source = train.examples[p.a].origin
        found.append(error("leakage", other[p.b].origin, f"leaks into {other_name}: its question is a near-duplicate "
                           f"of {source} in {train.name} (Jaccard {p.similarity:.2f} >= {index.threshold}); remove "
                           "it from one of the two files", other=source))
    return found


def check_files(files: list[DataFile], settings: Settings, tokenizer=None,
                eval_sets: dict[str, list[Example]] | None = None) -> CheckReport:
    """Run every check over `files` (read with `records.read_file`), comparing them with each other
    and with `eval_sets` (name -> items; not the checked files again) for leakage. Without a
    tokenizer, the template and length checks are skipped."""
    start = time.perf_counter()
    findings: list[Finding] = []
    tokens: dict[str, list[int | None]] = {}
    truncated: dict[str, int] = {}
    for f in files:
        findings.extend(f.findings)
        for ex in f.examples:
            findings.extend(consistency.role_problems(ex))
            findings.extend(pii_findings(ex))
        if tokenizer is not None:
            lengths, problems = consistency.token_lengths(f.examples, tokenizer, settings.system_prompt,
                                                          training=f.role == "train")
            tokens[f.name] = lengths
            findings.extend(problems)
            if f.role == "train" and settings.max_length is not None:
                over = consistency.truncation(f.examples, lengths, settings.max_length)
                truncated[f.name] = len(over)
                findings.extend(over)
        findings.extend(duplicate_findings(f.examples, settings.near_duplicate))
    # Leakage: each training-side file against every other file (a pair of training files once) and
    # every suite's items; its questions are indexed once for all of them.
    used = {name: len(items) for name, items in (eval_sets or {}).items() if items}
    targets = [(f.name, f.examples, f.role == "train") for f in files] + [(n, eval_sets[n], False) for n in used]
    for i, f in enumerate(files):
        if f.role != "train":
            continue
        index = dedup.ShingleIndex([prompt_text(e) for e in f.examples], settings.leakage)
        for j, (name, items, is_train) in enumerate(targets):
            if j != i and not (is_train and j < i):
                findings.extend(leakage_findings(f, index, name, items))
    order = {k: i for i, k in enumerate(KINDS)}
    findings.sort(key=lambda x: (x.severity != "error", order.get(x.kind, len(order))))  # stable: file order kept
    return CheckReport(files, findings, tokens, used, settings, time.perf_counter() - start, truncated)


def check_paths(paths: list[Path], settings: Settings, tokenizer=None,
                eval_sets: dict[str, list[Example]] | None = None) -> CheckReport:
    """Read and check the given files (kinds inferred from their records)."""
    return check_files([read_file(p, name=str(p)) for p in paths], settings, tokenizer, eval_sets)


def check_run(session, tokenizer, settings: Settings | None = None) -> CheckReport:
    """The check a run makes before training: the configured train, val and golden files, and every
    enabled suite's items for leakage."""
    config = session.config
    files = [read_file(config.path(config.data.train), "train", kind="train")]
    if config.data.val is not None:
        files.append(read_file(config.path(config.data.val), "val", kind="train"))
    if "golden" in session.enabled_suites():
        files.append(read_file(config.path(config.suites.golden.path), "golden", kind="golden"))
    eval_sets = session.leakage_sets(skip=frozenset(f.path.resolve() for f in files))
    return check_files(files, settings or settings_from(config), tokenizer, eval_sets)


def settings_from(config, max_length: int | None = None) -> Settings:
    d = config.data
    return Settings(near_duplicate=d.near_duplicate_threshold, leakage=d.leakage_threshold,
                    max_length=max_length or config.training.max_length, system_prompt=d.system_prompt)
