"""GitHub authenticator providing the lsst_spawner identity contract."""

from __future__ import annotations

from oauthenticator.github import GitHubOAuthenticator

from ..config import CheckedConfigurable

__all__ = ["LSSTGitHubOAuthenticator"]


class LSSTGitHubOAuthenticator(CheckedConfigurable, GitHubOAuthenticator):
    """GitHub login that provisions a UID, GID, groups, name, email and git token."""
