"""The private names of KubeSpawner (and JupyterHub, aiohttp) that lsst_spawner relies on.

lsst_spawner overrides or calls these; none is public API, so a KubeSpawner
release may rename or change any of them without notice. The pin
(``jupyterhub-kubespawner<8``) keeps the tested versions; this test says which
name broke, and how, when another version is installed. Every private name the
product's spawner code uses on a spawner must be listed here (the last test
reads the code to check that).
"""

from __future__ import annotations

import inspect
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

import lsst_spawner

#: KubeSpawner versions this contract was checked against.
KUBESPAWNER_VERSIONS_TESTED = ("7.1.0",)

#: name -> (parameters as (name, kind, default), coroutine?) of KubeSpawner's methods used.
KUBESPAWNER_METHODS: dict[str, tuple[tuple[tuple[str, str, Any], ...], bool]] = {
    "_start": ((("self", "POSITIONAL_OR_KEYWORD", None),), True),
    "_make_create_pod_request": (
        (
            ("self", "POSITIONAL_OR_KEYWORD", None),
            ("pod", "POSITIONAL_OR_KEYWORD", None),
            ("request_timeout", "POSITIONAL_OR_KEYWORD", None),
        ),
        True,
    ),
    "_make_delete_pod_request": (
        (
            ("self", "POSITIONAL_OR_KEYWORD", None),
            ("pod_name", "POSITIONAL_OR_KEYWORD", None),
            ("delete_options", "POSITIONAL_OR_KEYWORD", None),
            ("grace_seconds", "POSITIONAL_OR_KEYWORD", None),
            ("request_timeout", "POSITIONAL_OR_KEYWORD", None),
        ),
        True,
    ),
    "_start_reflector": (
        (
            ("self", "POSITIONAL_OR_KEYWORD", None),
            ("kind", "POSITIONAL_OR_KEYWORD", None),
            ("reflector_class", "POSITIONAL_OR_KEYWORD", None),
            ("replace", "POSITIONAL_OR_KEYWORD", False),
            ("kwargs", "VAR_KEYWORD", None),
        ),
        True,
    ),
    "_get_reflector_key": (
        (("self", "POSITIONAL_OR_KEYWORD", None), ("kind", "POSITIONAL_OR_KEYWORD", None)),
        False,
    ),
    "_get_pod_url": (
        (("self", "POSITIONAL_OR_KEYWORD", None), ("pod", "POSITIONAL_OR_KEYWORD", None)),
        False,
    ),
    "_start_watching_pods": (
        (("self", "POSITIONAL_OR_KEYWORD", None), ("replace", "POSITIONAL_OR_KEYWORD", False)),
        True,
    ),
    "_start_watching_events": (
        (("self", "POSITIONAL_OR_KEYWORD", None), ("replace", "POSITIONAL_OR_KEYWORD", False)),
        True,
    ),
    # The user namespace's labels and annotations, expanded as KubeSpawner does.
    "_expand_all": (
        (("self", "POSITIONAL_OR_KEYWORD", None), ("src", "POSITIONAL_OR_KEYWORD", None)),
        False,
    ),
}
#: Instance attributes of KubeSpawner read by lsst_spawner (set in its constructor).
KUBESPAWNER_ATTRIBUTES = ("_start_future",)
#: Private names of JupyterHub's Spawner used on a spawner.
JUPYTERHUB_NAMES = ("_log_name",)
#: Attributes of KubeSpawner's ResourceReflector read to find a dead reflector.
REFLECTOR_ATTRIBUTES = ("first_load_future", "watch_task")
#: aiohttp's session attribute turned off by skip_unused_environment_lookups.
AIOHTTP_SESSION_ATTRIBUTES = ("_trust_env",)


def _parameters(function: Any) -> tuple[tuple[str, str, Any], ...]:
    return tuple(
        (p.name, p.kind.name, None if p.default is inspect.Parameter.empty else p.default)
        for p in inspect.signature(function).parameters.values()
    )


def _installed() -> str:
    return version("jupyterhub-kubespawner")


@pytest.mark.parametrize("name", sorted(KUBESPAWNER_METHODS))
def test_kubespawner_private_methods_keep_their_signature(name: str) -> None:
    from kubespawner import KubeSpawner

    expected, coroutine = KUBESPAWNER_METHODS[name]
    function = getattr(KubeSpawner, name, None)
    assert function is not None, (
        f"KubeSpawner {_installed()} has no {name}, which lsst_spawner overrides or calls "
        f"(tested with {', '.join(KUBESPAWNER_VERSIONS_TESTED)})"
    )
    assert _parameters(function) == expected, (
        f"KubeSpawner {_installed()} changed the signature of {name} to "
        f"{inspect.signature(function)} (tested with {', '.join(KUBESPAWNER_VERSIONS_TESTED)})"
    )
    assert inspect.iscoroutinefunction(function) is coroutine, (
        f"KubeSpawner {_installed()}: {name} is {'no longer' if coroutine else 'now'} a coroutine"
    )


