"""Named servers, the home claim and the user namespace: names, checks, builders, rules.

The object names of a lab include its escaped server name; any two (user,
server) pairs get distinct names (a property test), including pairs that differ
only in case or punctuation; hostile server names are refused naming
``server_name``; ``check-config`` flags a pod name template that ignores the
server when named servers are on; the home claim and user namespace builders,
their trait checks and the Kubernetes rules they need.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from kubespawner import KubeSpawner
from traitlets.config import Config

from lsst_spawner.checks import check_config_with_warnings
from lsst_spawner.commands import _offline_kubernetes_client
from lsst_spawner.lab.claims import HomeClaimSettings, build_home_claim, build_user_namespace
from lsst_spawner.lab.errors import LabSpecError
from lsst_spawner.lab.names import (
    DNS_LABEL_PATTERN,
    build_lab_labels,
    build_object_names,
    server_fields,
    server_name_problem,
)
from lsst_spawner.lab.traits import LabTraits
from lsst_spawner.rbac import Z2JH_HUB_ROLE_RULES, HubFeatures, missing_rules, required_rules

from .conftest import validate

# Usernames as the identity rules allow them (letters, digits, . _ -), any case.
USERNAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}", fullmatch=True)
# Server names as server_name_problem allows them, and the default server.
SERVER_NAMES = st.one_of(
    st.just(""),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", fullmatch=True).filter(
        lambda name: ".." not in name
    ),
)
TEMPLATES = ("nb-{user_server}", "nb-{username}--{servername}")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(USERNAMES, SERVER_NAMES), min_size=2, max_size=6, unique=True))
def test_distinct_user_server_pairs_get_distinct_pods(pairs: list[tuple[str, str]]) -> None:
    for template in TEMPLATES:
        names = {}
        for user, server in pairs:
            try:
                pod = build_object_names(template, user, server)["pod"]
            except LabSpecError:
                assert template != "nb-{user_server}", (user, server)  # it always fits
                continue
            assert DNS_LABEL_PATTERN.fullmatch(pod), pod
            assert len(pod) <= 56, pod
            assert pod not in names, f"{(user, server)} and {names[pod]} share {pod}"
            names[pod] = (user, server)


def _neighbours(user: str, server: str) -> set[tuple[str, str]]:
    """Pairs that differ from (user, server) only in case, punctuation or the split point."""
    joined = [f"{user}{sep}{server}" for sep in ("", "-", "--", "---", ".", "_")] if server else []
    found = {(name, "") for name in joined}
    found |= {(user.swapcase(), server), (user, server.swapcase()), (user.upper(), server)}
    found |= {(user.replace(c, d), server) for c in "._-" for d in "._-"}
    found |= {(user, server.replace(c, d)) for c in "._-" for d in "._-" if server}
    if len(user) > 1:
        found |= {(user[:-1], user[-1] + server), (user[:-1], f"{user[-1]}-{server}")}
    return {pair for pair in found if pair[0] and not server_name_problem(pair[1])}


@settings(max_examples=400, deadline=None)
@given(USERNAMES, SERVER_NAMES)
def test_neighbouring_pairs_get_distinct_pods(user: str, server: str) -> None:
    for template in TEMPLATES:
        try:
            pod = build_object_names(template, user, server)["pod"]
        except LabSpecError:
            continue
        for other in _neighbours(user, server) - {(user, server)}:
            try:
                other_pod = build_object_names(template, *other)["pod"]
            except LabSpecError:
                continue
            assert pod != other_pod, f"{(user, server)} and {other} share {pod}"


@pytest.mark.parametrize(
    "pairs",
    [
        [("rra", ""), ("Rra", ""), ("RRA", ""), ("rra", "a"), ("rra", "A"), ("rra-a", "")],
        [("rra--a", ""), ("rra", "a"), ("rra-", "-a"), ("rra", "-a")],
        [("first.last", ""), ("first_last", ""), ("first-last", ""), ("first.last", "x.y")],
        [("x" * 64, "y" * 63), ("x" * 64, "y" * 62), ("x" * 63, "y" * 63)],
    ],
)
def test_case_and_punctuation_do_not_collide(pairs: list[tuple[str, str]]) -> None:
    pods = [build_object_names("nb-{user_server}", user, server)["pod"] for user, server in pairs]
    assert len(set(pods)) == len(pods), pods


def test_default_server_keeps_its_name() -> None:
    """The default server's names are those of before named servers (saved state finds them)."""
    assert build_object_names("nb-{user_server}", "rra") == {
        "pod": "nb-rra",
        "secret": "nb-rra-secret",
        "legacy_env_secret": "nb-rra-env",
    }
    assert build_object_names("nb-{username}--{servername}", "rra")["pod"] == "nb-rra"
    assert build_object_names("nb-{user_server}", "rra", "gpu")["pod"] == "nb-rra--gpu"


