"""A suite written in the user's own repository, against the public suite API only, registered by
`suite = "module:Class"` in the config (and by entry point), gates a real run like a built-in one."""
from __future__ import annotations

import textwrap

import pytest

from harness.errors import TunegateError
from tests.test_e2e_suites import latest_results, make_project, run

pytest_plugins = ["pytester"]

# A project's own suite: answers must be short. Written as a user would, in one small file.
BREVITY = textwrap.dedent('''
    from pathlib import Path

    from pydantic import Field

    from harness.data.examples import load_jsonl
    from harness.gating.gates import absolute_gate
    from harness.store.results import example_record
    from harness.roles import BASE, CANDIDATE
    from harness.suites.api import PASSED, Evaluation, ItemCheck, Suite, SuiteSettings


    class BrevitySettings(SuiteSettings):
        path: Path = Field(Path("data/golden.jsonl"), description="Prompts (golden format).")
        max_words: int = Field(3, ge=1, description="Longest acceptable answer, in words.")
        max_rate: float = Field(0.2, ge=0, le=1, description="Bar: share of answers that are too long.")


    class Brevity(Suite[BrevitySettings, dict]):
        name = "brevity"
        settings = BrevitySettings
        params = ("prompt",)
        gates = ("too_long",)

        def data_paths(self, settings):
            return {"brevity": settings.path}

        def load_items(self, settings, run):
            return {"prompt": load_jsonl(run.path(settings.path), kind="golden")}

        def evaluate(self, settings, items, run):
            prompts = [ex.prompt(run.config.data.system_prompt) for ex in items["prompt"]]
            long = {}
            records = []
            for role, outputs in run.generate(prompts, 8).items():
                long[role] = {ex.id: len(o.split()) > settings.max_words for ex, o in zip(items["prompt"], outputs)}
                records += [example_record(suite=self.name, example_id=ex.id, role=role, prompt=p, output=o,
                                           passed=not long[role][ex.id], scores={"words": len(o.split())}, slice={})
                            for ex, p, o in zip(items["prompt"], prompts, outputs)]
            metrics = {role: {"too_long_rate": sum(v.values()) / len(v)} for role, v in long.items()}
            return Evaluation(long, records, metrics)

        def check(self, param, item, settings, evaluation):
            return ItemCheck("xfail", "too long") if evaluation.outcome[CANDIDATE][item.id] else PASSED

        def gate(self, name, settings, evaluation):
            flags = evaluation.outcome
            return absolute_gate(self.gate_name(name), self.name, list(flags[CANDIDATE].values()), settings.max_rate,
                                 what="share of answers over max_words", higher_is_better=False,
                                 base_value=sum(flags[BASE].values()) / len(flags[BASE]))
''')

SUITE_TESTS = textwrap.dedent('''
    import pytest

    from harness.plugin import check_gate, check_item

    pytestmark = pytest.mark.tunegate_suite("brevity")


    def test_prompt(prompt, evaluation, request):
        check_item(request, "prompt", prompt)


    def test_gate(gate, evaluation, request):
        check_gate(request, gate)
''')


def brevity_project(pytester, tiny_model_dir, repo_root, table: str):
    root = make_project(pytester, tiny_model_dir, repo_root)
    (root / "my_suites.py").write_text(BREVITY)
    (root / "suites" / "test_brevity.py").write_text(SUITE_TESTS)
    with (root / "tunegate.toml").open("a") as f:
        f.write(table)
    return root


