"""`tunegate init`: a new project's files, from the templates shipped in the package; the repository's
own suites/ is the same copy."""
import tomllib

from harness.cli import main
from harness.cli.init import suite_files, templates
from harness.config import load_config


def test_the_repositorys_suites_are_the_packaged_templates(repo_root):
    """suites/ is what `tunegate init` writes. After changing one side: `tunegate init --suites --force .`
    regenerates suites/ from harness/cli/templates/suites (edit the template, not the copy)."""
    shipped = {f"suites/{p.name}": p.read_text() for p in (templates() / "suites").glob("*.py")}
    ours = {f"suites/{p.name}": p.read_text() for p in (repo_root / "suites").glob("*.py")}
    assert ours == shipped, "suites/ differs from harness/cli/templates/suites: edit the template, then run " \
                            "`tunegate init --suites --force .`"


def test_init_writes_a_project_that_loads_and_whose_data_pass_the_check(tmp_path, monkeypatch, capsys):
    project = tmp_path / "my-extraction_task"
    assert main(["init", str(project)]) == 0
    written = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    assert written == sorted(["tunegate.toml", "data/train.jsonl", "data/val.jsonl", "data/golden.jsonl",
                              *suite_files()])
    assert "suites/conftest.py" in written and "suites/test_golden.py" in written
    text = (project / "tunegate.toml").read_text()
    assert tomllib.loads(text)["task"]["name"] == "my-extraction_task"
    for commented in ("# [suites.behaviour]", "# counterfactual_path =", "# slice_key ="):
        assert commented in text  # the task-specific suites are shown, not switched on
    config = load_config(project / "tunegate.toml")
    assert config.task_name == "my-extraction_task" and config.path(config.data.train).is_file()
    monkeypatch.chdir(project)
    capsys.readouterr()
    assert main(["data", "check"]) == 0, capsys.readouterr().out
    assert "0 errors, 0 warnings" in capsys.readouterr().out


def test_init_never_overwrites_a_file(tmp_path, capsys):
    (tmp_path / "README.md").write_text("my repository\n")  # an existing repository is fine
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "golden.jsonl").write_text("mine\n")
    assert main(["init", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"tunegate: error: {tmp_path / 'data' / 'golden.jsonl'}: already exists; tunegate init never "
                   "overwrites a file: move it away, or pass --force to replace the files init writes")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["README.md", "data", "golden.jsonl"]  # nothing written
    assert main(["init", "--suites", str(tmp_path)]) == 0  # only suites/: nothing of the user's is in the way
    assert (tmp_path / "data" / "golden.jsonl").read_text() == "mine\n" and (tmp_path / "suites").is_dir()
    assert main(["init", "--force", str(tmp_path)]) == 0
    assert (tmp_path / "data" / "golden.jsonl").read_text() != "mine\n"


def test_init_refuses_a_file_as_its_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["init", str(tmp_path / "file")]) == 2
    assert "not a folder" in capsys.readouterr().err
