"""The docs' example: a generic OAuthenticator filling the identity contract."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lsst_spawner.identity import Identity
from lsst_spawner.testing.oauth.cilogon import CILogonUser, FakeCILogon
from lsst_spawner.testing.oauth.fixtures import oauth_login

DOC = Path(__file__).resolve().parents[2] / "docs" / "identity.md"


def _example_class() -> Any:
    text = DOC.read_text()
    section = text.split("## A generic OAuthenticator filling the contract", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code
    source = code.group(1).split("\n\nc.JupyterHub")[0]
    namespace: dict[str, Any] = {}
    exec(compile(source, str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace["SiteOAuthenticator"]


async def test_docs_example_fills_the_contract(fake_cilogon: FakeCILogon) -> None:
    fake_cilogon.add_user(
        CILogonUser(
            "sub-1",
            {
                "preferred_username": "vera",
                "uid_number": "41370",
                "gid_number": "41370",
                "groups": [{"name": "Rubin:Staff", "gid": 3001}],
            },
        )
    )
    cls = _example_class()
    auth = cls(
        authorize_url=fake_cilogon.authorize_url,
        token_url=fake_cilogon.token_url,
        userdata_url=fake_cilogon.userinfo_url,
        client_id=fake_cilogon.client_id,
        client_secret=fake_cilogon.client_secret,
        username_claim="preferred_username",
        oauth_callback_url="http://127.0.0.1:1/hub/oauth_callback",
        enable_auth_state=True,
        allow_all=True,
    )
    model = await oauth_login(auth, fake_cilogon)
    identity = Identity.from_auth_state(model["auth_state"])
    assert identity.uid == 41370
    assert [g.gid for g in identity.groups] == [41370, 3001]
    assert identity.groups[1].name.startswith("rubin-staff-")
