"""Test kit for lsst_spawner and for sites testing their own configuration.

The kit is arranged by what it stands in for: :mod:`~lsst_spawner.testing.kube`
(the Kubernetes API emulator, RBAC, kubelets), :mod:`~lsst_spawner.testing.oauth`
(fake GitHub and CILogon, a static-identity authenticator),
:mod:`~lsst_spawner.testing.registry` (a real local registry, its token server)
and :mod:`~lsst_spawner.testing.hub` (a real hub process, the in-process hub, a
recording spawner); every server in them is a
:class:`~lsst_spawner.testing.loopback.LoopbackServer`. The public names are
importable from here too (``from lsst_spawner.testing import FakeGitHub``), and
the module paths from before that split (``lsst_spawner.testing.fake_github``)
still import the moved modules.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .golden import golden_checker
    from .hub.fixtures import InProcessHub
    from .hub.process import HubError, HubProcess, spawn_body
    from .hub.recording_spawner import RecordingSpawner
    from .hub.site import load_site_config, make_site_spawner
    from .kube import KubeEmulator
    from .kube.fixtures import KubeHandle
    from .loopback import LoopbackServer, LoopThread, ThreadedServer
    from .oauth.cilogon import CILogonUser, FakeCILogon
    from .oauth.github import FakeGitHub, GitHubEmail, GitHubOrg, GitHubTeam, GitHubUser
    from .oauth.identity import StaticIdentityAuthenticator, identity_for
    from .ports import free_port
    from .recording_server import LocalHTTPServer, RecordedRequest, Reply
    from .registry.local import LocalRegistry, TokenServer, push_tags
    from .waiting import WaitTimeout, wait_for, wait_for_async

#: Public name -> the module (relative to this package) that defines it; imported on first use,
#: so ``import lsst_spawner.testing`` stays cheap.
PUBLIC_NAMES = {
    "golden_checker": "golden",
    "InProcessHub": "hub.fixtures",
    "HubError": "hub.process",
    "HubProcess": "hub.process",
    "spawn_body": "hub.process",
    "RecordingSpawner": "hub.recording_spawner",
    "load_site_config": "hub.site",
    "make_site_spawner": "hub.site",
    "KubeEmulator": "kube",
    "KubeHandle": "kube.fixtures",
    "LoopbackServer": "loopback",
    "LoopThread": "loopback",
    "ThreadedServer": "loopback",
    "CILogonUser": "oauth.cilogon",
    "FakeCILogon": "oauth.cilogon",
    "FakeGitHub": "oauth.github",
    "GitHubEmail": "oauth.github",
    "GitHubOrg": "oauth.github",
    "GitHubTeam": "oauth.github",
    "GitHubUser": "oauth.github",
    "StaticIdentityAuthenticator": "oauth.identity",
    "identity_for": "oauth.identity",
    "free_port": "ports",
    "LocalHTTPServer": "recording_server",
    "RecordedRequest": "recording_server",
    "Reply": "recording_server",
    "LocalRegistry": "registry.local",
    "TokenServer": "registry.local",
    "push_tags": "registry.local",
    "WaitTimeout": "waiting",
    "wait_for": "waiting",
    "wait_for_async": "waiting",
}

#: Modules moved by the 2026-12 split (old name -> new name, relative to this package).
MOVED_MODULES = {
    "_fake_oauth": "oauth.base",
    "fake_github": "oauth.github",
    "fake_cilogon": "oauth.cilogon",
    "identity_auth": "oauth.identity",
    "auth_fixtures": "oauth.fixtures",
    "registry_fixtures": "registry.fixtures",
    "hub_fixtures": "hub.fixtures",
    "recording_spawner": "hub.recording_spawner",
    "site": "hub.site",
    "kube_fixtures": "kube.fixtures",
    "_threaded_server": "loopback",
}

__all__ = [
    "CILogonUser",
    "FakeCILogon",
    "FakeGitHub",
    "GitHubEmail",
    "GitHubOrg",
    "GitHubTeam",
    "GitHubUser",
    "HubError",
    "HubProcess",
    "InProcessHub",
    "KubeEmulator",
    "KubeHandle",
    "LocalHTTPServer",
    "LocalRegistry",
    "LoopThread",
    "LoopbackServer",
    "RecordedRequest",
    "RecordingSpawner",
    "Reply",
    "StaticIdentityAuthenticator",
    "ThreadedServer",
    "TokenServer",
    "WaitTimeout",
    "free_port",
    "golden_checker",
    "identity_for",
    "load_site_config",
    "make_site_spawner",
    "push_tags",
    "spawn_body",
    "wait_for",
    "wait_for_async",
]


def __getattr__(name: str) -> Any:
    if name in PUBLIC_NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{PUBLIC_NAMES[name]}"), name)
        globals()[name] = value
        return value
    if name in MOVED_MODULES:
        return importlib.import_module(f"{__name__}.{MOVED_MODULES[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _MovedModuleLoader(importlib.abc.Loader):
    """Imports the new module and puts it in ``sys.modules`` under the old name too."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        # The import system returns what sys.modules holds once this returns: the new module.
        sys.modules[module.__name__] = importlib.import_module(self.target)


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in MOVED_MODULES:
            return None
        new = f"{__name__}.{MOVED_MODULES[name]}"
        return importlib.util.spec_from_loader(fullname, _MovedModuleLoader(new))


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
