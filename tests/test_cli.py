import subprocess
import sys


def run_cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True, text=True)


def test_registry_list_empty_then_with_champion(tmp_path):
    (tmp_path / "tunegate.toml").write_text("")
    out = run_cli(["registry", "list"], tmp_path)
    assert out.returncode == 0 and "no promoted adapters yet" in out.stdout
    from harness.config.schema import DEFAULT_TASK
    from harness.store.registry import Registry
    from tests.test_registry import promote

    # The config names no task: its task is the default one.
    promote(Registry(tmp_path / ".tunegate" / "registry", DEFAULT_TASK), tmp_path, "sft-abc",
            "20261122-000000-abcd")
    out = run_cli(["registry", "list"], tmp_path)
    assert out.returncode == 0
    assert "* sft-abc" in out.stdout and "0.800" in out.stdout and f"task {DEFAULT_TASK}" in out.stdout


def test_bad_config_is_one_line_exit_2(tmp_path):
    (tmp_path / "tunegate.toml").write_text("[trainig]\n")
    out = run_cli(["registry", "list"], tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "did you mean 'training'" in out.stderr


def test_history_and_rollback_on_a_fresh_workspace(tmp_path):
    (tmp_path / "tunegate.toml").write_text("")
    out = run_cli(["history"], tmp_path)
    assert out.returncode == 0 and "no runs recorded yet" in out.stdout
    out = run_cli(["rollback", "--reason", "bad adapter"], tmp_path)
    assert out.returncode == 2 and out.stderr == "tunegate: error: nothing to roll back to: no adapter has been promoted yet\n"
    out = run_cli(["report"], tmp_path)
    assert out.returncode == 2 and "no runs recorded yet" in out.stderr and out.stderr.count("\n") == 1


def test_config_is_accepted_before_or_after_the_subcommand(tmp_path):
    (tmp_path / "tunegate.toml").write_text("[trainig]\n")  # the default config is broken: must not be read
    (tmp_path / "other.toml").write_text("")
    for args in (["--config", "other.toml", "registry", "list"], ["registry", "list", "--config", "other.toml"]):
        out = run_cli(args, tmp_path)
        assert out.returncode == 0 and "no promoted adapters yet" in out.stdout, (args, out.stderr)
    out = run_cli(["registry", "list"], tmp_path)
    assert out.returncode == 2 and "did you mean 'training'" in out.stderr
