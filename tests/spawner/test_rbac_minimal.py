"""The Role ``lsst-spawner rbac`` prints is minimal: without any one of its verbs, a spawn
or a stop is refused (403) for exactly that verb; with all of them, nothing is refused.

docs/install.md and docs/cli.md name this test as the measure of minimality.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from lsst_spawner.kube.sweep import sweep_once
from lsst_spawner.rbac import Z2JH_HUB_ROLE_RULES, HubFeatures, missing_rules, required_rules
from lsst_spawner.testing.kube.fixtures import KubeHandle

from .test_lifecycle import make_spawner, stub_kubelet  # noqa: F401 - a fixture

RULES = required_rules(HubFeatures())
#: Feature sets measured: the default, with a PVC and a Service per lab, with home claims.
FEATURES = {
    "default": HubFeatures(),
    "pvc+service": HubFeatures(pvcs=True, services=True),
    "home-claim": HubFeatures(home_claims=True),
}


def without(rules: list[dict[str, list[str]]], resource: str, verb: str) -> list[dict[str, Any]]:
    """``rules`` with ``verb`` taken from the rule for ``resource`` (the rule dropped if empty)."""
    out = []
    for rule in rules:
        verbs = [v for v in rule["verbs"] if not (rule["resources"] == [resource] and v == verb)]
        if verbs:
            out.append({**rule, "verbs": verbs})
    return out


CASES = [
    (label, r["resources"][0], verb)
    for label, features in FEATURES.items()
    for r in required_rules(features)
    for verb in r["verbs"]
]


async def spawn_and_stop(
    kube_api: KubeHandle, features: HubFeatures = FEATURES["default"]
) -> list[BaseException]:
    """Start (following progress, as the hub does) and stop one lab, then sweep leftovers
    as the hub's background task does; return what failed."""
    spawner = make_spawner(kube_api, "rra")
    spawner.lab_home_claim_enabled = features.home_claims
    spawner.start_timeout = 10  # a refused watch leaves the spawn waiting for its pod
    spawner.events_enabled = features.events
    spawner.storage_pvc_ensure = features.pvcs
    spawner.storage_capacity = "1Gi"
    spawner.services_enabled = features.services
    failures: list[BaseException] = []

    async def follow() -> None:
        async for _ in spawner.progress():
            pass

    start = spawner.start()
    follower = asyncio.create_task(follow())
    try:
        await asyncio.wait_for(start, 30)
    except Exception as error:
        failures.append(error)
    follower.cancel()
    with contextlib.suppress(BaseException):
        await follower
    try:
        await asyncio.wait_for(spawner.stop(now=True), 30)
    except Exception as error:
        failures.append(error)
    if features.sweep:
        try:
            await sweep_once(spawner.api, spawner.namespace, spawner.kube_retry_policy())
        except Exception as error:
            failures.append(error)
    return failures


def test_the_minimal_role_fits_z2jh() -> None:
    assert missing_rules(RULES, Z2JH_HUB_ROLE_RULES) == []
    # And z2jh's Role is more than needed: configmaps are not among the rules at all.
    assert all("configmaps" not in rule["resources"] for rule in RULES)


@pytest.mark.usefixtures("stub_kubelet")
@pytest.mark.parametrize("label", sorted(FEATURES))
async def test_with_the_minimal_role_nothing_is_refused_and_no_role_is_refused_everything(
    kube_api: KubeHandle, label: str
) -> None:
    kube_api.set_hub_role(required_rules(FEATURES[label]))
    assert await spawn_and_stop(kube_api, FEATURES[label]) == []
    assert kube_api.emulator is not None
    assert kube_api.emulator.access.authorizer.denied == []
    # The test can fail: with no rules at all, the spawn fails with 403s.
    kube_api.set_hub_role([])
    failures = await spawn_and_stop(kube_api, FEATURES[label])
    assert failures
    assert "403" in str(failures[0])


@pytest.mark.usefixtures("stub_kubelet")
@pytest.mark.parametrize(("label", "resource", "verb"), CASES)
async def test_dropping_any_verb_of_the_minimal_role_makes_a_spawn_or_stop_fail_with_403(
    kube_api: KubeHandle, label: str, resource: str, verb: str
) -> None:
    kube_api.set_hub_role(without(required_rules(FEATURES[label]), resource, verb))
    await spawn_and_stop(kube_api, FEATURES[label])
    assert kube_api.emulator is not None
    refused = {(a.verb, a.resource) for a in kube_api.emulator.access.authorizer.denied}
    # That verb was refused (KubeSpawner follows a refused PVC create with a read, refused too).
    assert (verb, resource) in refused
    assert {r for _, r in refused} == {resource}