def test_a_project_suite_blocks_a_run_through_its_gate(pytester, tiny_model_dir, repo_root):
    # A random tiny model writes 8 tokens of noise: far more than 1 word, so the gate must block.
    root = brevity_project(pytester, tiny_model_dir, repo_root,
                           '\n[suites.brevity]\nsuite = "my_suites:Brevity"\nmax_words = 1\nmax_rate = 0.0\n')
    result, out = run(pytester)
    assert result.ret == 1, out
    assert result.outlines[-1] == "tunegate: BLOCKED: brevity.too_long", out
    res = latest_results(root)
    gate = next(g for g in res["gates"] if g["name"] == "brevity.too_long")
    assert gate["passed"] is False and gate["value"] == 1.0
    assert set(res["suites"]) == {"golden", "brevity"} and "brevity" in res["data"]
    assert {r["suite"] for r in res["examples"]} == {"golden", "brevity"}
    # The suite's own settings went into the config hash, so changing them is a different run config.
    assert res["config_hash"]

    # The same suite with a generous bar lets the run promote: the gate decides, not the suite's presence.
    (root / "tunegate.toml").write_text((root / "tunegate.toml").read_text().replace("max_rate = 0.0", "max_rate = 1.0"))
    result, out = run(pytester)
    assert result.ret == 0, out
    result.stdout.re_match_lines([r"tunegate: PROMOTED sft-[0-9a-f]{12}$"])


def test_a_project_suite_without_its_tests_cannot_promote(pytester, tiny_model_dir, repo_root):
    """Its gates are expected: a run that never collects them is not complete (checked before training)."""
    from harness.run.run import Run

    root = brevity_project(pytester, tiny_model_dir, repo_root, '\n[suites.brevity]\nsuite = "my_suites:Brevity"\n')
    r = Run(root / "tunegate.toml")
    r.validate_inputs()
    assert "brevity.too_long" in r.inputs.expected_gates()
    assert [p.id for p in r.inputs.items("brevity")["prompt"]][:2] == ["g-0", "g-1"]
    assert r.decide(0, complete=True).status == "NOT PROMOTED"


@pytest.mark.parametrize("table, message", [
    ('[suites.brevity]\nsuite = "my_suites:Nope"\n', "key 'suites.brevity.suite': module 'my_suites' has no 'Nope'"),
    ('[suites.brevity]\nsuite = "no_such_module:Brevity"\n', "key 'suites.brevity.suite': cannot import 'no_such_module'"),
    ('[suites.brevity]\nsuite = "my_suites"\n', "key 'suites.brevity.suite': expected \"module:Class\""),
    ('[suites.short]\nsuite = "my_suites:Brevity"\n', "is the suite 'brevity'; name its table [suites.brevity]"),
    ('[suites.brevity]\nsuite = "my_suites:Brevity"\nmax_wrods = 2\n',
     "unknown key 'suites.brevity.max_wrods'; did you mean 'max_words'?"),
    ('[suites.brevity]\nsuite = "my_suites:Brevity"\nmax_words = 0\n', "key 'suites.brevity.max_words'"),
    ('[suites.goldne]\nenabled = false\n', "unknown key 'suites.goldne'; did you mean 'golden'?"),
])
def test_a_bad_suite_table_is_one_line_naming_the_key(pytester, tiny_model_dir, repo_root, table, message):
    from harness.config import load_config

    root = brevity_project(pytester, tiny_model_dir, repo_root, "\n" + table)
    with pytest.raises(TunegateError) as e:
        load_config(root / "tunegate.toml")
    assert message in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith(str(root / "tunegate.toml"))


def test_an_installed_package_registers_its_suite_by_entry_point(pytester, tiny_model_dir, repo_root, monkeypatch):
    """A package's suite needs no `suite =` key: its entry point in group tunegate.suites names it."""
    from harness.config import load_config

    root = brevity_project(pytester, tiny_model_dir, repo_root, "\n[suites.brevity]\nmax_words = 5\n")
    site = root / "site"
    (site / "brevity_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "brevity_plugin-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: brevity-plugin\n"
                                                                     "Version: 1.0\n")
    (site / "brevity_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[tunegate.suites]\nbrevity = my_suites:Brevity\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(root))
    config = load_config(root / "tunegate.toml")
    suite, settings = config.suites.all()["brevity"]
    assert suite.name == "brevity" and settings.max_words == 5 and settings.enabled
