"""Where the lab's env lives: the -env ConfigMap by envFrom; in the pod, only what cannot move.

The pod is what KubeSpawner's reflector keeps in the hub's memory for every
running lab, so its plain env moves to the ConfigMap; these tests hold each
exception to that, with the hostile KubeSpawner settings that need it.
"""

from __future__ import annotations

from typing import Any

import pytest

from lsst_spawner.config import ConfigError
from lsst_spawner.lab.errors import LabSpecError
from lsst_spawner.lab.secrets import ExtraSecret, SecretSettings
from lsst_spawner.lab.spec import LabObjects, LabRequest, build_lab_objects
from lsst_spawner.lab.traits import LabTraits
from lsst_spawner.testing.kube.podenv import resolve_lab_env

from .conftest import API_TOKEN, kubespawner_pod, make_identity, secret_data, secret_text, validate
from .test_golden import CASES, build_case

OPTIONS = LabRequest(image="sciplat-lab:w_2026_40")
SECRET_REF = {"secretKeyRef": {"name": "nb-rra-secret", "key": "jupyterhub-api-token"}}


def build(env: dict[str, Any] | None = None, **config: Any) -> LabObjects:
    traits = LabTraits(**config)
    return build_lab_objects(
        traits.lab_settings(),
        make_identity(),
        OPTIONS,
        base_pod=kubespawner_pod(env=env),
        api_token=API_TOKEN,
        secret_values=traits.lab_extra_secret_values({"HUB_BUTLER": "butler-secret-value"}),
    )


def lab_container(objects: LabObjects) -> dict[str, Any]:
    container: dict[str, Any] = objects.pod["spec"]["containers"][0]
    assert container["name"] == "notebook"
    return container


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_labs_have_no_plain_env_in_the_pod(case: str) -> None:
    objects = build_case(case)
    container = lab_container(objects)
    assert [e for e in container["env"] if "valueFrom" not in e] == []
    name = objects.env_secret["metadata"]["name"]
    assert name == objects.pod["metadata"]["name"] + "-env"
    assert container["envFrom"] == [{"secretRef": {"name": name}}]
    assert objects.env_secret["immutable"] is True
    # Every plain variable the lab sees comes from the ConfigMap.
    env = resolve_lab_env(objects.as_list())
    in_pod = {e["name"] for e in container["env"]}
    assert {k: v for k, v in env.items() if k not in in_pod} == secret_data(objects.env_secret)


def test_values_kubernetes_would_expand_stay_in_env() -> None:
    # Kubernetes expands $(VAR) and unescapes $$ in env values only, never in envFrom data.
    objects = build({"SITE_PATH": "$(HOME)/x", "PRICE": "$$5", "PLAIN": "$HOME and $5"})
    container = lab_container(objects)
    in_pod = {e["name"]: e for e in container["env"]}
    assert in_pod["SITE_PATH"] == {"name": "SITE_PATH", "value": "$(HOME)/x"}
    assert in_pod["PRICE"] == {"name": "PRICE", "value": "$$5"}
    data = secret_data(objects.env_secret)
    assert "SITE_PATH" not in data
    assert "PRICE" not in data
    assert data["PLAIN"] == "$HOME and $5"
    env = resolve_lab_env(objects.as_list())
    # $(HOME) now sees our HOME, which the ConfigMap provides before env is read.
    assert env["SITE_PATH"] == "/home/rra/x"
    assert env["PRICE"] == "$5"
    assert env["PLAIN"] == "$HOME and $5"
    for obj in objects.as_list():
        validate(obj)


@pytest.mark.parametrize("name", ["1STARTS_WITH_DIGIT", "..DOTS", "."])
def test_names_envfrom_cannot_carry_stay_in_env(name: str) -> None:
    objects = build({name: "value", "my.dotted-name": "fine"})
    in_pod = {e["name"]: e for e in lab_container(objects)["env"]}
    assert in_pod[name] == {"name": name, "value": "value"}
    assert name not in secret_data(objects.env_secret)
    assert secret_data(objects.env_secret)["my.dotted-name"] == "fine"
    assert "my.dotted-name" not in in_pod


