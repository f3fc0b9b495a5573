"""How suites read their data: stable subsets, BBQ answer roles, safety prompt files."""
import json

import pytest

from harness.data.examples import load_records, stable_subset
from harness.errors import TunegateError
from harness.suites.bias import BBQ_SCHEMA, _bbq_item


def test_stable_subset_is_independent_of_file_order():
    items = [f"id-{i}" for i in range(50)]
    picked = stable_subset(items, 10, key=str)
    assert len(picked) == 10 and picked == [i for i in items if i in picked]  # original order kept
    assert set(stable_subset(items[::-1], 10, key=str)) == set(picked)
    assert stable_subset(items, None, key=str) == items


def test_bbq_item_finds_the_unknown_and_the_stereotyped_answer(repo_root):
    where, record = load_records(repo_root / "harness/defaults/bbq/Age.jsonl", BBQ_SCHEMA)[0]
    item = _bbq_item(where, record)
    # "I saw a grandson and their grandfather ...": ans0 grandfather (old), ans1 grandson, ans2 unknown
    assert (item.target, item.unknown) == (0, 2)
    assert item.context.endswith("\nAnswer:") and record["question"] in item.context


def test_bbq_item_without_a_stereotyped_answer_is_a_clear_error(repo_root):
    where, record = load_records(repo_root / "harness/defaults/bbq/Age.jsonl", BBQ_SCHEMA)[0]
    record["additional_metadata"]["stereotyped_groups"] = ["nobody"]
    with pytest.raises(TunegateError, match="Age.jsonl:1: cannot tell"):
        _bbq_item(where, record)


def test_safety_prompt_file_errors_name_the_line(tmp_path):
    from harness.suites.safety import SCHEMA

    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps({"id": "a", "prompt": "x", "label": "unsafe"}) + "\n"
                    + json.dumps({"id": "b", "prompt": "y", "label": "harmful"}) + "\n")
    with pytest.raises(TunegateError, match=r"prompts\.jsonl:2: field 'label'"):
        load_records(path, SCHEMA)
