"""``lsst-spawner prune-images``: list, plan and (with ``--yes``) delete registry tags.

The I/O edge of :mod:`lsst_spawner.images.prune`: it uses the configured
registry (the registry traits: host, repository, credentials file, realm
allow-list, insecure hosts), the same hardened client as the menu. A dry run is
the default; ``--yes`` deletes. Images running labs use are given with
``--in-use FILE`` (one image reference or digest a line, such as the output of
``kubectl get pods -o jsonpath='{..image}'``): their digests are never deleted.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..grammar import is_valid_digest
from .prune import PruneDecision, PrunePolicyError, load_prune_policy, plan_prune

__all__ = ["add_prune_parser", "prune_images"]


def add_prune_parser(commands: Any, add_config_option: Any) -> None:
    """Add the ``prune-images`` subcommand to ``lsst-spawner``'s parser."""
    prune = commands.add_parser(
        "prune-images",
        help="delete registry tags beyond a retention policy (a dry run unless --yes)",
        description=(
            "List the configured registry repository's tags and decide for each whether the "
            "retention policy deletes it, never deleting aliases, the recommended and pinned "
            "tags, images running labs use, or anything sharing their digest. Prints every "
            "decision with its reason; deletes only with --yes."
        ),
    )
    add_config_option(prune)
    prune.add_argument("--policy", required=True, metavar="FILE", help="retention policy file")
    prune.add_argument("--dry-run", action="store_true", help="only list (the default)")
    prune.add_argument("--yes", action="store_true", help="delete what the plan lists")
    prune.add_argument(
        "--in-use", metavar="FILE", help="image references or digests running labs use"
    )


def _in_use(path: str | None) -> list[str]:
    if path is None:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read {path!r}: {error.strerror}") from None
    digests = []
    for word in text.split():
        digest = word.rpartition("@")[2]
        if is_valid_digest(digest):
            digests.append(digest)
    return digests


def format_plan(decisions: list[PruneDecision], *, deleting: bool) -> str:
    lines = []
    for d in decisions:
        verb = ("delete" if deleting else "would delete") if d.delete else "keep"
        lines.append(f"{verb:<12}  {d.tag}  ({d.reason})")
    count = sum(1 for d in decisions if d.delete)
    lines.append(
        f"{count} tag(s) {'deleted' if deleting else 'would be deleted'} of {len(decisions)}"
        + ("" if deleting else "; run again with --yes to delete them")
    )
    return "\n".join(lines)


async def _run(settings: Any, args: argparse.Namespace) -> str:
    policy = load_prune_policy(args.policy)
    client = settings.make_registry_client()
    repository = settings.registry_repository
    tags = await client.list_tags(repository)
    digests = await client.resolve_digests(repository, tags)
    menu_policy = settings.image_menu_policy()
    decisions = plan_prune(
        tags,
        digests,
        policy,
        aliases=menu_policy.aliases,
        protected=(menu_policy.recommended_tag, *menu_policy.pinned_tags),
        in_use=_in_use(args.in_use),
        now=datetime.now(UTC),
    )
    deleting = bool(args.yes) and not args.dry_run
    if deleting:
        done: set[str] = set()
        for decision in decisions:
            if decision.delete and decision.digest and decision.digest not in done:
                await client.delete_manifest(repository, decision.digest)
                done.add(decision.digest)
    return format_plan(decisions, deleting=deleting)


def prune_images(config: Any, args: argparse.Namespace) -> int:
    """Run the pruner for the configuration; print the plan; return the exit code."""
    from ..checks import spawner_settings
    from .cache import redact

    settings = spawner_settings(config)
    if not callable(getattr(settings, "make_registry_client", None)):
        raise ConfigError("prune-images needs the registry image source (registry traits)")
    try:
        print(asyncio.run(_run(settings, args)))
    except PrunePolicyError as error:
        raise ConfigError(f"policy {args.policy}: {error}") from None
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(f"the registry did not answer: {redact(str(error))}") from None
    return 0
