"""The image pruner: its plan (pure) and ``lsst-spawner prune-images`` against a real registry.

The real registry is Debian's ``docker-registry`` with deletion enabled (the
test kit's ``LocalRegistry`` turns ``storage.delete.enabled`` on), one of its
own so the session registry other tests use keeps its tags.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lsst_spawner.cli import main
from lsst_spawner.images.prune import PrunePolicyError, parse_prune_policy, plan_prune
from lsst_spawner.images.registry import RegistryClient
from lsst_spawner.testing.registry import LocalRegistry, RegistryUnavailableError

REPO = "lsst-sqre/sciplat-lab"
WEEKLIES = [f"w_2026_{week:02d}" for week in range(1, 9)]
DAILIES = [f"d_2026_03_{day:02d}" for day in range(1, 6)]
NOW = datetime(2026, 3, 10, tzinfo=UTC)


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def test_plan_keeps_aliases_protected_in_use_and_their_digests() -> None:
    tags = [*WEEKLIES, *DAILIES, "r27_0_0", "recommended", "latest_weekly", "w_2026_08-amd64"]
    digests = {tag: digest(n) for n, tag in enumerate(tags)}
    digests["recommended"] = digests["w_2026_08"]
    digests["latest_weekly"] = digests["w_2026_05"]
    policy = parse_prune_policy({"keep": {"weekly": {"number": 3}, "daily": {"age": "7d"}}})
    decisions = plan_prune(
        tags,
        digests,
        policy,
        aliases={"recommended", "latest_weekly"},
        protected=("recommended", "w_2026_02"),
        in_use=[digests["w_2026_03"]],
        now=NOW,
    )
    deleted = {d.tag: d.reason for d in decisions if d.delete}
    kept = {d.tag: d.reason for d in decisions if not d.delete}
    assert deleted == {
        "w_2026_04": "not among the newest 3 weekly tags",
        "w_2026_01": "not among the newest 3 weekly tags",
        "w_2026_08-amd64": "not among the newest 3 weekly tags",
        "d_2026_03_02": "older than 7 days",
        "d_2026_03_01": "older than 7 days",
    }
    assert kept["w_2026_05"] == "shares its digest with alias latest_weekly"
    assert kept["w_2026_03"] == "a running lab uses this image"
    assert kept["w_2026_02"].startswith("protected")
    assert kept["recommended"] == "an alias"
    assert kept["r27_0_0"] == "no retention rule for release tags"
    assert kept["d_2026_03_03"] == "younger than 7 days"


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({}, "'keep' must be an object"),
        ({"keep": {"nightly": {"number": 1}}}, "keep['nightly'] is not a kind"),
        ({"keep": {"weekly": {}}}, "needs number or age"),
        ({"keep": {"weekly": {"number": -1}}}, "must be a whole number"),
        ({"keep": {"weekly": {"age": "1e300"}}}, "at most 36500d (100 years)"),
        ({"keep": {"weekly": {"newest": 2}}}, "['newest'] is not a rule"),
        ({"keep": {"weekly": {"number": 1}}, "protect": ["a b"]}, "list of tags"),
        ({"keep": {"weekly": {"number": 1}}, "delete_all": True}, "not a policy key"),
    ],
)
def test_bad_policies_are_refused_with_the_key(policy: object, message: str) -> None:
    with pytest.raises(PrunePolicyError, match=re.escape(message)):
        parse_prune_policy(policy)


@pytest.fixture
def own_registry() -> Iterator[LocalRegistry]:
    try:
        registry = LocalRegistry().start()
    except RegistryUnavailableError as error:
        pytest.fail(f"real registry unavailable: {error}", pytrace=False)
    try:
        yield registry
    finally:
        registry.stop()


def listed(registry: LocalRegistry) -> set[str]:
    client = RegistryClient(registry.host_port, insecure_registries=[registry.host_port])
    return set(asyncio.run(client.list_tags(REPO)))


@pytest.mark.integration
def test_prune_images_dry_run_then_real_run_against_the_real_registry(
    own_registry: LocalRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digests = own_registry.push(REPO, [*WEEKLIES, *DAILIES, "r27_0_0"])
    own_registry.alias(REPO, "recommended", "w_2026_08")
    own_registry.alias(REPO, "latest_weekly", "w_2026_05")
    before = listed(own_registry)
    host = own_registry.host_port
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        f"""
c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.registry_host = {host!r}
c.LSSTSpawner.registry_repository = {REPO!r}
c.LSSTSpawner.registry_insecure_hosts = [{host!r}]
c.LSSTSpawner.image_alias_tags = ["latest_weekly"]
c.LSSTSpawner.image_pinned_tags = ["w_2026_02"]
"""
    )
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"keep": {"weekly": {"number": 3}, "daily": {"number": 2}}}))
    in_use = tmp_path / "in-use.txt"
    in_use.write_text(f"{host}/{REPO}:w_2026_03@{digests['w_2026_03']}\n")
    args = ["prune-images", "-f", str(config), "--policy", str(policy), "--in-use", str(in_use)]

    assert main(args) == 0
    out = capsys.readouterr().out
    assert "would delete  w_2026_04  (not among the newest 3 weekly tags)" in out
    assert "keep          w_2026_05  (shares its digest with alias latest_weekly)" in out
    assert "keep          w_2026_03  (a running lab uses this image)" in out
    assert "5 tag(s) would be deleted of 16; run again with --yes" in out
    assert listed(own_registry) == before, "a dry run deleted something"

    assert main([*args, "--yes"]) == 0
    assert "5 tag(s) deleted of 16" in capsys.readouterr().out
    gone = {"w_2026_04", "w_2026_01", "d_2026_03_03", "d_2026_03_02", "d_2026_03_01"}
    remaining = listed(own_registry)
    assert before - remaining == gone
    assert {
        "recommended",
        "latest_weekly",
        "w_2026_08",
        "w_2026_05",
        "w_2026_03",
        "w_2026_02",
    } <= remaining
    assert "r27_0_0" in remaining
