"""The five-line site test of docs/testing.md passes in a fresh project, as a site would run it.

The files are the captioned code blocks of the docs' section, written into an empty
directory outside the repository; pytest runs there in a subprocess of this
environment's Python with no ``PYTHONPATH``, so neither the repository's tests nor
its configuration are seen. This environment may hold more than a site installs
(the docs, lint and typing extras), so the run also lists the distributions whose
modules it loaded (pytest plugins included): each must be ``lsst-spawner[test]`` or
one of its requirements, recursively. Under ``tox`` the environment is that alone.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "testing.md"
SECTION = "## A site test in five lines"
BLOCK = re.compile(r"```\{code-block\} \w+\n:caption: (\S+)\n\n(.*?)```", re.S)

pytestmark = pytest.mark.slow


def example_files() -> dict[str, str]:
    """``{path: text}`` of every captioned block in the docs' site-test section."""
    text = DOC.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return dict(BLOCK.findall(text[start : end if end > 0 else None]))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "PYTHON"))}
    env.pop("JUPYTERHUB_CRYPT_KEY", None)
    return env


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


#: ``python -m pytest`` in the project, then the distributions of the modules it loaded
#: (not those the interpreter loaded at start-up, such as setuptools' ``.pth`` hook).
PYTEST_AND_LIST = """
import sys
at_start = set(sys.modules)
import importlib.metadata, json
import pytest
code = pytest.main(["-q", "-p", "no:cacheprovider"])
owners = importlib.metadata.packages_distributions()
tops = {name.partition(".")[0] for name in set(sys.modules) - at_start}
loaded = {top: sorted(set(owners[top])) for top in tops if top in owners}
with open(sys.argv[1], "w") as out:
    json.dump(loaded, out)
sys.exit(code)
"""


def installed_closure(name: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """``name[extras]`` and everything it requires in this environment, recursively."""
    closure: set[str] = set()
    todo = [(name, extras)]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        dist, wanted = todo.pop()
        key = (canonicalize_name(dist), wanted)
        if key in seen:
            continue
        seen.add(key)
        closure.add(key[0])
        try:
            requires = importlib.metadata.requires(dist) or []
        except importlib.metadata.PackageNotFoundError:
            continue  # not installed here: nothing of it can be loaded
        for text in requires:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is not None and not any(
                marker.evaluate({"extra": extra}) for extra in (wanted or {""})
            ):
                continue
            todo.append((requirement.name, frozenset(requirement.extras)))
    return closure


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "site-repo"
    assert REPO not in root.parents, "the fresh project must be outside the repository"
    for name, text in example_files().items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_docs_show_the_three_files_and_a_five_line_test() -> None:
    files = example_files()
    assert sorted(files) == ["jupyterhub_config.d/50-site.py", "pytest.ini", "tests/test_site.py"]
    lines = [line for line in files["tests/test_site.py"].splitlines() if line.strip()]
    assert len(lines) == 5, lines
    assert "asyncio_mode = auto" in files["pytest.ini"]


def test_the_fresh_project_does_not_see_the_repository(project: Path) -> None:
    """Only the installed package: no source directory of the repository is importable."""
    code = "import json, os, sys; print(json.dumps([os.path.abspath(p) for p in sys.path]))"
    result = _run(project, "-c", code)
    assert result.returncode == 0, result.stderr
    venv = Path(sys.prefix).resolve()
    paths = [Path(p).resolve() for p in json.loads(result.stdout) if os.path.isdir(p)]
    inside = [p for p in paths if (p == REPO or REPO in p.parents) and venv not in p.parents]
    assert inside == []
    assert project.resolve() in paths  # the sanity check: the project itself is


def test_the_docs_site_test_passes_in_a_fresh_project(project: Path, tmp_path: Path) -> None:
    listing = tmp_path / "loaded.json"
    result = _run(project, "-c", PYTEST_AND_LIST, str(listing))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert re.search(r"\b1 passed\b", result.stdout), output[-6000:]
    # JupyterHub 5.0's shutdown stopped the test's loop (lsst_hub keeps it running).
    assert "Event loop stopped" not in output, output[-6000:]
    allowed = installed_closure("lsst-spawner", frozenset({"test"}))
    loaded = json.loads(listing.read_text())
    beyond = {
        top: dists
        for top, dists in loaded.items()
        if not {canonicalize_name(d) for d in dists} & allowed
    }
    assert beyond == {}, "the example loaded modules from outside lsst-spawner[test]"
    assert {"lsst_spawner", "pytest_jupyterhub", "jupyterhub"} <= set(loaded)  # sanity


def test_without_the_documented_settings_it_fails_as_a_new_user_saw(project: Path) -> None:
    """The control: the documented pytest.ini is what makes the async test run."""
    (project / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    result = _run(project, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    # pytest-asyncio in strict mode: the test (or, first, its async fixture) is refused.
    assert re.search(
        r"async def functions are not natively supported|requested an async fixture", output
    ), output[-4000:]
