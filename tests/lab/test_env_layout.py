"""Where the lab's env lives: in the pod, plain values first; long values in the lab's Secret.

A lab has one Secret besides its pod (one write more than KubeSpawner). Its
plain env variables are literal ``env`` entries, sorted, except values over
``INLINE_MAX`` characters, which are the Secret's ``env.<NAME>`` keys read by
``secretKeyRef``; entries Kubernetes would expand, ``valueFrom`` entries and
names no Secret key can hold follow, in their order. These tests hold each
rule with the hostile KubeSpawner settings that need it, and the environment
the lab sees, resolved as the kubelet resolves it.
"""

from __future__ import annotations

from typing import Any

import pytest

from lsst_spawner.config import ConfigError
from lsst_spawner.lab.env import INLINE_MAX
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


def env_data(objects: LabObjects) -> dict[str, str]:
    """The env values kept in the lab's Secret, by variable name."""
    data = secret_data(objects.secret)
    return {k.removeprefix("env."): v for k, v in data.items() if k.startswith("env.")}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_labs_have_one_secret_and_their_plain_env_first(case: str) -> None:
    objects = build_case(case)
    assert [obj["kind"] for obj in objects.as_list()] == ["Secret", "Pod"]
    container = lab_container(objects)
    assert "envFrom" not in container
    env = container["env"]

    def is_plain(entry: dict[str, Any]) -> bool:
        ref = entry.get("valueFrom", {}).get("secretKeyRef", {})
        return "value" in entry or ref.get("key", "").startswith("env.")

    plain = [e["name"] for e in env if is_plain(e)]
    assert plain == sorted(plain)
    # Every plain entry comes before every other: $(VAR) sees all of them.
    assert [e["name"] for e in env[: len(plain)]] == plain
    for entry in env:
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None and ref["key"].startswith("env."):
            assert ref == {
                "name": objects.secret["metadata"]["name"],
                "key": "env." + entry["name"],
            }


def test_values_kubernetes_would_expand_stay_literal_after_the_plain_ones() -> None:
    # Kubernetes expands $(VAR) and unescapes $$ in env values only, never in a key's data.
    long = "x" * (INLINE_MAX + 1)
    objects = build(
        {"SITE_PATH": "$(HOME)/x", "PRICE": "$$5", "PLAIN": "$HOME and $5", "A_LONG": long}
    )
    container = lab_container(objects)
    names = [e["name"] for e in container["env"]]
    in_pod = {e["name"]: e for e in container["env"]}
    assert in_pod["SITE_PATH"] == {"name": "SITE_PATH", "value": "$(HOME)/x"}
    assert in_pod["PRICE"] == {"name": "PRICE", "value": "$$5"}
    assert in_pod["PLAIN"] == {"name": "PLAIN", "value": "$HOME and $5"}
    assert names.index("SITE_PATH") > names.index("HOME")
    assert names.index("SITE_PATH") > names.index("USER")
    assert env_data(objects) == {"A_LONG": long}
    env = resolve_lab_env(objects.as_list())
    assert env["SITE_PATH"] == "/home/rra/x"
    assert env["PRICE"] == "$5"
    assert env["PLAIN"] == "$HOME and $5"
    assert env["A_LONG"] == long
    for obj in objects.as_list():
        validate(obj)


def test_a_long_value_is_read_from_the_secret_and_a_short_one_is_literal() -> None:
    at_limit, over = "y" * INLINE_MAX, "z" * (INLINE_MAX + 1)
    objects = build({"AT_LIMIT": at_limit, "OVER": over})
    in_pod = {e["name"]: e for e in lab_container(objects)["env"]}
    assert in_pod["AT_LIMIT"] == {"name": "AT_LIMIT", "value": at_limit}
    assert in_pod["OVER"] == {
        "name": "OVER",
        "valueFrom": {"secretKeyRef": {"name": "nb-rra-secret", "key": "env.OVER"}},
    }
    assert over not in str(objects.pod)
    assert secret_text(objects.secret, "env.OVER") == over


def test_many_groups_go_by_reference() -> None:
    groups = [{"name": f"group-{i:04d}", "gid": 100_000 + i} for i in range(200)]
    traits = LabTraits()
    objects = build_lab_objects(
        traits.lab_settings(),
        make_identity(groups=groups),
        OPTIONS,
        base_pod=kubespawner_pod(),
        api_token=API_TOKEN,
    )
    value = resolve_lab_env(objects.as_list())["EXTERNAL_GROUPS"]
    assert value.startswith("group-0000:100000,")
    assert env_data(objects)["EXTERNAL_GROUPS"] == value
    assert "group-0199" not in str(objects.pod)


