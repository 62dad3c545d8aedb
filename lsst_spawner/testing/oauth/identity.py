"""An authenticator for tests and benchmarks that provides the identity contract with no OAuth.

Any username and password log in (as JupyterHub's dummy authenticator); the
identity is derived from the username: a stable uid in a configurable range
(the same synthetic-id hash the CILogon authenticator uses), a user-private
group and the configured extra groups. Never use it on a real hub.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.auth import DummyAuthenticator
from traitlets import Dict, Int

from ...auth.example import example_identity

__all__ = ["StaticIdentityAuthenticator", "identity_for"]


#: The identity :class:`StaticIdentityAuthenticator` gives a username.
identity_for = example_identity


class StaticIdentityAuthenticator(DummyAuthenticator):
    """Logs anyone in and stores a derived identity in ``auth_state["identity"]``."""

    uid_min = Int(100_000, config=True, help="Smallest uid given to test users.")
    uid_max = Int(199_999, config=True, help="Largest uid given to test users.")
    extra_groups = Dict(
        {"science": 3000},
        config=True,
        help="Groups every test user belongs to, as {name: gid}.",
    )

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        result = await super().authenticate(handler, data)
        if result is None:
            return None
        username = result if isinstance(result, str) else result["name"]
        identity = identity_for(
            username, uid_min=self.uid_min, uid_max=self.uid_max, groups=self.extra_groups
        )
        return {"name": username, "auth_state": {"identity": identity.to_dict()}}
