"""The kit's one server base: loopback only, a free port, start/stop, ``with``, URL; old paths."""

from __future__ import annotations

import importlib
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import lsst_spawner.testing as kit
from lsst_spawner.testing.hub.process import HubProcess
from lsst_spawner.testing.kube import KubeEmulator
from lsst_spawner.testing.loopback import LoopbackServer, LoopThread, check_loopback, listen
from lsst_spawner.testing.oauth.cilogon import FakeCILogon
from lsst_spawner.testing.oauth.github import FakeGitHub
from lsst_spawner.testing.postgres import PostgresServer
from lsst_spawner.testing.recording_server import LocalHTTPServer, Reply
from lsst_spawner.testing.registry.local import LocalRegistry

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "cls",
    [
        FakeGitHub,
        FakeCILogon,
        LocalHTTPServer,
        LocalRegistry,
        HubProcess,
        KubeEmulator,
        PostgresServer,
    ],
)
def test_every_server_of_the_kit_is_a_loopback_server(cls: type) -> None:
    assert issubclass(cls, LoopbackServer)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "10.1.2.3", "192.168.0.1", "localhost", "::1", "", "127.0.0.1 "]
)
def test_anything_but_a_loopback_address_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match=r"loopback address \(127\.0\.0\.0/8\), not"):
        check_loopback(host)
    with pytest.raises(ValueError, match="loopback"):
        FakeGitHub(host=host)
    with pytest.raises(ValueError, match="loopback"):
        KubeEmulator(host=host)
    with pytest.raises(ValueError, match="loopback"):
        LocalHTTPServer(lambda r: Reply(), host=host)


def test_a_server_has_no_url_until_it_has_a_port() -> None:
    github = FakeGitHub()
    with pytest.raises(RuntimeError, match="FakeGitHub is not started"):
        _ = github.url
    assert not github.running
    github.stop()  # nothing to stop: no error


def test_start_binds_a_free_port_on_the_host_and_stop_frees_it() -> None:
    with FakeGitHub(host="127.0.0.3") as one, FakeGitHub(host="127.0.0.3") as two:
        assert one.running
        assert one.host == "127.0.0.3"
        assert one.port != two.port
        assert one.url == f"http://127.0.0.3:{one.port}"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{one.url}/api/v3/user", timeout=10)  # noqa: S310
        assert refused.value.code == 401  # it is the fake GitHub that answers
    port = one.port
    assert not one.running
    # the port is free again: something else can bind it
    listen("127.0.0.3", port).close()


def test_start_twice_is_an_error_and_stop_twice_is_not() -> None:
    github = FakeGitHub().start()
    try:
        with pytest.raises(RuntimeError, match="FakeGitHub is already running at http://127"):
            github.start()
    finally:
        github.stop()
    github.stop()
    github.start().stop()  # a stopped server starts again


def test_a_taken_port_is_an_error_at_start() -> None:
    taken = listen()
    try:
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="in use"):
            LocalHTTPServer(lambda r: Reply(), port=port)
        with pytest.raises(OSError, match="in use"):
            FakeGitHub(port=port).start()
    finally:
        taken.close()


def test_recording_server_starts_when_made_and_with_stops_it() -> None:
    server = LocalHTTPServer(lambda r: Reply(204))
    with server:
        assert server.running
        with urllib.request.urlopen(f"{server.url}/x") as reply:  # noqa: S310
            assert reply.status == 204
    assert not server.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=2).close()


def test_the_emulator_in_a_with_block_runs_in_its_own_thread() -> None:
    with KubeEmulator(namespaces=("default",), tls=True) as emulator:
        assert emulator.running
        assert emulator.url.startswith("https://127.0.0.1:")
        assert emulator.call(lambda: ("", "default") in emulator.store.objects["namespaces"])
    assert not emulator.running


def test_a_loop_thread_reports_its_setup_error() -> None:
    async def setup() -> None:
        raise OSError("no socket for you")

    async def teardown() -> None:
        raise AssertionError("teardown without setup")

    thread = LoopThread("failing")
    with pytest.raises(OSError, match="no socket for you"):
        thread.start(setup, teardown)
    assert thread.loop is None
    thread.stop()


@pytest.mark.parametrize(("old", "new"), sorted(kit.MOVED_MODULES.items()))
def test_module_paths_from_before_the_split_import_the_moved_modules(old: str, new: str) -> None:
    moved = importlib.import_module(f"lsst_spawner.testing.{new}")
    assert importlib.import_module(f"lsst_spawner.testing.{old}") is moved
    assert getattr(kit, old) is moved


def test_old_paths_work_in_a_fresh_interpreter() -> None:
    """``from lsst_spawner.testing.fake_github import FakeGitHub``, as a site's test has it."""
    code = (
        "from lsst_spawner.testing.fake_github import FakeGitHub\n"
        "from lsst_spawner.testing.identity_auth import identity_for\n"
        "import lsst_spawner.testing.oauth.github as new\n"
        "assert FakeGitHub is new.FakeGitHub, FakeGitHub\n"
        "print(identity_for('vera').username)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "vera"


@pytest.mark.parametrize("name", sorted(kit.PUBLIC_NAMES))
def test_public_names_import_from_the_kit(name: str) -> None:
    module = importlib.import_module(f"lsst_spawner.testing.{kit.PUBLIC_NAMES[name]}")
    assert getattr(kit, name) is getattr(module, name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'FakeGitLab'"):
        _ = kit.FakeGitLab  # type: ignore[attr-defined]
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("lsst_spawner.testing.fake_gitlab")


def test_the_repository_itself_uses_the_new_paths() -> None:
    """Old paths are for sites; code merged from before the split is caught here."""
    names = "|".join(re.escape(old) for old in kit.MOVED_MODULES)
    dotted = re.compile(rf"lsst_spawner[./]testing[./]({names})\b")
    relative = re.compile(rf"^\s*from \.+({names}) import", re.MULTILINE)
    skip = {REPO / "lsst_spawner/testing/__init__.py", Path(__file__).resolve()}
    found = []
    for top in ("lsst_spawner", "tests", "benchmarks", "docs", "scripts", "jupyterhub_config.d"):
        for path in sorted((REPO / top).rglob("*")):
            if path.suffix not in {".py", ".md", ".sh", ".j2", ".yaml", ".cfg"} or path in skip:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            testing_dir = "lsst_spawner/testing" in str(path)
            for match in dotted.finditer(text):
                found.append(f"{path.relative_to(REPO)}: {match.group(0)}")
            if testing_dir:
                for match in relative.finditer(text):
                    found.append(f"{path.relative_to(REPO)}: {match.group(0).strip()}")
    assert found == [], "old test-kit module paths (see MOVED_MODULES):\n" + "\n".join(found)


def test_all_lists_every_public_name() -> None:
    assert sorted(kit.__all__) == sorted(kit.PUBLIC_NAMES)
