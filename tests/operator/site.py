"""One site configuration, and the same lab built in-hub and by the operator's builders."""

from __future__ import annotations

import copy
from typing import Any

from traitlets.config import Config

from lsst_spawner.checks import spawner_settings
from lsst_spawner.crd.declare import (
    API_TOKEN_KEY,
    GIT_TOKEN_KEY,
    build_lab_server,
    hub_env_from,
)
from lsst_spawner.crd.from_config import base_pod_for, offline_spawner, template_lab_menu
from lsst_spawner.crd.template import SENTINEL_SERVER, SENTINEL_USER, template_from_settings
from lsst_spawner.form.image import lab_image
from lsst_spawner.identity import Identity
from lsst_spawner.operator.build import (
    SERVER_LABEL,
    build_server_objects,
    parse_lab_server,
    read_template,
)

API_TOKEN = "hubtoken-0123456789abcdef0123"
GIT_TOKEN = "gho_GitTokenValue0123456789"
NAMESPACE = "labs"
IMAGE_BASE = "registry.example/sciplat-lab"
DIGEST = "sha256:" + "b" * 64


def site_config(**lsst: Any) -> Config:
    """A site: static menu, site volumes, init container, KubeSpawner settings with variables."""
    config = Config()
    config.JupyterHub.spawner_class = "lsst"
    config.KubeSpawner.namespace = NAMESPACE
    config.KubeSpawner.extra_labels = {"site.example/user": "{username}"}
    config.KubeSpawner.environment = {"SITE_USER": "{unescaped_username}", "SRV": "{servername}"}
    config.KubeSpawner.node_selector = {"lab-node": "true"}
    config.KubeSpawner.extra_annotations = {"site.example/server": "{user_server}"}
    values: dict[str, Any] = {
        "image_source": "static",
        "static_image_base": IMAGE_BASE,
        "static_image_tags": ["w_2026_40", "w_2026_39", "r29"],
        "static_image_digests": {"w_2026_40": DIGEST},
        "image_recommended_tag": "w_2026_40",
        "lab_fs_group": 2000,
        "lab_volumes": [
            {"name": "home", "nfs": {"server": "nfs.example.org", "path": "/export/home"}},
            {"name": "scratch", "hostPath": {"path": "/scratch/{unescaped_username}"}},
        ],
        "lab_volume_mounts": [
            {"mount_path": "/home", "volume": "home"},
            {"mount_path": "/scratch", "volume": "scratch"},
        ],
        "lab_init_enabled": True,
        "lab_init_image": "registry.example/init:1.2.3",
        "lab_init_volume_mounts": [{"mount_path": "/home", "volume": "home"}],
        "lab_env": {"EXTERNAL_INSTANCE_URL": "https://data.example.org"},
        "lab_no_activity_timeout": "1d",
        **lsst,
    }
    for name, value in values.items():
        config.LSSTSpawner[name] = value
    return config


def identity(username: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "username": username,
        "uid": 4137,
        "gid": 4137,
        "groups": [{"name": "users", "gid": 4137}, {"name": "lsst-sqre", "gid": 3010}],
        "name": "Russ Allbery",
        "email": "rra@example.org",
        "git_token": GIT_TOKEN,
        **overrides,
    }
    return data


async def template_for(config: Config) -> dict[str, Any]:
    """The LabTemplate ``template-from-config`` writes for ``config``."""
    pod = await base_pod_for(config, SENTINEL_USER, SENTINEL_SERVER)
    template = template_from_settings(
        spawner_settings(config), pod, name="lab", namespace=NAMESPACE
    )
    lab_menu = template_lab_menu(config)
    if lab_menu is not None:
        template["spec"]["labMenu"] = lab_menu
    return template


async def in_hub_objects(
    config: Config, username: str, servername: str, options: dict[str, Any]
) -> list[dict[str, Any]]:
    """What LSSTSpawner creates in-hub for this server (its render path, offline)."""
    auth_state = {"identity": identity(username)}
    with offline_spawner(config, username, servername, auth_state) as spawner:
        spawner.api_token = API_TOKEN
        spawner.user_options = copy.deepcopy(options)
        spawner.lab_options_fresh = True
        objects: list[dict[str, Any]] = await spawner.render_lab_objects()
    return objects


async def declared_lab_server(
    config: Config, username: str, servername: str, options: dict[str, Any]
) -> dict[str, Any]:
    """The LabServer the hub declares for this server (from the same spawner)."""
    auth_state = {"identity": identity(username)}
    with offline_spawner(config, username, servername, auth_state) as spawner:
        spawner.api_token = API_TOKEN
        spawner.user_options = copy.deepcopy(options)
        spawner.lab_options_fresh = True
        chosen = await spawner.validate_user_options()
        env = spawner.get_env()
    return build_lab_server(
        username=username,
        servername=servername,
        namespace=NAMESPACE,
        template="lab",
        identity=Identity.from_auth_state(auth_state),
        image=lab_image(chosen.image).reference,
        size=chosen.size,
        enable_debug=chosen.enable_debug,
        reset_user_env=chosen.reset_user_env,
        hub_env=hub_env_from(env),
    )


async def operator_objects(
    template: dict[str, Any], lab_server: dict[str, Any]
) -> list[dict[str, Any]]:
    """What the operator builds for the LabServer (its pure builder)."""
    site = read_template(template)
    menu = await site.traits.get_menu()
    body = copy.deepcopy(lab_server)
    body["metadata"]["uid"] = "0000-uid"
    objects = await build_server_objects(
        parse_lab_server(body),
        site,
        menu,
        {API_TOKEN_KEY: API_TOKEN, GIT_TOKEN_KEY: GIT_TOKEN},
        namespace=NAMESPACE,
    )
    return objects.as_list()


def without_owner(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects without what only operator mode adds: owner references, the server label."""
    result = copy.deepcopy(objects)
    for obj in result:
        obj["metadata"].pop("ownerReferences", None)
        obj["metadata"]["labels"].pop(SERVER_LABEL, None)
    return result
