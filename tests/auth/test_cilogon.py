"""LSSTCILogonOAuthenticator against the fake CILogon: claims, groups, rejections, refresh."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from tornado import web

from lsst_spawner.auth.cilogon import LSSTCILogonOAuthenticator, parse_id_claim
from lsst_spawner.auth.gids import synthetic_gid
from lsst_spawner.auth.names import name_digest
from lsst_spawner.identity import Identity
from lsst_spawner.testing.oauth.cilogon import CILogonUser, FakeCILogon
from lsst_spawner.testing.oauth.fixtures import StubUser, oauth_login

SUB = "http://cilogon.org/serverA/users/1234"


def make_auth(fake: FakeCILogon, **traits: Any) -> LSSTCILogonOAuthenticator:
    config: dict[str, Any] = {
        **fake.authenticator_config(),
        "oauth_callback_url": "http://127.0.0.1:1/hub/oauth_callback",
        "enable_auth_state": True,
    }
    config.update(traits)
    return LSSTCILogonOAuthenticator(**config)


def add(fake: FakeCILogon, **claims: Any) -> CILogonUser:
    base: dict[str, Any] = {
        "username": "vera",
        "name": "Vera Rubin",
        "email": "vera@example.org",
        "uidNumber": "41370",
        "gidNumber": 41370,
        "isMemberOf": [{"name": "g_users", "id": 3000}, {"name": "rubin-staff", "id": "3001"}],
    }
    base.update(claims)
    for key in [k for k, v in base.items() if v is None]:
        del base[key]
    return fake.add_user(CILogonUser(SUB, base))


async def login_identity(auth: LSSTCILogonOAuthenticator, fake: FakeCILogon) -> Identity:
    model = await oauth_login(auth, fake)
    assert model is not None
    return Identity.from_auth_state(model["auth_state"])


async def rejection(auth: LSSTCILogonOAuthenticator, fake: FakeCILogon) -> str:
    with pytest.raises(web.HTTPError) as info:
        await oauth_login(auth, fake)
    assert info.value.status_code == 403
    return str(info.value.get_message())


async def test_default_mapping(fake_cilogon: FakeCILogon) -> None:
    add(fake_cilogon)
    identity = await login_identity(make_auth(fake_cilogon), fake_cilogon)
    assert identity.username == "vera"
    assert identity.uid == 41370
    assert identity.gid == 41370
    assert [(g.name, g.gid) for g in identity.groups] == [
        ("vera", 41370),
        ("g_users", 3000),
        ("rubin-staff", 3001),
    ]
    assert identity.name == "Vera Rubin"
    assert identity.email == "vera@example.org"
    assert identity.git_token is None


async def test_primary_gid_from_a_listed_group(fake_cilogon: FakeCILogon) -> None:
    add(fake_cilogon, gidNumber="3000")
    identity = await login_identity(make_auth(fake_cilogon), fake_cilogon)
    assert identity.gid == 3000
    assert [g.name for g in identity.groups] == ["g_users", "rubin-staff"]


async def test_configurable_claims(fake_cilogon: FakeCILogon) -> None:
    add(
        fake_cilogon,
        uidNumber=None,
        gidNumber=None,
        isMemberOf=None,
        uid_n=50000,
        gid_n=50001,
        groups=[{"name": "ops", "id": 50002}],
    )
    auth = make_auth(fake_cilogon, uid_claim="uid_n", gid_claim="gid_n", groups_claim="groups")
    identity = await login_identity(auth, fake_cilogon)
    assert (identity.uid, identity.gid) == (50000, 50001)
    assert ("ops", 50002) in [(g.name, g.gid) for g in identity.groups]


async def test_groups_without_id_dropped_by_default(
    fake_cilogon: FakeCILogon, caplog: pytest.LogCaptureFixture
) -> None:
    add(fake_cilogon, isMemberOf=[{"name": "g_users", "id": 3000}, {"name": "no-id"}, "bare-name"])
    with caplog.at_level(logging.INFO):
        identity = await login_identity(make_auth(fake_cilogon), fake_cilogon)
    assert [g.name for g in identity.groups] == ["vera", "g_users"]
    assert "Dropping group 'no-id' of 'vera': it has no id" in caplog.text


async def test_groups_without_id_get_synthetic_gid(fake_cilogon: FakeCILogon) -> None:
    add(fake_cilogon, isMemberOf=[{"name": "no-id"}, "CO:members:all"])
    auth = make_auth(
        fake_cilogon,
        groups_without_gid="synthetic",
        synthetic_gid_min=600000,
        synthetic_gid_max=699999,
    )
    identity = await login_identity(auth, fake_cilogon)
    groups = {g.name: g.gid for g in identity.groups}
    assert groups["no-id"] == synthetic_gid("no-id", 600000, 699999)
    assert groups["co-members-all-" + name_digest("CO:members:all")] == synthetic_gid(
        "CO:members:all", 600000, 699999
    )
    assert all(600000 <= gid <= 699999 for name, gid in groups.items() if name != "vera")


async def test_invalid_group_ids_dropped(fake_cilogon: FakeCILogon) -> None:
    add(
        fake_cilogon,
        isMemberOf=[
            {"name": "neg", "id": -5},
            {"name": "text", "id": "12a"},
            {"name": "bool", "id": True},
            {"name": "huge", "id": 2**40},
            {"name": "ok", "id": 3005},
            17,
            None,
        ],
    )
    identity = await login_identity(make_auth(fake_cilogon), fake_cilogon)
    assert [g.name for g in identity.groups] == ["vera", "ok"]


async def test_hostile_group_names(fake_cilogon: FakeCILogon) -> None:
    add(
        fake_cilogon,
        isMemberOf=[
            {"name": "a:b", "id": 3101},
            {"name": "z" * 200, "id": 3102},
            {"name": "Ünïcode Grüppe", "id": 3103},
        ],
    )
    identity = await login_identity(make_auth(fake_cilogon), fake_cilogon)
    names = {g.gid: g.name for g in identity.groups}
    assert names[3101] == "a-b-" + name_digest("a:b")
    assert names[3102] == "z" * 23 + "-" + name_digest("z" * 200)
    assert names[3103] == "unicode-gruppe-" + name_digest("Ünïcode Grüppe")


async def test_group_name_with_newline_rejects_login(fake_cilogon: FakeCILogon) -> None:
    add(fake_cilogon, isMemberOf=[{"name": "x\nroot:x:0:", "id": 3200}])
    message = await rejection(make_auth(fake_cilogon), fake_cilogon)
    assert (
        "isMemberOf group name 'x\\nroot:x:0:' contains control or invisible characters (U+000A)"
        in message
    )


async def test_group_name_with_newline_dropped_when_configured(fake_cilogon: FakeCILogon) -> None:
    add(fake_cilogon, isMemberOf=[{"name": "x\nroot:x:0:", "id": 3200}, {"name": "ok", "id": 3201}])
    identity = await login_identity(
        make_auth(fake_cilogon, unsafe_group_names="drop"), fake_cilogon
    )
    assert [g.gid for g in identity.groups] == [41370, 3201]


async def test_unsafe_username_rejected(fake_cilogon: FakeCILogon) -> None:
    add(fake_cilogon, username="vera\nroot")
    message = await rejection(make_auth(fake_cilogon), fake_cilogon)
    assert "username 'vera\\nroot' is not allowed" in message


# --- uid and gid rules -----------------------------------------------------------


async def test_no_uid(fake_cilogon: FakeCILogon) -> None:
    add(fake_cilogon, uidNumber=None)
    message = await rejection(make_auth(fake_cilogon), fake_cilogon)
    assert message == "the identity provider gave no uid (numeric user id) for this account"


@pytest.mark.parametrize("bad", ["12a", "-1", "", " 4137", "٤١٣٧", True, 4.5, [4137]])
async def test_invalid_uid(fake_cilogon: FakeCILogon, bad: object) -> None:
    add(fake_cilogon, uidNumber=bad)
    message = await rejection(make_auth(fake_cilogon), fake_cilogon)
    assert message == f"claim uidNumber holds an invalid uid {bad!r}"


@pytest.mark.parametrize("uid", [0, "0", 999])
async def test_uid_below_minimum(fake_cilogon: FakeCILogon, uid: object) -> None:
    add(fake_cilogon, uidNumber=uid)
    message = await rejection(make_auth(fake_cilogon), fake_cilogon)
    assert message == f"uid {int(uid)} is below the minimum uid 1000 allowed on this hub"  # type: ignore[call-overload]


async def test_no_gid_rejected_by_default(fake_cilogon: FakeCILogon) -> None:
    add(fake_cilogon, gidNumber=None)
    message = await rejection(make_auth(fake_cilogon), fake_cilogon)
    assert message == "the identity provider gave no gid and a gid is required (require_gid)"


async def test_no_gid_allowed_gives_private_group(
    fake_cilogon: FakeCILogon, caplog: pytest.LogCaptureFixture
) -> None:
    add(fake_cilogon, gidNumber=None)
    with caplog.at_level(logging.INFO):
        identity = await login_identity(make_auth(fake_cilogon, require_gid=False), fake_cilogon)
    assert identity.gid == identity.uid == 41370
    assert identity.groups[0].name == "vera"
    assert "using a user-private group with gid = uid 41370" in caplog.text


async def test_primary_gid_below_minimum(fake_cilogon: FakeCILogon) -> None:
    add(fake_cilogon, gidNumber=0)
    message = await rejection(make_auth(fake_cilogon), fake_cilogon)
    assert message == "gid 0 is below the minimum gid 1000 allowed on this hub"


async def test_invalid_email_ignored(fake_cilogon: FakeCILogon) -> None:
    add(fake_cilogon, email="vera@example.org\nBcc: x@y")
    identity = await login_identity(make_auth(fake_cilogon), fake_cilogon)
    assert identity.email is None


# --- allow and deny ----------------------------------------------------------------


async def test_denied_group(fake_cilogon: FakeCILogon) -> None:
    add(fake_cilogon, isMemberOf=[{"name": "g_users", "id": 3000}, {"name": "Banned Users"}])
    auth = make_auth(fake_cilogon, denied_idp_groups={"Banned Users"})
    message = await rejection(auth, fake_cilogon)
    assert message == "members of the group 'Banned Users' may not use this hub"


async def test_allowed_groups(fake_cilogon: FakeCILogon) -> None:
    add(fake_cilogon)
    config = fake_cilogon.authenticator_config()
    idps = {idp: {**value, "allow_all": False} for idp, value in config["idps"].items()}
    allowed = make_auth(fake_cilogon, idps=idps, allowed_idp_groups={"rubin-staff"})
    assert await oauth_login(allowed, fake_cilogon) is not None
    other = make_auth(fake_cilogon, idps=idps, allowed_idp_groups={"someone-else"})
    assert await oauth_login(other, fake_cilogon) is None


# --- refresh -------------------------------------------------------------------------


async def test_refresh_picks_up_group_changes(fake_cilogon: FakeCILogon) -> None:
    user = add(fake_cilogon)
    auth = make_auth(fake_cilogon)
    model = await oauth_login(auth, fake_cilogon)
    user.claims["isMemberOf"] = [{"name": "new-project", "id": 3300}]
    refreshed = await auth.refresh_user(StubUser("vera", model["auth_state"]))
    assert [g.name for g in Identity.from_auth_state(refreshed["auth_state"]).groups] == [
        "vera",
        "new-project",
    ]


async def test_refresh_with_refresh_token_after_expiry(fake_cilogon: FakeCILogon) -> None:
    add(fake_cilogon)
    auth = make_auth(fake_cilogon)
    model = await oauth_login(auth, fake_cilogon)
    fake_cilogon.revoke_tokens()
    refreshed = await auth.refresh_user(StubUser("vera", model["auth_state"]))
    assert refreshed["auth_state"]["identity"]["uid"] == 41370


async def test_outage_within_grace(fake_cilogon: FakeCILogon) -> None:
    add(fake_cilogon)
    auth = make_auth(fake_cilogon, refresh_grace_period=300)
    model = await oauth_login(auth, fake_cilogon)
    fake_cilogon.outage = True
    assert await auth.refresh_user(StubUser("vera", model["auth_state"])) is True
    # No stored identity (a user from before this authenticator): nothing to keep.
    without = {**model["auth_state"], "identity": None}
    assert await auth.refresh_user(StubUser("vera", without)) is False


def test_parse_id_claim() -> None:
    assert parse_id_claim(4137) == 4137
    assert parse_id_claim("4137") == 4137
    for bad in (None, True, -1, "4137 ", "0x10", "٤", 2**32, "99999999999"):
        assert parse_id_claim(bad) is None


def test_config_problems(fake_cilogon: FakeCILogon) -> None:
    assert make_auth(fake_cilogon).config_problems() == []
    auth = make_auth(
        fake_cilogon,
        synthetic_gid_min=10,
        synthetic_gid_max=5,
        uid_claim="",
        allowed_idp_groups={"a"},
        denied_idp_groups={"a"},
        enable_auth_state=False,
    )
    assert sorted(p.where for p in auth.config_problems()) == [
        "LSSTCILogonOAuthenticator.denied_idp_groups",
        "LSSTCILogonOAuthenticator.enable_auth_state",
        "LSSTCILogonOAuthenticator.synthetic_gid_min",
        "LSSTCILogonOAuthenticator.uid_claim",
    ]
