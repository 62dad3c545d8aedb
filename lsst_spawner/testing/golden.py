"""Golden files: compare whole outputs with files under ``golden/``, or rewrite them.

``check(name, data)`` compares ``data`` with ``<directory>/<name>.json`` (any JSON
value), or, when ``data`` is a string and ``name`` has a suffix (``form.html``),
with the text file ``<directory>/<name>``. ``pytest --update-golden`` rewrites the
files instead of comparing: review the diff before committing it. Outputs that
carry the time or a random name are made comparable first with
:func:`normalize` (timestamps become ``<timestamp>``, given strings a placeholder).

The ``golden`` fixture (from the kit's pytest plugin, which also adds the
``--update-golden`` option) checks against the ``golden`` directory next to the
test file.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

__all__ = ["TIMESTAMP", "golden", "golden_checker", "normalize", "pytest_addoption"]

#: An ISO 8601 date-time, as ``datetime.isoformat()`` and the Kubernetes API write them.
TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?(?![\d:])"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite the golden files (golden/*) from the current output instead of comparing.",
    )


def normalize(
    data: Any,
    replacements: Mapping[str, str] | None = None,
    patterns: Mapping[str, str] | None = None,
) -> Any:
    """``data`` with every timestamp in its strings (keys too) made ``<timestamp>``, each key
    of ``replacements`` (a random namespace, a port) replaced by its value, and each regular
    expression of ``patterns`` (a duration) substituted by its replacement."""
    pairs = sorted((replacements or {}).items(), key=lambda item: -len(item[0]))
    compiled = [(re.compile(pattern), new) for pattern, new in (patterns or {}).items()]

    def text(value: str) -> str:
        for old, new in pairs:
            value = value.replace(old, new)
        for pattern, replacement in compiled:
            value = pattern.sub(replacement, value)
        return TIMESTAMP.sub("<timestamp>", value)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return text(value)
        if isinstance(value, Mapping):
            return {text(str(k)) if isinstance(k, str) else k: walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        return value

    return walk(data)


def golden_checker(
    request: pytest.FixtureRequest, directory: Path, suite: str, *, update: bool | None = None
) -> Callable[[str, Any], None]:
    """A ``check(name, data)`` for the golden files of ``directory``; ``suite`` is the test
    path named in the message (``tests/lab``); ``update`` (default: ``--update-golden``)
    rewrites the files instead of comparing."""
    if update is None:
        update = bool(request.config.getoption("--update-golden", default=False))

    def check(name: str, data: Any) -> None:
        if isinstance(data, str):
            if not Path(name).suffix:
                raise ValueError(
                    f"golden text {name!r} needs a file suffix (such as .html or .txt)"
                )
            path, text = directory / name, data if data.endswith("\n") else data + "\n"
        else:
            path = directory / f"{name}.json"
            text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"{path} is missing; run pytest {suite} --update-golden"
        expected = path.read_text(encoding="utf-8")
        if isinstance(data, str):
            same = expected == text
        else:
            same = json.loads(expected) == json.loads(text)
        if not same:
            diff = difflib.unified_diff(
                expected.splitlines(), text.splitlines(), f"{path.name} (golden)", "now"
            )
            shown = "\n".join(line.rstrip("\n") for line in list(diff)[:60])
            raise AssertionError(
                f"{path.name} differs; review and run pytest {suite} --update-golden\n{shown}"
            )

    return check


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, Any], None]:
    """``golden(name, data)``: compare with ``golden/<name>[.json]`` next to the test file."""
    test_dir = Path(str(request.path)).parent
    try:
        suite = str(test_dir.relative_to(request.config.rootpath))
    except ValueError:
        suite = str(test_dir)
    return golden_checker(request, test_dir / "golden", suite)
