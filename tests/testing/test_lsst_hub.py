"""The in-process hub (``lsst_hub``): spawn and stop, the form, identities, site config.

Each test runs JupyterHub's MockHub in process (pytest-jupyterhub's ``hub_app``)
with LSSTSpawner, against the Kubernetes API emulator and a stub kubelet.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import jupyterhub
import pytest

from lsst_spawner.identity import Group, Identity
from lsst_spawner.testing.hub.fixtures import STATIC_IMAGE_BASE, site_config
from lsst_spawner.testing.oauth.github import FakeGitHub, GitHubOrg, GitHubUser
from lsst_spawner.testing.registry.fixtures import RegistryFixture

TAGS = ["recommended", "w_2026_46", "w_2026_45"]
DIGEST = "sha256:" + "4" * 64


async def lab_objects(hub: Any) -> dict[str, list[str]]:
    return {
        kind: sorted(o["metadata"]["name"] for o in await hub.kube_api.list(kind))
        for kind in ("pods", "configmaps", "secrets")
    }


async def test_spawn_runs_as_the_identity_and_stop_leaves_nothing(lsst_hub: Any) -> None:
    hub = await lsst_hub(images={**dict.fromkeys(TAGS, ""), "w_2026_46": DIGEST})
    identity = Identity(
        username="vera",
        uid=40001,
        gid=40001,
        groups=(Group("vera", 40001), Group("rubin-staff", 2100)),
        name="Vera Rubin",
        email="vera@example.org",
    )
    pod = await hub.spawn("vera", {"image": "w_2026_46"}, identity=identity)
    security = pod["spec"]["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (40001, 40001)
    assert 2100 in security["supplementalGroups"]
    assert pod["spec"]["containers"][0]["image"] == f"{STATIC_IMAGE_BASE}:w_2026_46@{DIGEST}"
    name = pod["metadata"]["name"]
    assert await lab_objects(hub) == {
        "pods": [name],
        "configmaps": [],
        "secrets": [f"{name}-secret"],
    }
    await hub.stop("vera")
    assert await lab_objects(hub) == {"pods": [], "configmaps": [], "secrets": []}


MISSING = {"auth_state": {}}
HOSTILE_IDENTITIES = [
    pytest.param(MISSING, "the user has no identity", id="no-identity"),
    pytest.param(
        {"auth_state": {"identity": {"username": "mallory", "uid": 0, "gid": 0, "groups": []}}},
        "uid",
        id="root-uid",
    ),
    pytest.param(
        {
            "auth_state": {
                "identity": {
                    "username": "mallory",
                    "uid": 40002,
                    "gid": 40002,
                    "groups": [{"name": "x:0:0:root\nroot", "gid": 40002}],
                }
            }
        },
        "group",
        id="group-name-with-passwd-syntax",
    ),
]


@pytest.mark.parametrize(("auth_state", "message"), HOSTILE_IDENTITIES)
async def test_a_missing_or_hostile_identity_is_refused_before_any_write(
    lsst_hub: Any, auth_state: dict[str, Any], message: str
) -> None:
    hub = await lsst_hub(images=TAGS)
    assert (await hub.request("POST", "/users/mallory"))[0] == 201
    assert (await hub.request("PATCH", "/users/mallory", auth_state))[0] == 200
    status, reply = await hub.start("mallory", {})
    if status in (201, 202):  # still pending after the hub's slow-spawn wait: wait for the end
        with pytest.raises(AssertionError) as failed:
            await hub.wait_ready("mallory")
        reply = {"message": str(failed.value)}
    else:
        assert status == 403, reply
    assert "Cannot start a lab for mallory" in reply["message"]
    assert message in reply["message"]
    assert await lab_objects(hub) == {"pods": [], "configmaps": [], "secrets": []}
    assert hub.kube_api.counters.get("create") == 0


async def test_the_form_the_hub_serves_and_its_submission(lsst_hub: Any) -> None:
    hub = await lsst_hub(images=TAGS)
    async with await hub.login("rra") as browser:
        async with browser.get(f"{hub.url}/spawn") as page:
            assert page.status == 200
            html = await page.text()
        assert re.findall(r'name="image_list" id="[^"]+" value="([^"]*)"', html)[:2] == [
            "recommended",
            "w_2026_46",
        ]
        assert 'name="size"' in html
        xsrf = next(c.value for c in browser.cookie_jar if c.key == "_xsrf")
        form = {"image_list": "w_2026_45", "size": "medium", "_xsrf": xsrf}
        async with browser.post(f"{hub.url}/spawn", data=form, allow_redirects=False) as reply:
            assert reply.status == 302, await reply.text()
    await hub.wait_ready("rra")
    pod = await hub.kube_api.get("pods", hub.spawner("rra").pod_name)
    assert pod["spec"]["containers"][0]["image"] == f"{STATIC_IMAGE_BASE}:w_2026_45"
    # The login's identity (StaticIdentityAuthenticator), not a made-up one of the kit.
    uid = pod["spec"]["securityContext"]["runAsUser"]
    assert hub.app.authenticator.uid_min <= uid <= hub.app.authenticator.uid_max


async def test_a_rejected_form_shows_the_message_and_writes_nothing(
    lsst_hub: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await lsst_hub(images=TAGS)
    async with await hub.login("rra") as browser:
        xsrf = next(c.value for c in browser.cookie_jar if c.key == "_xsrf")
        form = {"image_list": "<script>x</script>", "size": "medium", "_xsrf": xsrf}
        async with browser.post(f"{hub.url}/spawn", data=form) as reply:
            html = await reply.text()
    # The form again, with the message: JupyterHub 6 answers 400, JupyterHub 5 answered 200.
    assert reply.status == (400 if int(jupyterhub.__version__.split(".")[0]) >= 6 else 200)
    assert "<script>x</script>" not in html
    assert "not a valid tag" in html
    # The user's words, not tornado's "HTTP 400: Bad Request (...)".
    assert "Bad Request" not in html
    assert hub.kube_api.counters.get("create") == 0
    # A user's bad input is a warning with the reason, not an error with a traceback.
    (logged,) = [r for r in caplog.records if "Failed to spawn" in r.getMessage()]
    assert logged.levelname == "WARNING"
    assert logged.exc_info is None
    assert "not a valid tag" in logged.getMessage()


def snippet_dir(tmp_path: Path, **snippets: str) -> Path:
    directory = tmp_path / "jupyterhub_config.d"
    directory.mkdir()
    for name, text in snippets.items():
        (directory / f"{name}.py").write_text(text)
    return directory


async def test_site_snippets_are_loaded_in_order_over_the_kit_defaults(
    lsst_hub: Any, tmp_path: Path
) -> None:
    config_dir = snippet_dir(
        tmp_path,
        s10_menu=(
            'c.LSSTSpawner.image_source = "static"\n'
            'c.LSSTSpawner.static_image_base = "registry.example.org/site/lab"\n'
            'c.LSSTSpawner.static_image_tags = ["recommended", "w_2026_40"]\n'
            "sizes = [{'name': 'tiny', 'cpu': 1, 'memory': '2Gi'}]\n"
        ),
        s20_sizes="c.LSSTSpawner.lab_sizes = sizes\nc.LSSTSpawner.lab_default_size = 'tiny'\n",
    )
    hub = await lsst_hub(config_dir=config_dir)
    pod = await hub.spawn("vera", {"image": "w_2026_40"})
    container = pod["spec"]["containers"][0]
    assert container["image"] == "registry.example.org/site/lab:w_2026_40"
    assert container["resources"]["limits"]["memory"] in ("2Gi", str(2 * 1024**3))
    assert pod["metadata"]["namespace"] == hub.kube_api.namespace


def test_a_site_config_the_hub_would_refuse_fails_with_its_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LSST_TEST_REGISTRY", raising=False)
    config_dir = snippet_dir(
        tmp_path,
        s10=(
            "from lsst_spawner.config import require_env\n"
            'c.LSSTSpawner.registry_host = require_env("LSST_TEST_REGISTRY")\n'
        ),
    )
    with pytest.raises(pytest.fail.Exception, match="LSST_TEST_REGISTRY is not set"):
        site_config(config_dir=config_dir)
    (config_dir / "s10.py").write_text('c.LSSTSpawner.lab_default_size = "enormous"\n')
    with pytest.raises(pytest.fail.Exception, match=r"LSSTSpawner\.lab_default_size"):
        site_config(config_dir=config_dir)


async def test_images_from_a_real_registry(lsst_hub: Any, registry: RegistryFixture) -> None:
    hub = await lsst_hub(images=registry)
    pod = await hub.spawn("vera", {"image": "recommended"})
    image = pod["spec"]["containers"][0]["image"]
    digest = registry.digests["recommended"]
    assert image == f"{registry.host_port}/{registry.repository}:recommended@{digest}"


async def test_one_hub_per_test(lsst_hub: Any) -> None:
    await lsst_hub(images=TAGS)
    with pytest.raises(RuntimeError, match="one hub per test"):
        await lsst_hub(images=TAGS)


async def test_a_site_jupyterhub_config_py(lsst_hub: Any) -> None:
    sample = Path(__file__).parents[2] / "sample_configs" / "static-menu" / "jupyterhub_config.py"
    hub = await lsst_hub(config_file=sample)
    pod = await hub.spawn("vera")  # no options: the recommended image, pinned by digest
    image = pod["spec"]["containers"][0]["image"]
    assert image == "registry.example.org/science-platform/sciplat-lab:recommended@sha256:" + (
        "5" * 64
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"images": "recommended"}, "images must be a list of tags or a registry fixture"),
        ({"kubelet_mode": "docker"}, "kubelet_mode must be 'stub' or 'process', not 'docker'"),
    ],
)
async def test_bad_arguments_are_refused_by_name(
    lsst_hub: Any, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        await lsst_hub(**arguments)


SITE_SPAWNER = """
from traitlets import default

