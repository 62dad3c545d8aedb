"""lsst_spawner: KubeSpawner and OAuthenticator subclasses for a science platform hub.

The public classes are imported lazily so that ``lsst_spawner.images`` or
``lsst_spawner.identity`` can be used without importing KubeSpawner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .auth.cilogon import LSSTCILogonOAuthenticator
    from .auth.github import LSSTGitHubOAuthenticator
    from .spawner import LSSTSpawner

__all__ = [
    "LSSTCILogonOAuthenticator",
    "LSSTGitHubOAuthenticator",
    "LSSTSpawner",
    "__version__",
]

_LAZY = {
    "LSSTSpawner": "lsst_spawner.spawner",
    "LSSTGitHubOAuthenticator": "lsst_spawner.auth.github",
    "LSSTCILogonOAuthenticator": "lsst_spawner.auth.cilogon",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'lsst_spawner' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