@pytest.mark.parametrize("user", ["rra", "First.Last", "x" * 60, "a--b"])
@pytest.mark.parametrize("server", ["", "gpu", "GPU_2", "s" * 60])
async def test_fields_are_kubespawners_own(user: str, server: str, tmp_path: Any) -> None:
    """``{servername}`` and ``{user_server}`` are KubeSpawner 7's ``safe`` fields."""

    fake_user = SimpleNamespace(name=user, id=1, url="/user/x", server=None)
    fake_orm = SimpleNamespace(name=server, server=None)
    with _offline_kubernetes_client(str(tmp_path)):
        kubespawner = KubeSpawner(
            _mock=True, user=fake_user, orm_spawner=fake_orm, namespace="labs"
        )
    assert kubespawner.name == server
    ours = server_fields(user, server)
    assert ours["servername"] == kubespawner._expand_user_properties("{servername}")
    if server:
        assert ours["user_server"] == kubespawner._expand_user_properties("{user_server}")
    else:
        # One deliberate difference: for a default server whose username slug is over 46
        # characters KubeSpawner hashes "{username}--" again; ours stays {username}, so
        # default servers keep the pod names they had before named servers.
        assert ours["user_server"] == kubespawner._expand_user_properties("{username}")


@pytest.mark.parametrize(
    ("hostile", "message"),
    [
        ("a/b", "is not a valid server name"),
        ("..", "is not a valid server name"),
        ("a..b", "is not a valid server name"),
        ("x" * 300, "300 characters is too long"),
        ("ünïcode", "is not a valid server name"),
        ("serveur-été", "is not a valid server name"),
        ("-dash", "is not a valid server name"),
        ("tab\tname", "is not a valid server name"),
    ],
)
def test_hostile_server_names_are_refused(hostile: str, message: str) -> None:
    problem = server_name_problem(hostile)
    assert problem is not None
    assert message in problem
    assert "ASCII letters, digits" in problem
    # Names are still built (a hash), so nothing breaks before the refusal.
    pod = build_object_names("nb-{user_server}", "rra", hostile)["pod"]
    assert DNS_LABEL_PATTERN.fullmatch(pod)


@pytest.mark.parametrize("good", ["", "gpu", "GPU.2", "my_server-1", "x" * 63])
def test_ordinary_server_names_are_accepted(good: str) -> None:
    assert server_name_problem(good) is None


def test_named_server_labels() -> None:
    labels = build_lab_labels("rra", "sciplat-lab:w_2026_40", "nb-rra--gpu", "GPU.2")
    assert labels["lsst-spawner/server"] == "GPU.2"
    assert "lsst-spawner/server" not in build_lab_labels("rra", "lab:w", "nb-rra")


def test_template_without_server_refuses_named_servers() -> None:
    with pytest.raises(LabSpecError, match=r"must contain \{servername\} or \{user_server\}"):
        build_object_names("nb-{username}", "rra", "gpu")


def _check(config: str) -> tuple[list[str], list[str]]:
    c = Config()
    exec('c.JupyterHub.spawner_class = "lsst"\n' + config, {"c": c})  # noqa: S102
    problems, warnings, _ = check_config_with_warnings(c)
    return [str(p) for p in problems], [str(w) for w in warnings]


def test_check_config_flags_a_template_without_server_with_named_servers() -> None:
    problems, _ = _check(
        "c.JupyterHub.allow_named_servers = True\n"
        'c.LSSTSpawner.lab_pod_name_template = "nb-{username}"\n'
    )
    assert len(problems) == 1, problems
    assert problems[0].startswith("LSSTSpawner.lab_pod_name_template: 'nb-{username}' has no")
    assert "JupyterHub.allow_named_servers" in problems[0]
    # The same template without named servers, and the default with them: no problem.
    assert _check('c.LSSTSpawner.lab_pod_name_template = "nb-{username}"\n')[0] == []
    assert _check("c.JupyterHub.allow_named_servers = True\n")[0] == []


