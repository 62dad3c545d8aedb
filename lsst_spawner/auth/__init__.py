"""Authenticators that provide the lsst_spawner identity contract.

The authenticator classes are imported on first use, so that the lab builders can
use :mod:`lsst_spawner.auth.groups` and :mod:`lsst_spawner.auth.names` without
importing OAuthenticator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cilogon import LSSTCILogonOAuthenticator
    from .github import LSSTGitHubOAuthenticator

__all__ = ["LSSTCILogonOAuthenticator", "LSSTGitHubOAuthenticator"]

_MODULES = {"LSSTCILogonOAuthenticator": ".cilogon", "LSSTGitHubOAuthenticator": ".github"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
