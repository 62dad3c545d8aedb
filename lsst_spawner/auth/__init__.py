"""Authenticators that provide the lsst_spawner identity contract."""

from .cilogon import LSSTCILogonOAuthenticator
from .github import LSSTGitHubOAuthenticator

__all__ = ["LSSTCILogonOAuthenticator", "LSSTGitHubOAuthenticator"]