async def test_kubespawner_attributes_and_reflectors(tmp_path: Path) -> None:
    from kubespawner import KubeSpawner
    from kubespawner.reflector import ResourceReflector

    from lsst_spawner.commands import _offline_kubernetes_client

    tested = ", ".join(KUBESPAWNER_VERSIONS_TESTED)
    assert isinstance(KubeSpawner.__dict__.get("reflectors"), dict), (
        f"KubeSpawner {_installed()} no longer keeps its class-wide reflectors dict "
        f"(tested with {tested})"
    )
    with _offline_kubernetes_client(str(tmp_path)):
        spawner = KubeSpawner(_mock=True)
    for name in KUBESPAWNER_ATTRIBUTES:
        assert name in vars(spawner), f"KubeSpawner {_installed()} no longer sets self.{name}"
    source = inspect.getsource(ResourceReflector.__init__)
    for name in REFLECTOR_ATTRIBUTES:
        assert f"self.{name} =" in source, (
            f"KubeSpawner {_installed()}'s ResourceReflector no longer sets self.{name} "
            f"(tested with {tested})"
        )


def test_jupyterhub_and_aiohttp_private_names() -> None:
    import aiohttp
    from jupyterhub.spawner import Spawner

    for name in JUPYTERHUB_NAMES:
        assert isinstance(inspect.getattr_static(Spawner, name, None), property), (
            f"JupyterHub's Spawner has no {name} property"
        )
    source = inspect.getsource(aiohttp.ClientSession.__init__)
    for name in AIOHTTP_SESSION_ATTRIBUTES:
        assert f"self.{name} =" in source, f"aiohttp's ClientSession no longer sets self.{name}"


#: The product modules whose code works on a spawner (``self`` or ``spawner``).
SPAWNER_CODE = ("spawner.py", "attempt.py", "kube/resilience.py", "kube/reflector.py")
_PRIVATE_USE = re.compile(r"\b(?:self|spawner|super\(\)|KubeSpawner)\.(_[a-z][a-z0-9_]*)\b")


#: A method defined here, or an attribute assigned (``self.x = ...``, ``a.x, b.y = ...``).
_DEFINED = re.compile(r"^\s*(?:async\s+)?def\s+(\w+)|\b\w+\.(\w+)\s*(?:,[^=\n]*)?=(?!=)", re.M)


def _defined_here(text: str) -> set[str]:
    # Text, not ast.parse: CPython 3.11's parser can fail in a long test process
    # ("AST constructor recursion depth mismatch") after another test's deep recursion.
    return {name for match in _DEFINED.finditer(text) for name in match.groups() if name}


def test_every_private_name_used_on_a_spawner_is_in_this_contract() -> None:
    """Private names called on a spawner, or overridden, that lsst_spawner does not define
    alone: each is KubeSpawner's (or JupyterHub's) and must be in the contract above."""
    from kubespawner import KubeSpawner

    root = Path(lsst_spawner.__file__).parent
    listed = {*KUBESPAWNER_METHODS, *KUBESPAWNER_ATTRIBUTES, *JUPYTERHUB_NAMES}
    defined: set[str] = set()
    used: set[str] = set()
    for relative in SPAWNER_CODE:
        text = (root / relative).read_text()
        here = _defined_here(text)
        defined |= here
        used |= set(_PRIVATE_USE.findall(text)) | {
            n for n in here if n.startswith("_") and not n.startswith("__")
        }
    theirs = {name for name in used if hasattr(KubeSpawner, name) or name not in defined}
    unlisted, unused = sorted(theirs - listed), sorted(listed - theirs)
    assert unlisted == [], f"private KubeSpawner names used but not in the contract: {unlisted}"
    assert unused == [], f"names in the contract that lsst_spawner no longer uses: {unused}"


def test_a_changed_or_missing_name_fails_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubespawner import KubeSpawner

    monkeypatch.setattr(KubeSpawner, "_get_pod_url", lambda self, pod, scheme: "")
    with pytest.raises(AssertionError, match=r"changed the signature of _get_pod_url to"):
        test_kubespawner_private_methods_keep_their_signature("_get_pod_url")
    monkeypatch.delattr(KubeSpawner, "_make_delete_pod_request")
    with pytest.raises(AssertionError, match=r"has no _make_delete_pod_request, which"):
        test_kubespawner_private_methods_keep_their_signature("_make_delete_pod_request")
