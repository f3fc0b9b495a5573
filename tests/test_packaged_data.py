"""The evaluation data shipped in the package (`tunegate:<folder>/<file>`), paths in a config kept in a
subfolder, and the confinement rule with packaged data."""
from pathlib import Path

import pytest

from harness import defaults
from harness.config import load_config
from harness.errors import TunegateError
from harness.run.inputs import RunInputs


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tunegate.toml").write_text(text)
    return folder / "tunegate.toml"


def test_the_default_suites_read_the_packaged_data_with_its_licences():
    folder = defaults.folder()
    for name in ("safety", "mmlu", "bbq", "diversity"):
        assert (folder / name / "NOTICE").is_file()
    assert {p.name for p in folder.glob("*/LICENSE*")} >= {"LICENSE", "LICENSE-harmbench", "LICENSE-xstest"}
    assert defaults.examples() == ["tunegate:bbq/Age.jsonl", "tunegate:diversity/prompts.jsonl",
                                   "tunegate:mmlu/dev.jsonl", "tunegate:safety/harmbench.jsonl"]


def test_a_config_in_a_subfolder_runs_on_the_packaged_defaults(tmp_path):
    """Issue 23, workaround 1: relative defaults used to resolve under the config's folder."""
    project = tmp_path / "repo" / "byo_task"
    (project / "data").mkdir(parents=True)
    (project / "data" / "golden.jsonl").write_text("")
    config = load_config(write(project, '[suites.golden]\npath = "data/golden.jsonl"\n'))
    assert config.path(config.suites.golden.path) == project / "data" / "golden.jsonl"
    inputs = RunInputs(project / "tunegate.toml")
    for name in ("safety", "mmlu", "diversity"):
        suite, settings = inputs.suite(name)
        for path in suite.data_paths(settings).values():
            assert defaults.is_packaged(path)
            assert config.path(path).is_file() and config.path(path).is_relative_to(defaults.folder())
        assert all(inputs.items(name).values()), name  # loads and validates the packaged files
    prompts = inputs.items("diversity")["prompt"]
    assert len(prompts) == 32 and not any("Nimbus" in p.messages[0]["content"] for p in prompts)


def test_a_user_may_name_packaged_data_and_may_not_climb_out_of_it(tmp_path):
    config = load_config(write(tmp_path, '[suites.safety]\npaths = ["tunegate:safety/xstest.jsonl"]\n'))
    assert config.path(config.suites.safety.paths[0]) == defaults.folder() / "safety" / "xstest.jsonl"
    for escape in ("tunegate:../config/schema.py", "tunegate:/etc/hostname"):
        with pytest.raises(TunegateError, match=rf"key 'suites\.diversity\.path' = '{escape}' leaves the data "
                                                r"shipped in the package; name one of its files, e\.g\. tunegate:"):
            load_config(write(tmp_path, f'[suites.diversity]\npath = "{escape}"\n'))
    with pytest.raises(TunegateError, match=r"key 'workspace\.reports' = 'tunegate:reports' names the package's own "
                                            "data, which tunegate only reads"):
        load_config(write(tmp_path, '[workspace]\nreports = "tunegate:reports"\n'))
    with pytest.raises(TunegateError, match="outside the project folder"):  # the rule still holds for the rest
        load_config(write(tmp_path / "sub", '[suites.diversity]\npath = "../prompts.jsonl"\n'))


def test_a_missing_default_says_it_is_the_default_and_how_to_fix_it(tmp_path):
    config = load_config(write(tmp_path, ""))  # data.train left at its default, which is not here
    with pytest.raises(TunegateError) as e:
        config.path(config.data.train)
    assert str(e.value) == (f"{tmp_path / config.data.train}: file not found; key 'data.train' was not set in the "
                            f"config and its default '{config.data.train.as_posix()}' does not exist here: set train "
                            "in [data] to your file")
    # Set explicitly, the same missing path is the reader's ordinary "file not found" (the user wrote it).
    config = load_config(write(tmp_path, f'[data]\ntrain = "{config.data.train.as_posix()}"\n'))
    assert config.path(config.data.train) == tmp_path / config.data.train
