"""The pre-commit hooks run the static checks CI runs (pre-commit itself is not run in CI)."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_pre_commit_runs_the_checks_of_ci() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "ruff-format", "mypy", "end-of-file-fixer", "trailing-whitespace"} <= set(hooks)
    ci = (REPO / ".ci" / "run").read_text()
    for hook, command in (("ruff", "ruff check"), ("ruff-format", "ruff format"), ("mypy", "mypy")):
        assert hooks[hook]["entry"].startswith(command)
        assert f".venv/bin/{command}" in ci
    # mypy checks the package as configured (setup.cfg), not only the files changed.
    assert hooks["mypy"]["pass_filenames"] is False
