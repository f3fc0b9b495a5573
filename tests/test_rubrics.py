import json

import pytest

from harness.data.rubrics import build_check, rouge_l, score

SCHEMA = {"type": "object", "required": ["category"], "properties": {"category": {"enum": ["bug", "billing"]}},
          "additionalProperties": False}


def check(raw, output, reference=None, tmp_path=None):
    return build_check(raw, tmp_path)(output, reference)


@pytest.mark.parametrize(
    "raw, good, bad",
    [
        ({"type": "exact", "value": "yes"}, " yes\n", "yes!"),
        ({"type": "contains", "value": "Export"}, "click export now", "click print"),
        ({"type": "contains", "value": "Export", "case_sensitive": True}, "Export it", "export it"),
        ({"type": "not_contains", "value": "I can't"}, "Sure, here is how", "Sorry, i can't do that"),
        ({"type": "regex", "pattern": r"(?i)\b(can't|cannot)\b help"}, "I cannot help with that", "Happy to help"),
        ({"type": "json_schema", "schema": SCHEMA}, '{"category": "bug"}', '{"category": "other"}'),
        ({"type": "json_schema", "schema": SCHEMA}, '```json\n{"category": "bug"}\n```', "category: bug"),
        ({"type": "json_field", "field": "category", "equals": "bug"}, '{"category": "bug"}', '{"category": "billing"}'),
        ({"type": "json_field", "field": "category", "equals": "bug"}, '{"category": "bug", "x": 1}', "[1]"),
    ],
)
def test_checks_pass_and_fail(raw, good, bad, tmp_path):
    assert check(raw, good, tmp_path=tmp_path).passed
    result = check(raw, bad, tmp_path=tmp_path)
    assert not result.passed and result.detail


def test_json_schema_from_file_relative_to_data(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA))
    c = build_check({"type": "json_schema", "schema": "s.json"}, tmp_path)
    assert c('{"category": "billing"}', None).passed
    assert "schema: category" in c('{"category": "x"}', None).detail


def test_rouge_l_threshold_and_value():
    assert rouge_l("open the menu and choose export", "open the menu and choose export") == pytest.approx(1.0)
    # LCS "the menu export" = 3 of 5 and 3 of 4 tokens: F1 = 2*0.6*0.75/1.35
    assert rouge_l("open the menu then export", "the menu to export") == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    c = build_check({"type": "rouge_l", "min": 0.5}, None)
    ok = c("open the menu and choose export", "open the menu and choose export to pdf")
    assert ok.passed and ok.score > 0.5
    assert not c("something unrelated", "open the menu and choose export").passed


def test_score_combines_checks():
    checks = (build_check({"type": "contains", "value": "a"}, None), build_check({"type": "contains", "value": "b"}, None))
    s = score(checks, "a only", None)
    assert not s.passed and s.reason() == "contains[b]: missing 'b'"
    assert s.as_dict() == {"contains[a]": True, "contains[b]": False}
    assert score(checks, "a and b", None).passed


def test_critical_checks_fail_hard_only_when_they_fail():
    checks = (build_check({"type": "contains", "value": "{"}, None), build_check({"type": "contains", "value": "x"}, None))
    soft = score(checks, "{ nothing", None, critical=(0,))
    assert not soft.passed and not soft.critical_failed
    hard = score(checks, "x only", None, critical=(0,))
    assert not hard.passed and hard.critical_failed