from lsst_spawner.spawner import LSSTSpawner


class SiteSpawner(LSSTSpawner):
    @default("image_source")
    def _static(self):
        return "static"
"""


def test_a_site_subclass_of_lsstspawner_is_checked_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its settings come from LSSTSpawner's mixins; building one ran KubeSpawner's constructor."""
    (tmp_path / "site_spawner_for_check.py").write_text(SITE_SPAWNER)
    monkeypatch.syspath_prepend(str(tmp_path))
    select = 'c.JupyterHub.spawner_class = "site_spawner_for_check.SiteSpawner"\n'
    config_dir = snippet_dir(tmp_path, s10=select + 'c.LSSTSpawner.lab_default_size = "enormous"\n')
    with pytest.raises(pytest.fail.Exception, match=r"LSSTSpawner\.lab_default_size"):
        site_config(config_dir=config_dir)
    (config_dir / "s10.py").write_text(select)
    assert site_config(config_dir=config_dir).JupyterHub.spawner_class.endswith("SiteSpawner")


async def logs_in(hub: Any, name: str) -> bool:
    """Whether a login through the hub's form (the kit's authenticator) gets a session.

    JupyterHub 6 answers a refused login 403, JupyterHub 5 200 with the form again:
    the hub's login cookie is what tells.
    """
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(f"{hub.url}/login") as page:
            assert page.status == 200
        xsrf = next(c.value for c in browser.cookie_jar if c.key == "_xsrf")
        form = {"username": name, "password": name, "_xsrf": xsrf}
        async with browser.post(f"{hub.url}/login", data=form) as reply:
            assert reply.status in (200, 403), await reply.text()
        return any(c.key == "jupyterhub-hub-login" for c in browser.cookie_jar)