def test_check_config_flags_a_template_too_long_for_named_servers() -> None:
    problems, _ = _check('c.LSSTSpawner.lab_pod_name_template = "nb-{username}--{servername}"\n')
    assert len(problems) == 1, problems
    assert "not a DNS label of at most 56 characters" in problems[0]
    assert "{user_server} always fits" in problems[0]


# --- the home claim --------------------------------------------------------------------


CLAIM = HomeClaimSettings(
    enabled=True,
    storage_class="fast-ssd",
    size="20Gi",
    access_modes=("ReadWriteMany",),
)


@pytest.mark.parametrize("user", ["rra", "First.Last"])
def test_home_claim_matches_golden(user: str, golden: Any) -> None:
    claim = build_home_claim(CLAIM, user)
    validate(claim)
    golden(f"home-claim-{user.lower().replace('.', '-')}", claim)


def test_home_claim_is_named_from_the_escaped_username() -> None:
    names = {build_home_claim(CLAIM, user)["metadata"]["name"] for user in ("rra", "Rra", "r.ra")}
    assert len(names) == 3
    assert build_home_claim(CLAIM, "rra")["metadata"]["name"] == "home-rra"
    no_class = build_home_claim(HomeClaimSettings(enabled=True), "rra")
    assert "storageClassName" not in no_class["spec"]  # the cluster's default class


@pytest.mark.parametrize(
    ("trait", "value", "message"),
    [
        ("lab_home_claim_name_template", "home", "must contain {username}"),
        ("lab_home_claim_name_template", "Home-{username}", "not a DNS label"),
        ("lab_home_claim_name_template", "home-{servername}", "must contain {username}"),
        ("lab_home_claim_storage_class", "Fast SSD", "not a storage class name"),
        ("lab_home_claim_size", "lots", "not a storage size"),
        ("lab_home_claim_size", "0", "not a storage size"),
        ("lab_home_claim_access_modes", ["ReadWriteAlways"], "not one of ReadWriteOnce"),
        ("lab_home_claim_access_modes", [], "must not be empty"),
    ],
)
def test_bad_home_claim_traits_are_problems(trait: str, value: Any, message: str) -> None:
    found = [str(p) for p in LabTraits(**{trait: value}).config_problems()]
    assert len(found) == 1, found
    assert found[0].startswith(f"LSSTSpawner.{trait}: ")
    assert message in found[0]


def test_user_namespace_manifest() -> None:
    namespace = build_user_namespace(
        "jhub-rra", {"team": "rubin"}, {"example.org/owner": "rra@example.org"}
    )
    validate(namespace)
    assert namespace["metadata"] == {
        "name": "jhub-rra",
        "labels": {"team": "rubin", "app.kubernetes.io/part-of": "lsst-spawner"},
        "annotations": {"example.org/owner": "rra@example.org"},
    }


# --- the rules they need -----------------------------------------------------------------


def test_home_claims_need_pvc_create_which_z2jh_grants() -> None:
    rules = required_rules(HubFeatures(home_claims=True))
    claims = {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["create"]}
    assert claims in rules
    assert missing_rules(rules, Z2JH_HUB_ROLE_RULES) == []


def test_the_sweep_needs_only_what_z2jh_grants() -> None:
    with_sweep, without = required_rules(HubFeatures()), required_rules(HubFeatures(sweep=False))
    assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete", "list"]} in (
        with_sweep
    )
    assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete"]} in without
    assert missing_rules(with_sweep, Z2JH_HUB_ROLE_RULES) == []


def test_rbac_prints_a_cluster_role_for_user_namespaces(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from lsst_spawner.cli import main

    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        'c.JupyterHub.spawner_class = "lsst"\n'
        "c.KubeSpawner.enable_user_namespaces = True\n"
        'c.LSSTSpawner.namespace = "jhub"\n'
    )
    assert main(["rbac", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    role = yaml.safe_load(out)
    assert role["kind"] == "ClusterRole"
    assert "namespace" not in role["metadata"]
    assert role["rules"][0] == {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]}
    assert '"resources": ["namespaces"], "verbs": ["create"]' in out  # beyond z2jh's Role


def test_check_config_names_the_rule_user_namespaces_need() -> None:
    problems, warnings = _check("c.KubeSpawner.enable_user_namespaces = True\n")
    assert problems == []
    (warning,) = [w for w in warnings if w.startswith("KubeSpawner.enable_user_namespaces")]
    assert "ClusterRole" in warning
    assert "namespaces: create" in warning
    assert not [w for w in _check("")[1] if "enable_user_namespaces" in w]
