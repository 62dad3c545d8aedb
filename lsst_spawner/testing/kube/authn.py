"""Who is asking: bearer tokens to users, as the API server's token authenticator does.

A request without an ``Authorization`` header is ``system:anonymous`` (group
``system:unauthenticated``), as with the API server's default
``--anonymous-auth=true``; a bearer token the emulator never issued gets the
API server's 401. Service-account identities have the API server's names and
groups.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from .rbac import SUPERUSER_GROUP, UserInfo
from .status import ApiError

__all__ = [
    "ADMIN",
    "ADMIN_TOKEN",
    "ANONYMOUS",
    "TokenAuthenticator",
    "service_account_user",
]

#: The token of the emulator's administrator, in every kubeconfig written without a user.
ADMIN_TOKEN = "emulator-token"
ADMIN = UserInfo("emulator-admin", (SUPERUSER_GROUP, "system:authenticated"))
ANONYMOUS = UserInfo("system:anonymous", ("system:unauthenticated",))


def service_account_user(namespace: str, name: str) -> UserInfo:
    """The user a service account's token authenticates as."""
    return UserInfo(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )


@dataclass
class TokenAuthenticator:
    """Bearer tokens the emulator accepts, and the users they stand for."""

    tokens: dict[str, UserInfo] = field(default_factory=lambda: {ADMIN_TOKEN: ADMIN})

    def issue(self, user: UserInfo, token: str | None = None) -> str:
        """Accept a (new, random unless given) token for ``user``; return it."""
        token = token or f"emu-{secrets.token_urlsafe(24)}"
        self.tokens[token] = user
        return token

    def issue_service_account(self, namespace: str, name: str) -> str:
        return self.issue(service_account_user(namespace, name))

    def revoke(self, token: str) -> None:
        self.tokens.pop(token, None)

    def authenticate(self, headers: Mapping[str, str]) -> UserInfo:
        """The request's user; raises the API server's 401 for a token it does not know."""
        header = headers.get("Authorization")
        if header is None:
            return ANONYMOUS
        scheme, _, token = header.strip().partition(" ")
        user = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user