async def test_the_sites_allowed_users_hold_as_on_a_real_hub(lsst_hub: Any, tmp_path: Path) -> None:
    """MockHub would allow everyone unless ``allow_all`` is configured; the kit does not."""
    config_dir = snippet_dir(tmp_path, s10='c.Authenticator.allowed_users = {"vera"}\n')
    hub = await lsst_hub(config_dir=config_dir, images=TAGS)
    assert not await logs_in(hub, "mallory")
    assert await logs_in(hub, "vera")


SITE_GITHUB = """
c.JupyterHub.authenticator_class = "lsst-github"
c.LSSTGitHubOAuthenticator.allowed_organizations = {"lsst-sqre"}
c.LSSTGitHubOAuthenticator.oauth_callback_url = "http://127.0.0.1/set-below"
"""


async def test_a_site_authenticators_allow_rules_hold(
    lsst_hub: Any, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    """A site's own authenticator (``authenticator=None``) with an organization rule."""
    fake_github.add_user(GitHubUser("vera", 41370, orgs=[GitHubOrg("lsst-sqre", 30100)]))
    fake_github.add_user(GitHubUser("mallory", 41371, orgs=[GitHubOrg("evil-corp", 30200)]))
    config_dir = snippet_dir(tmp_path, s10=SITE_GITHUB)
    provider = {"LSSTGitHubOAuthenticator": fake_github.authenticator_config()}
    hub = await lsst_hub(config_dir=config_dir, config=provider, images=TAGS, authenticator=None)
    hub.app.authenticator.oauth_callback_url = f"{hub.url}/oauth_callback"
    for name, status in (("mallory", 403), ("vera", 200)):
        fake_github.login_as = name
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser,
            browser.get(f"{hub.url}/oauth_login?next=/hub/home") as reply,
        ):
            assert reply.status == status, (name, await reply.text())
