"""Hostile identities and config: each rejected or neutralized, tested with the input itself."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from lsst_spawner.config import ConfigError
from lsst_spawner.identity import IdentityError
from lsst_spawner.lab.errors import LabSpecError
from lsst_spawner.lab.names import build_object_names
from lsst_spawner.lab.nss import NssSettings, build_nss_files, neutralize_gecos, parse_passwd
from lsst_spawner.lab.secrets import find_literal_secrets
from lsst_spawner.lab.spec import LabRequest, apply_lab_spec, build_lab_objects, build_lab_spec
from lsst_spawner.lab.traits import LabTraits
from lsst_spawner.testing.kube.podenv import resolve_lab_env

from .conftest import API_TOKEN, kubespawner_pod, make_identity, secret_text, validate

OPTIONS = LabRequest(image="sciplat-lab:w_2026_40")


def build(identity_overrides: dict[str, Any], **config: Any) -> Any:
    traits = LabTraits(**config)
    return build_lab_objects(
        traits.lab_settings(),
        make_identity(**identity_overrides),
        OPTIONS,
        base_pod=kubespawner_pod(),
        api_token=API_TOKEN,
    )


def problems(**config: Any) -> list[str]:
    return [str(p) for p in LabTraits(**config).config_problems()]


# --- identities ---------------------------------------------------------------


@pytest.mark.parametrize(
    "hostile_name",
    [
        "Evil:0:0:root:/root:/bin/sh",
        "Mallory, Room 101, 555-1234",
        "x" * 256,
    ],
)
def test_gecos_cannot_add_lines_or_fields(hostile_name: str) -> None:
    objects = build({"name": hostile_name})
    passwd = secret_text(objects.secret, "passwd")
    lines = passwd.splitlines()
    assert len(lines) == 3
    assert all(len(line.split(":")) == 7 for line in lines)
    user = lines[-1].split(":")
    assert user[0] == "rra"
    assert user[2:4] == ["4137", "4137"]
    assert ":" not in user[4]
    assert "," not in user[4]
    assert user[4].isprintable()
    # git author name stays one printable line too.
    env = resolve_lab_env(objects.as_list())
    assert "\n" not in env["GIT_AUTHOR_NAME"]
    assert env["GIT_AUTHOR_NAME"].isprintable()


@pytest.mark.parametrize(
    "hostile_name",
    ["Evil\nroot2:x:0:0::/root:/bin/sh", "Evil\r\nx:x:0:0::/:/bin/sh", "Tab\tand\x00nul\x1b[31m"],
)
def test_names_with_control_characters_are_refused_and_gecos_neutralizes_them(
    hostile_name: str,
) -> None:
    with pytest.raises(IdentityError, match="control, bidi and invisible characters"):
        make_identity(name=hostile_name)
    # The GECOS builder stays safe on its own, whatever reaches it.
    gecos = neutralize_gecos(hostile_name)
    assert gecos.isprintable()
    assert ":" not in gecos
    assert "," not in gecos


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "rra:x:0:0"),
        ("username", "rra\nroot"),
        ("username", "Rra"),
        ("groups", [{"name": "grp:x:0:", "gid": 3000}]),
        ("groups", [{"name": "grp,root", "gid": 3000}]),
        ("groups", [{"name": "grp\nroot", "gid": 3000}]),
    ],
)
def test_identity_fields_that_would_add_fields_are_rejected(field: str, value: Any) -> None:
    with pytest.raises(IdentityError):
        make_identity(**{field: value})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"uid": 0}, "uid 0 is below LSSTSpawner.lab_minimum_uid"),
        ({"gid": 0}, "gid 0 is below"),
        ({"groups": [{"name": "wheel", "gid": 0}]}, "gid 0 (the root group)"),
        ({"username": "root", "uid": 5000}, "collides with the system user 'root'"),
        ({"uid": 65534}, "collides with the system user 'nobody'"),
        ({"groups": [{"name": "root", "gid": 3000}]}, "collides with the system group 'root'"),
    ],
)
def test_dangerous_identities_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(LabSpecError) as excinfo:
        build(overrides)
    assert message in str(excinfo.value)


def test_minimum_uid_is_configurable() -> None:
    with pytest.raises(LabSpecError, match="uid 999 is below"):
        build({"uid": 999, "gid": 5000}, lab_minimum_uid=1000)


def test_five_thousand_groups_are_refused_by_default() -> None:
    groups = [{"name": f"g{i}", "gid": 10000 + i} for i in range(5000)]
    with pytest.raises(LabSpecError, match=r"5000 groups, more than LSSTSpawner\.lab_max_groups"):
        build({"groups": groups})


def test_many_groups_up_to_the_limit_fit_the_kernel_env_limit() -> None:
    groups = [
        {"name": f"group-with-a-long-name-{i:09d}", "gid": 4_000_000_000 + i} for i in range(2048)
    ]
    objects = build({"groups": groups}, lab_max_groups=2048)
    env = resolve_lab_env(objects.as_list())
    assert len(env["EXTERNAL_GROUPS"].encode()) < 128 * 1024
    assert len(secret_text(objects.secret, "group").splitlines()) == 2 + 2048 + 1
    assert len(objects.pod["spec"]["securityContext"]["supplementalGroups"]) == 2048
    for obj in objects.as_list():
        validate(obj)


def test_five_thousand_groups_in_the_nss_builder_stay_one_line_each() -> None:
    identity = make_identity(groups=[{"name": f"g{i}", "gid": 10000 + i} for i in range(5000)])
    group = build_nss_files(identity, NssSettings())["group"]
    lines = group.splitlines()
    assert len(lines) == 2 + 5000 + 1  # base, groups, and the primary group named after the user
    assert all(line.count(":") == 3 and line.endswith(":rra") for line in lines[2:-1])


def test_existing_group_with_same_gid_gains_the_user() -> None:
    identity = make_identity(groups=[{"name": "nogroup", "gid": 65534}])
    group = build_nss_files(identity, NssSettings())["group"]
    assert "nogroup:x:65534:rra\n" in group
    assert "rra:x:4137:\n" in group  # the primary group, named after the user


# --- NSS config -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"lab_extra_users": [{"name": "svc:x", "uid": 10, "gid": 10}]}, "lab_extra_users[0].name"),
        (
            {"lab_extra_users": [{"name": "svc", "uid": 10, "gid": 10, "home": "/x\nroot::0:0"}]},
            "lab_extra_users[0].home",
        ),
        (
            {"lab_extra_users": [{"name": "svc", "uid": 10, "gid": 10, "gecos": "a:b"}]},
            "lab_extra_users[0].gecos",
        ),
        ({"lab_extra_users": [{"name": "svc", "uid": -1, "gid": 10}]}, "lab_extra_users[0].uid"),
        ({"lab_extra_users": [{"name": "svc", "uid": True, "gid": 10}]}, "lab_extra_users[0].uid"),
        (
            {"lab_extra_groups": [{"name": "g", "gid": 10, "members": ["a,b"]}]},
            "lab_extra_groups[0].members[0]",
        ),
        (
            {"lab_extra_groups": [{"name": "g", "gid": 10, "members": "abc"}]},
            "lab_extra_groups[0].members",
        ),
        ({"lab_extra_groups": [{"name": "root", "gid": 10}]}, "lab_extra_users/lab_extra_groups"),
        ({"lab_base_passwd": "root:x:0:0:root:/root:/bin/bash:extra\n"}, "lab_base_passwd"),
        ({"lab_base_group": "root:x:zero:\n"}, "lab_base_group"),
        ({"lab_home_directory": "home/{unescaped_username}"}, "lab_home_directory"),
        ({"lab_home_directory": "/home/{user}"}, "lab_home_directory"),
        ({"lab_shell": "bash"}, "lab_shell"),
    ],
)
def test_hostile_nss_config_is_a_problem(config: dict[str, Any], where: str) -> None:
    found = problems(**config)
    assert any(p.startswith(f"LSSTSpawner.{where}") for p in found), found
    with pytest.raises(ConfigError):
        LabTraits(**config).lab_settings()


def test_base_files_are_reserialized_from_fields() -> None:
    users = parse_passwd("# comment\n\nroot:x:0:0:root,,,:/root:/bin/bash\n")
    assert [u.line() for u in users] == ["root:x:0:0:root,,,:/root:/bin/bash"]


# --- names ----------------------------------------------------------------------


def test_pod_names_are_distinct_dns_labels_for_similar_usernames() -> None:
    usernames = ["rra", "Rra", "RRA", "r.ra", "r-ra", "r_ra", "rra-", "x" * 64, "x" * 63 + "y"]
    names = [build_object_names("nb-{username}", u)["pod"] for u in usernames]
    assert len(set(names)) == len(usernames)
    for name in names:
        validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
        assert len(name) <= 56


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("nb-lab", "must contain {username}"),
        ("nb-{username}-" + "x" * 40, "not a DNS label"),
        ("NB-{username}", "not a DNS label"),
        ("nb-{username}-{servername}", "as {username}--{servername}"),
        ("nb-{username}--{servername}", "not a DNS label"),  # too long for long names
        ("nb-{username}-{server}", "unknown placeholder {server}"),
    ],
)
def test_bad_pod_name_templates_are_problems(template: str, message: str) -> None:
    found = problems(lab_pod_name_template=template)
    assert len(found) == 1
    assert found[0].startswith("LSSTSpawner.lab_pod_name_template: ")
    assert message in found[0]


# --- secrets ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "where"),
    [
        # A short plain value stays in the pod's env: refused there, naming the entry.
        (API_TOKEN, r"\$\.pod\.spec\.containers\[0\]\.env\[\d+\]\.value: api_token"),
        (f"Bearer {API_TOKEN}", r"\$\.pod\.spec\.containers\[0\]\.env\[\d+\]\.value: api_token"),
        # A long one moves to the lab's Secret: refused there, naming the key.
        ("x" * 600 + API_TOKEN, r"\$\.env\.env\.MY_TOKEN_COPY: api_token"),
        # One with $( stays in the pod's env, after the plain ones.
        (f"$(HOME)/{API_TOKEN}", r"\$\.pod\.spec\.containers\[0\]\.env\[\d+\]\.value: api_token"),
    ],
)
def test_literal_secret_from_kubespawner_environment_is_refused(value: str, where: str) -> None:
    traits = LabTraits()
    base = kubespawner_pod(env={"MY_TOKEN_COPY": value})
    with pytest.raises(LabSpecError, match=where) as info:
        build_lab_objects(
            traits.lab_settings(), make_identity(), OPTIONS, base_pod=base, api_token=API_TOKEN
        )
    assert API_TOKEN not in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        'quote"and\\backslash-value',
        "caf\u00e9-\u2603-snowman-token",
        "emoji-\U0001f511-key-token",
        "tab\tand\nnewline-token",
        "</script><b>html-token",
    ],
)
def test_secret_values_needing_json_escapes_are_found(value: str) -> None:
    pod = {"spec": {"containers": [{"env": [{"name": "X", "value": f"pre{value}post"}]}]}}
    assert find_literal_secrets(pod, {"tok": value}) == ["$.spec.containers[0].env[0].value: tok"]
    as_json = json.dumps(pod)
    assert find_literal_secrets(pod, {"tok": value}, as_json=as_json) == [
        "$.spec.containers[0].env[0].value: tok"
    ]


def test_secret_value_only_in_a_key_or_across_values_is_not_a_leak() -> None:
    secret = "abcdefgh-secret"
    pod = {"metadata": {"labels": {secret: "x"}}, "spec": {"a": ["abcdefgh", "-secret"]}}
    assert find_literal_secrets(pod, {"tok": secret}) == []
    # ...but each string holding it is named, wherever it is.
    pod["spec"]["b"] = {"c": [f"x{secret}", secret]}
    assert find_literal_secrets(pod, {"tok": secret}) == [
        "$.spec.b.c[0]: tok",
        "$.spec.b.c[1]: tok",
    ]


def test_short_and_empty_secret_values_are_not_searched() -> None:
    pod = {"spec": {"x": "abc", "y": ""}}
    assert find_literal_secrets(pod, {"short": "abc", "empty": ""}) == []


def test_apply_lab_spec_changes_neither_input_and_shares_nothing() -> None:
    traits = LabTraits(lab_init_enabled=True)
    identity = make_identity()
    base = kubespawner_pod(env={"SITE": "kept"})
    spec = build_lab_spec(traits.lab_settings(), identity, OPTIONS, api_token=API_TOKEN)
    base_before, spec_before = json.dumps(base), repr(spec)
    objects = apply_lab_spec(base, spec)
    again = apply_lab_spec(base, spec)
    assert json.dumps(base) == base_before
    assert repr(spec) == spec_before
    assert objects == again
    pod = objects.pod
    pod["spec"]["containers"][0]["env"][-1]["name"] = "CHANGED"
    pod["spec"]["containers"][0]["env"][0]["value"] = "CHANGED"
    pod["spec"]["volumes"][0]["secret"]["items"][0]["key"] = "CHANGED"
    pod["metadata"]["labels"]["x"] = "y"
    objects.secret["data"]["passwd"] = "CHANGED"
    objects.secret["metadata"]["labels"]["x"] = "y"
    assert json.dumps(base) == base_before
    assert repr(spec) == spec_before
    assert apply_lab_spec(base, spec) == again


def test_git_token_is_url_encoded_in_the_credential_file() -> None:
    objects = build({"git_token": "tok/with@odd:chars"})
    import base64

    data = base64.b64decode(objects.secret["data"]["git-credentials"]).decode()
    assert data == "https://rra:tok%2Fwith%40odd%3Achars@github.com\n"
    assert "tok/with@odd:chars" not in json.dumps(objects.pod)


def build_with_extra_secret(hub_environ: dict[str, str]) -> Any:
    """A lab with one extra secret, ``butler``, read from ``hub_environ["SITE_BUTLER"]``."""
    traits = LabTraits(lab_extra_secrets=[{"key": "butler", "hub_env": "SITE_BUTLER"}])
    return build_lab_objects(
        traits.lab_settings(),
        make_identity(),
        OPTIONS,
        base_pod=kubespawner_pod(),
        api_token=API_TOKEN,
        secret_values=traits.lab_extra_secret_values(hub_environ),
    )


def test_missing_extra_secret_value_fails_the_spawn() -> None:
    with pytest.raises(LabSpecError, match="no value for secret 'butler'"):
        build_with_extra_secret({})


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        ({"key": "git-credentials", "hub_env": "X"}, "lab_extra_secrets[0].key"),
        # The NSS files share the Secret: an extra secret may not replace them.
        ({"key": "passwd", "hub_env": "X"}, "lab_extra_secrets[0].key"),
        ({"key": "group", "hub_env": "X", "env": "GROUP_FILE"}, "lab_extra_secrets[0].key"),
        ({"key": "../etc/passwd", "hub_env": "X"}, "lab_extra_secrets[0].key"),
        ({"key": "k", "hub_env": "X", "env": "JUPYTERHUB_API_TOKEN"}, "lab_extra_secrets[0].env"),
        ({"key": "k", "hub_env": "X Y"}, "lab_extra_secrets[0].hub_env"),
        ({"key": "k", "hub_env": "X", "value": "literal"}, "lab_extra_secrets[0]"),
    ],
)
def test_bad_extra_secrets_are_problems(entry: dict[str, Any], where: str) -> None:
    found = problems(lab_extra_secrets=[entry])
    assert any(p.startswith(f"LSSTSpawner.{where}: ") for p in found), found


@pytest.mark.parametrize("name", ["HOME", "JUPYTERHUB_API_TOKEN", "CULL_KERNEL_INTERVAL", "1BAD"])
def test_lab_env_cannot_set_owned_or_invalid_names(name: str) -> None:
    found = problems(lab_env={name: "x"})
    assert found
    assert found[0].startswith(f"LSSTSpawner.lab_env[{name!r}]")


# --- system groups, duplicate gids and size limits (issue 13) ----------------------


def test_minimum_uid_and_gid_default_to_1000() -> None:
    with pytest.raises(
        LabSpecError, match=r"uid 999 is below LSSTSpawner\.lab_minimum_uid \(1000\)"
    ):
        build({"uid": 999, "gid": 5000})
    with pytest.raises(
        LabSpecError, match=r"gid 999 is below LSSTSpawner\.lab_minimum_gid \(1000\)"
    ):
        build({"uid": 5000, "gid": 999, "groups": []})
    build({"uid": 1000, "gid": 1000, "groups": []})


def test_minimum_gid_is_its_own_trait() -> None:
    build({"uid": 5000, "gid": 500, "groups": []}, lab_minimum_gid=100)
    with pytest.raises(LabSpecError, match=r"lab_minimum_gid \(600\)"):
        build({"uid": 5000, "gid": 500, "groups": []}, lab_minimum_gid=600)


SYSTEM_GROUPS = [
    {"name": "tty", "gid": 5},
    {"name": "disk", "gid": 6},
    {"name": "wheel", "gid": 10},
    {"name": "sudo", "gid": 27},
    {"name": "shadow", "gid": 42},
    {"name": "docker", "gid": 999},
]


def test_supplementary_system_gids_are_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    groups = [{"name": "rra", "gid": 4137}, *SYSTEM_GROUPS, {"name": "lsst", "gid": 3010}]
    with caplog.at_level(logging.WARNING):
        objects = build({"groups": groups})
    context = objects.pod["spec"]["securityContext"]
    assert context["supplementalGroups"] == [4137, 3010]
    group = secret_text(objects.secret, "group")
    for name in ("tty", "disk", "wheel", "sudo", "shadow", "docker"):
        assert f"\n{name}:" not in group
    env = resolve_lab_env(objects.as_list())
    assert env["EXTERNAL_GROUPS"] == "rra:4137,lsst:3010"
    assert (
        "Dropping group(s) tty (5), disk (6), wheel (10), sudo (27), shadow (42), docker (999) "
        "of rra from the lab" in caplog.text
    )


def test_allowed_system_gids_are_kept() -> None:
    groups = [{"name": "rra", "gid": 4137}, {"name": "users", "gid": 100}, *SYSTEM_GROUPS]
    objects = build({"groups": groups}, lab_allowed_system_gids=[100])
    assert objects.pod["spec"]["securityContext"]["supplementalGroups"] == [4137, 100]
    assert "users:x:100:rra\n" in secret_text(objects.secret, "group")


def test_duplicate_gids_give_one_group_line() -> None:
    groups = [
        {"name": "rra", "gid": 4137},
        {"name": "lsst", "gid": 3010},
        {"name": "lsst-alias", "gid": 3010},
        {"name": "nobody-else", "gid": 65534},  # nogroup's gid in the base file
    ]
    objects = build({"groups": groups})
    lines = secret_text(objects.secret, "group").splitlines()
    gids = [line.split(":")[2] for line in lines]
    assert len(gids) == len(set(gids)), lines
    assert "lsst:x:3010:rra" in lines
    assert "nogroup:x:65534:rra" in lines
    assert objects.pod["spec"]["securityContext"]["supplementalGroups"] == [4137, 3010, 65534]


def build_with_kubespawner_env(env: dict[str, str]) -> Any:
    return build_lab_objects(
        LabTraits().lab_settings(),
        make_identity(),
        OPTIONS,
        base_pod=kubespawner_pod(env=env),
        api_token=API_TOKEN,
    )


def test_an_environment_string_over_128_kib_is_refused_before_any_write() -> None:
    with pytest.raises(LabSpecError) as excinfo:
        build_with_kubespawner_env({"SITE_BANNER": "x" * (128 * 1024)})
    assert str(excinfo.value) == (
        "the lab's environment (Secret nb-rra-secret) variable SITE_BANNER is 128.0 KiB, over "
        "the kernel's 128.0 KiB limit on one environment string: the lab could not start"
    )
    # One byte less fits: NAME=value and its NUL are 128 KiB exactly.
    build_with_kubespawner_env({"SITE_BANNER": "x" * (128 * 1024 - len("SITE_BANNER=") - 1)})


def test_env_values_over_1_mib_in_all_are_refused() -> None:
    env = {f"SITE_{i}": "x" * (100 * 1024) for i in range(11)}
    with pytest.raises(LabSpecError, match=r"the lab's Secret nb-rra-secret would hold .* over "):
        build_with_kubespawner_env(env)


def test_a_secret_over_1_mib_is_refused() -> None:
    message = r"the lab's Secret nb-rra-secret would hold 1953\.5 KiB, over Kubernetes' 1024\.0 KiB"
    with pytest.raises(LabSpecError, match=message):
        build_with_extra_secret({"SITE_BUTLER": "s" * 2_000_000})


def test_the_environment_limit_counts_utf8_bytes() -> None:
    # 43,700 characters, 131,100 bytes: over the limit only when counted as the kernel does.
    with pytest.raises(LabSpecError, match=r"variable SITE_EURO is 128\.0 KiB"):
        build_with_kubespawner_env({"SITE_EURO": "€" * 43_700})


def test_an_env_entry_kept_in_the_pod_is_checked_too() -> None:
    # "$(" keeps the entry in the container's env (Kubernetes expands it only there).
    with pytest.raises(LabSpecError, match="container notebook's env variable SITE_EXPANDED is"):
        build_with_kubespawner_env({"SITE_EXPANDED": "$(HOME)" + "x" * (128 * 1024)})


def test_a_pod_over_1_mib_is_refused() -> None:
    base = kubespawner_pod()
    base["metadata"]["annotations"] = {f"site/{i}": "a" * 200_000 for i in range(6)}
    with pytest.raises(LabSpecError, match=r"the lab's Pod would be 117\d\.\d KiB, over the 1024"):
        build_lab_objects(
            LabTraits().lab_settings(), make_identity(), OPTIONS, base_pod=base, api_token=API_TOKEN
        )
