"""A real JupyterHub that starts the menu editor as its service (one per test module).

alice holds ``custom:lab-menu:write`` through a role (password "pw", DummyAuthenticator);
bob is an ordinary user who may only read.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from lsst_spawner.editor import WRITE_SCOPE
from lsst_spawner.testing.hub import HubProcess, free_port
from lsst_spawner.testing.waiting import wait_for

SERVICE = "lab-menu"


class EditorHub(HubProcess):
    tokens: dict[str, str]
    db_url: str

    def service_url(self, path: str = "") -> str:
        return f"{self.url}/services/{SERVICE}/{path}"

    def call(
        self, method: str, path: str, user: str, data: dict[str, str] | None = None
    ) -> tuple[int, str]:
        body = None if data is None else urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback
            self.service_url(path),
            data=body,
            method=method,
            headers={"Authorization": f"token {self.tokens[user]}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")


STATIC_IMAGES = """
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
c.LSSTSpawner.static_image_tags = ["recommended", "w_2024_10", "w_2024_09"]
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EditorHub]:
    yield from start_editor_hub(tmp_path_factory, STATIC_IMAGES)


def start_editor_hub(factory: pytest.TempPathFactory, images_config: str) -> Iterator[EditorHub]:
    """A hub with the editor service; ``images_config`` sets the spawner's image source."""
    tmp = factory.mktemp("editor-hub")
    service_port = free_port()
    db_url = f"sqlite:///{tmp / 'lsst_spawner_menu.sqlite'}"
    command = [sys.executable, "-m", "lsst_spawner.cli", "-f", str(tmp / "jupyterhub_config.py")]
    config = f"""
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "pw"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "lsst"
{images_config}
c.LabMenu.db_url = {db_url!r}
c.LabMenu.node_groups = [{{
    "name": "gpu", "node_selector": {{"pool": "gpu"}},
    "tolerations": [{{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}}],
    "extended_resources": {{"nvidia.com/gpu": 1}}, "max_cpu": "8", "max_memory": "64Gi",
}}]
c.JupyterHub.custom_scopes = {{{WRITE_SCOPE!r}: {{"description": "change the lab menu"}}}}
c.JupyterHub.services.append({{
    "name": {SERVICE!r},
    "url": "http://127.0.0.1:{service_port}",
    "command": {[*command, "menu-editor"]!r},
    "oauth_client_allowed_scopes": [{WRITE_SCOPE!r}],
    "oauth_no_confirm": True,
}})
c.JupyterHub.load_roles.append(
    {{"name": "user", "scopes": ["self", "access:services!service={SERVICE}"]}}
)
c.JupyterHub.load_roles.append(
    {{"name": "lab-menu-editors", "scopes": [{WRITE_SCOPE!r}], "users": ["alice"]}}
)
# The tests make groups with the test kit's service token.
c.JupyterHub.load_roles.append(
    {{"name": "tester-groups", "scopes": ["admin:groups"], "services": ["tester"]}}
)
# The preview "as a user" asks the hub for the user's groups.
c.JupyterHub.load_roles.append(
    {{"name": "lab-menu-service", "scopes": ["read:users:groups"], "services": [{SERVICE!r}]}}
)
"""
    with EditorHub(tmp, config) as hub:
        hub.db_url = db_url
        hub.tokens = {}
        for name in ("alice", "bob"):
            status, _ = hub.request("POST", f"/users/{name}")
            assert status in (201, 409), hub.log_tail()
            status, token = hub.request("POST", f"/users/{name}/tokens", {"note": "test"})
            assert status == 201, token
            hub.tokens[name] = token["token"]
        wait_for(
            lambda: hub.call("GET", "api/menu", "bob")[0],
            "the editor's api/menu to answer 200",
            timeout=60,
            interval=0.5,
            until=lambda status: status == 200,
            detail=hub.log_tail,
        )
        yield hub
