import json
from pathlib import Path

import pytest

from harness.data.examples import check_leakage, load_jsonl, normalise, split_train_val
from harness.errors import TunegateError

CHAT = {"id": "a", "messages": [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}]}
INSTR = {"instruction": "Summarise", "input": "Long text.", "output": "Short."}


def jsonl(tmp_path: Path, rows, name="data.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return p


def test_both_shapes_load(tmp_path):
    chat, instr = load_jsonl(jsonl(tmp_path, [CHAT, INSTR]))
    assert chat.target() == "Hello!" and chat.prompt() == [{"role": "user", "content": "Hi there"}]
    assert instr.messages[0]["content"] == "Summarise\n\nLong text." and instr.target() == "Short."
    assert instr.id == "data-2"  # no id: file stem and line
    assert chat.prompt("Be brief.")[0] == {"role": "system", "content": "Be brief."}


def test_demo_data_is_valid_and_clean(repo_root):
    demo = repo_root / "fixtures" / "demo"
    train = load_jsonl(demo / "train.jsonl")
    val = load_jsonl(demo / "val.jsonl")
    golden = load_jsonl(demo / "golden.jsonl", kind="golden")
    assert len(train) >= 300 and len(val) >= 40 and len(golden) >= 100
    assert all(ex.rubric and {"task", "region", "customer"} <= set(ex.slice) for ex in golden)
    check_leakage(train, [val, golden])


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"messages": [', "data.jsonl:2: invalid JSON"),
        ('[1, 2]', "data.jsonl:2: expected a JSON object"),
        ('{"prompt": "x"}', "data.jsonl:2: needs 'messages' (chat) or 'instruction'"),
        ('{"messages": [{"role": "bot", "content": "x"}]}', "data.jsonl:2: field 'messages[0].role'"),
        ('{"messages": [{"role": "user"}]}', "data.jsonl:2: field 'messages[0]': 'content' is a required property"),
        ('{"messages": [{"role": "user", "content": "q"}]}', "data.jsonl:2: field 'messages': the last turn must be"),
        ('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}]}', "last turn"),
        ('{"instruction": "", "output": "x"}', "data.jsonl:2: field 'instruction'"),
        ('{"messages": [{"role": "assistant", "content": "x"}]}', "needs at least one user turn"),
        (json.dumps({**CHAT, "extra": 1}), "data.jsonl:2: field '(record)': Additional properties"),
        (json.dumps(CHAT), "data.jsonl:2: field 'id': duplicate id 'a' (first at"),
    ],
)
def test_bad_lines_name_file_line_and_field(tmp_path, line, message):
    with pytest.raises(TunegateError) as e:
        load_jsonl(jsonl(tmp_path, [CHAT, line]))
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_file_level_errors(tmp_path):
    with pytest.raises(TunegateError, match="file not found"):
        load_jsonl(tmp_path / "missing.jsonl")
    with pytest.raises(TunegateError, match="the file is empty"):
        load_jsonl(jsonl(tmp_path, []))
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes('{"instruction": "caf\xe9", "output": "x"}\n'.encode("latin-1"))
    with pytest.raises(TunegateError, match="not UTF-8"):
        load_jsonl(bad)


GOLDEN = {"id": "g", "messages": [{"role": "user", "content": "Q?"}], "rubric": [{"type": "contains", "value": "x"}]}


@pytest.mark.parametrize(
    "rubric, message",
    [
        ([], "field 'rubric': a golden example needs at least one check"),
        ([{"type": "regex", "pattern": "("}], "field 'rubric[0]': invalid regex"),
        ([{"type": "json_schema", "schema": {"type": "nonsense"}}], "field 'rubric[0]': invalid JSON Schema"),
        ([{"type": "json_schema", "schema": "nope.json"}], "field 'rubric[0]': JSON Schema file not found"),
        ([{"type": "rouge_l", "min": 2}], "field 'rubric[0].min'"),
        ([{"type": "contians", "value": "x"}], "field 'rubric[0].type'"),
    ],
)
def test_bad_rubrics_fail_at_load(tmp_path, rubric, message):
    with pytest.raises(TunegateError) as e:
        load_jsonl(jsonl(tmp_path, [{**GOLDEN, "rubric": rubric}]), kind="golden")
    assert message in str(e.value)


def test_leakage_is_found_after_normalisation(tmp_path):
    train = load_jsonl(jsonl(tmp_path, [CHAT], "train.jsonl"))
    golden = load_jsonl(jsonl(tmp_path, [{**GOLDEN, "messages": [{"role": "user", "content": "  HI, there!! "}]}],
                              "golden.jsonl"), kind="golden")
    with pytest.raises(TunegateError, match=r"golden.jsonl:1: example 'g' leaks: .*/train.jsonl:1"):
        check_leakage(train, [golden])
    assert normalise("  HI, there!! ") == normalise("hi there")


def test_split_is_deterministic_and_order_independent(tmp_path):
    rows = [{"id": f"e{i}", "instruction": f"q{i}", "output": "a"} for i in range(50)]
    exs = load_jsonl(jsonl(tmp_path, rows))
    train, val = split_train_val(exs, 0.2, seed=1)
    assert len(val) == 10 and len(train) == 40
    train2, val2 = split_train_val(list(reversed(exs)), 0.2, seed=1)
    assert {e.id for e in val} == {e.id for e in val2}
    assert {e.id for e in split_train_val(exs, 0.2, seed=2)[1]} != {e.id for e in val}


def test_critical_flags_per_example_and_per_check(tmp_path):
    rubric = [{"type": "contains", "value": "a", "critical": True}, {"type": "contains", "value": "b"}]
    per_check, whole = load_jsonl(jsonl(tmp_path, [{**GOLDEN, "rubric": rubric},
                                                   {**GOLDEN, "id": "h", "critical": True, "rubric": rubric}]), kind="golden")
    assert per_check.must_pass() == (0,) and whole.must_pass() == (0, 1)