@pytest.mark.parametrize("name", ["NAME WITH SPACE", "a=b", "caf\u00e9"])
def test_names_no_secret_key_can_hold_stay_literal(name: str) -> None:
    long = "v" * (INLINE_MAX + 1)
    objects = build({name: long, "my.dotted-name": long})
    in_pod = {e["name"]: e for e in lab_container(objects)["env"]}
    assert in_pod[name] == {"name": name, "value": long}
    assert in_pod["my.dotted-name"]["valueFrom"]["secretKeyRef"]["key"] == "env.my.dotted-name"
    assert set(env_data(objects)) == {"my.dotted-name"}


def test_kubespawner_value_from_entries_stay_unless_we_own_the_name() -> None:
    node = {"valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
    # A kept valueFrom USER would override our USER.
    user = {"valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    token = {"valueFrom": {"secretKeyRef": {"name": "site-secret", "key": "token"}}}
    objects = build({"NODE_NAME": node, "USER": user, "JUPYTERHUB_API_TOKEN": token})
    container = lab_container(objects)
    by_name = {e["name"]: e for e in container["env"]}
    assert by_name["NODE_NAME"] == {"name": "NODE_NAME", **node}
    assert by_name["USER"] == {"name": "USER", "value": "rra"}
    assert by_name["JUPYTERHUB_API_TOKEN"]["valueFrom"] == SECRET_REF
    assert [e["name"] for e in container["env"]].count("USER") == 1
    assert resolve_lab_env(objects.as_list())["USER"] == "rra"


def test_our_value_from_and_expandable_entries_stay_in_env() -> None:
    objects = build(
        lab_env={"TOOLS": "$(HOME)/tools", "SITE": "x"},
        lab_extra_secrets=[{"key": "butler", "hub_env": "HUB_BUTLER", "env": "BUTLER_TOKEN"}],
    )
    by_name = {e["name"]: e for e in lab_container(objects)["env"]}
    assert by_name["TOOLS"] == {"name": "TOOLS", "value": "$(HOME)/tools"}
    assert by_name["BUTLER_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "butler"
    assert by_name["SITE"] == {"name": "SITE", "value": "x"}
    env = resolve_lab_env(objects.as_list())
    assert env["TOOLS"] == "/home/rra/tools"
    assert env["BUTLER_TOKEN"] == "butler-secret-value"


def test_a_sites_envfrom_is_kept_and_our_env_still_wins() -> None:
    site = {"secretRef": {"name": "site-env"}}
    base = kubespawner_pod(extra_container_config={"envFrom": [site]})
    traits = LabTraits()
    objects = build_lab_objects(
        traits.lab_settings(), make_identity(), OPTIONS, base_pod=base, api_token=API_TOKEN
    )
    assert lab_container(objects)["envFrom"] == [site]
    site_secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "site-env"},
        "data": {"USER": "bWFsbG9yeQ==", "SITE_ONLY": "eWVz"},
    }
    env = resolve_lab_env([site_secret, *objects.as_list()])
    assert env["USER"] == "rra"
    assert env["SITE_ONLY"] == "yes"


# --- the NSS files in the Secret -------------------------------------------------


def volume(objects: LabObjects, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(v for v in objects.pod["spec"]["volumes"] if v["name"] == name)
    return found


@pytest.mark.parametrize("case", sorted(CASES))
def test_secret_directory_lists_exactly_the_secrets(case: str) -> None:
    objects = build_case(case)
    found = volume(objects, "lab-secrets")
    # A projected volume when site secrets come by reference: the lab Secret's source first.
    sources = found["projected"]["sources"] if "projected" in found else [found]
    secrets = sources[0]["secret"]
    assert secrets.get("name", secrets.get("secretName")) == objects.secret["metadata"]["name"]
    keys = [item["key"] for item in secrets["items"]]
    assert [item["path"] for item in secrets["items"]] == keys
    stored = set(objects.secret["data"]) - {"passwd", "group"}
    assert set(keys) == {k for k in stored if not k.startswith(("env.", "file."))}
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
    assert "passwd" not in {e["name"] for e in lab_container(objects)["env"]}


def test_an_extra_secret_named_passwd_is_a_config_problem() -> None:
    config = {"lab_extra_secrets": [{"key": "passwd", "hub_env": "HUB_PASSWD"}]}
    found = [str(p) for p in LabTraits(**config).config_problems()]
    assert found == [
        "LSSTSpawner.lab_extra_secrets[0].key: 'passwd' is reserved: the lab Secret holds "
        "jupyterhub-api-token, git-credentials, passwd, group, env.*, file.*"
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