def test_kubespawner_value_from_entries_stay_unless_we_own_the_name() -> None:
    node = {"valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
    # In Kubernetes env beats envFrom: a kept valueFrom USER would override our USER.
    user = {"valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    token = {"valueFrom": {"secretKeyRef": {"name": "site-secret", "key": "token"}}}
    objects = build({"NODE_NAME": node, "USER": user, "JUPYTERHUB_API_TOKEN": token})
    container = lab_container(objects)
    by_name = {e["name"]: e for e in container["env"]}
    assert by_name["NODE_NAME"] == {"name": "NODE_NAME", **node}
    assert "USER" not in by_name
    assert by_name["JUPYTERHUB_API_TOKEN"]["valueFrom"] == SECRET_REF
    assert sorted(by_name) == ["JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN", "NODE_NAME"]
    assert secret_data(objects.env_secret)["USER"] == "rra"
    assert resolve_lab_env(objects.as_list())["USER"] == "rra"


def test_our_value_from_and_expandable_entries_stay_in_env() -> None:
    objects = build(
        lab_env={"TOOLS": "$(HOME)/tools", "SITE": "x"},
        lab_extra_secrets=[{"key": "butler", "hub_env": "HUB_BUTLER", "env": "BUTLER_TOKEN"}],
    )
    by_name = {e["name"]: e for e in lab_container(objects)["env"]}
    assert by_name["TOOLS"] == {"name": "TOOLS", "value": "$(HOME)/tools"}
    assert by_name["BUTLER_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "butler"
    assert secret_data(objects.env_secret)["SITE"] == "x"
    env = resolve_lab_env(objects.as_list())
    assert env["TOOLS"] == "/home/rra/tools"
    assert env["BUTLER_TOKEN"] == "butler-secret-value"


def test_envfrom_is_appended_after_kubespawners_own() -> None:
    site = {"secretRef": {"name": "site-env"}}
    base = kubespawner_pod(extra_container_config={"envFrom": [site]})
    traits = LabTraits()
    objects = build_lab_objects(
        traits.lab_settings(), make_identity(), OPTIONS, base_pod=base, api_token=API_TOKEN
    )
    # A later envFrom source wins over earlier ones: ours, last, beats the site's.
    assert lab_container(objects)["envFrom"] == [site, {"secretRef": {"name": "nb-rra-env"}}]


# --- the NSS files in the Secret -------------------------------------------------


def volume(objects: LabObjects, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(v for v in objects.pod["spec"]["volumes"] if v["name"] == name)
    return found


@pytest.mark.parametrize("case", sorted(CASES))
def test_secret_directory_lists_exactly_the_secrets(case: str) -> None:
    objects = build_case(case)
    secrets = volume(objects, "lab-secrets")["secret"]
    keys = [item["key"] for item in secrets["items"]]
    assert "passwd" not in keys
    assert "group" not in keys
    assert [item["path"] for item in secrets["items"]] == keys
    assert set(keys) == set(objects.secret["data"]) - {"passwd", "group"}
    assert keys[0] == "jupyterhub-api-token"


def test_nss_files_come_from_the_secret_and_are_mounted_alone() -> None:
    objects = build()
    nss = volume(objects, "lab-nss")
    assert nss == {
        "name": "lab-nss",
        "secret": {
            "secretName": "nb-rra-secret",
            "defaultMode": 0o444,
            "items": [{"key": "passwd", "path": "passwd"}, {"key": "group", "path": "group"}],
        },
    }
    mounts = {m["mountPath"]: m for m in lab_container(objects)["volumeMounts"]}
    assert mounts["/etc/passwd"] == {
        "name": "lab-nss",
        "mountPath": "/etc/passwd",
        "subPath": "passwd",
        "readOnly": True,
    }
    assert mounts["/etc/group"]["subPath"] == "group"
    assert secret_text(objects.secret, "passwd").endswith(
        "rra:x:4137:4137:Russ Allbery:/home/rra:/bin/bash\n"
    )
    assert "passwd" not in secret_data(objects.env_secret)


def test_an_extra_secret_named_passwd_is_a_config_problem() -> None:
    config = {"lab_extra_secrets": [{"key": "passwd", "hub_env": "HUB_PASSWD"}]}
    found = [str(p) for p in LabTraits(**config).config_problems()]
    assert found == [
        "LSSTSpawner.lab_extra_secrets[0].key: 'passwd' is reserved: the lab Secret holds "
        "jupyterhub-api-token, git-credentials, passwd, group"
    ]
    with pytest.raises(ConfigError, match="'passwd' is reserved"):
        LabTraits(**config).lab_settings()


def test_the_builder_refuses_an_extra_secret_on_an_nss_key_too() -> None:
    # Settings built without the trait checks (a library user): still refused.
    from lsst_spawner.lab.spec import LabSettings, build_lab_spec

    settings = LabTraits().lab_settings()
    hostile = LabSettings(
        sizes=settings.sizes,
        default_size=settings.default_size,
        secrets=SecretSettings(extra=(ExtraSecret("group"),)),
    )
    with pytest.raises(LabSpecError, match="key 'group' is reserved"):
        build_lab_spec(
            hostile, make_identity(), OPTIONS, api_token=API_TOKEN, secret_values={"group": "x"}
        )
