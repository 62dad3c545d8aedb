"""Golden files: compare data with ``<directory>/<name>.json``, or rewrite them.

``pytest --update-golden`` (the option the project's root conftest registers) rewrites
the files instead of comparing; review the diff before committing it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

__all__ = ["golden_checker"]


def golden_checker(
    request: pytest.FixtureRequest, directory: Path, suite: str
) -> Callable[[str, Any], None]:
    """A ``check(name, data)`` for the golden files of ``directory``; ``suite`` is the test
    path named in the message (``tests/lab``)."""
    update = request.config.getoption("--update-golden", default=False)

    def check(name: str, data: Any) -> None:
        path = directory / f"{name}.json"
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return
        assert path.exists(), f"{path} is missing; run pytest {suite} --update-golden"
        assert json.loads(path.read_text()) == json.loads(text), (
            f"{path.name} differs; review and run pytest {suite} --update-golden"
        )

    return check
