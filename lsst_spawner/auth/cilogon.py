"""CILogon authenticator providing the lsst_spawner identity contract."""

from __future__ import annotations

from oauthenticator.cilogon import CILogonOAuthenticator

from ..config import CheckedConfigurable

__all__ = ["LSSTCILogonOAuthenticator"]


class LSSTCILogonOAuthenticator(CheckedConfigurable, CILogonOAuthenticator):
    """CILogon login that provisions a UID, GID, groups, name and email from claims."""
