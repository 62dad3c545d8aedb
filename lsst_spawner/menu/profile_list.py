"""The menu in KubeSpawner's ``profile_list`` format, for hubs on plain KubeSpawner.

Each profile becomes one entry whose ``kubespawner_override`` carries its
limits and guarantees and its node group's scheduling (node selector,
tolerations, affinity) and extended resources. With an image repository, the
shown curated images become the profile's ``image`` option.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .model import ImageState, MenuDocument, NodeGroup, Profile
from .visibility import visible_images, visible_profiles

__all__ = ["build_profile_list"]


def _override(profile: Profile, group: NodeGroup | None) -> dict[str, Any]:
    override: dict[str, Any] = {
        "cpu_limit": profile.cpu_limit_cores,
        "cpu_guarantee": profile.cpu_guarantee_cores,
        "mem_limit": profile.memory_limit_bytes,
        "mem_guarantee": profile.memory_guarantee_bytes,
    }
    if group is None:
        return override
    if group.node_selector:
        override["node_selector"] = dict(group.node_selector)
    if group.tolerations:
        override["tolerations"] = [dict(t) for t in group.tolerations]
    if group.affinity:
        override["extra_pod_config"] = {"affinity": dict(group.affinity)}
    if group.extended_resources:
        amounts = {name: str(count) for name, count in group.extended_resources.items()}
        override["extra_resource_limits"] = amounts
        override["extra_resource_guarantees"] = dict(amounts)
    return override


def build_profile_list(
    document: MenuDocument,
    node_groups: Mapping[str, NodeGroup],
    *,
    user_groups: Iterable[str] | None = None,
    image_repository: str | None = None,
) -> list[dict[str, Any]]:
    """KubeSpawner's ``profile_list``: all profiles, or those ``user_groups`` may see."""
    if user_groups is None:
        profiles = list(document.profiles)
        images = [i for i in document.images if i.state is ImageState.SHOWN]
    else:
        groups = list(user_groups)
        profiles = visible_profiles(document, groups)
        images = visible_images(document, groups)
    entries = []
    for profile in profiles:
        group = node_groups.get(profile.node_group) if profile.node_group else None
        entry: dict[str, Any] = {
            "display_name": profile.display_name or profile.name,
            "slug": profile.name,
            "description": profile.description,
            "default": profile.default,
            "kubespawner_override": _override(profile, group),
        }
        if image_repository and images:
            entry["profile_options"] = {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        image.tag: {
                            "display_name": image.display_name or image.tag,
                            "default": image.default,
                            "kubespawner_override": {"image": f"{image_repository}:{image.tag}"},
                        }
                        for image in images
                    },
                }
            }
        entries.append(entry)
    return entries
