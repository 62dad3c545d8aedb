"""``/apis/<group>/<version>`` for the groups the store serves: discovery and routing.

The RBAC, authorization and networking groups are answered by :mod:`.rbac_api`;
every other group the store holds a kind of (``coordination.k8s.io`` Leases,
``apiextensions.k8s.io`` CRDs, and each CRD's group while it exists) is listed here
and its requests are routed to the same verbs as ``/api/v1`` (watch included).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .rbac_api import API_GROUPS as ACCESS_GROUPS
from .resources import ResourceType
from .status import ApiError
from .wire import api_resource

if TYPE_CHECKING:
    from .store import ObjectStore

__all__ = ["ApiGroups", "version_priority"]

_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_NOT_FOUND = "the server could not find the requested resource"


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version order, highest first when sorted: v2 > v1 > v1beta1 > v1alpha1 > x."""
    match = _VERSION.match(version)
    if match is None:
        return (0, 0, 0, version)
    stage = {"alpha": 1, "beta": 2, None: 3}[match[2]]
    return (stage, int(match[1]), int(match[3] or 0), "")


class ApiGroups:
    """The store's API groups outside the core and the access-control groups."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def _types(self) -> dict[str, dict[str, list[ResourceType]]]:
        groups: dict[str, dict[str, list[ResourceType]]] = {}
        for rtype in self.store.resources.values():
            group = rtype.group
            if group and group not in ACCESS_GROUPS:
                version = rtype.api_version.rpartition("/")[2]
                groups.setdefault(group, {}).setdefault(version, []).append(rtype)
        return groups

    def api_groups(self) -> list[dict[str, Any]]:
        """``/apis`` entries, in name order."""
        return [_group_entry(group, versions) for group, versions in sorted(self._types().items())]

    def discovery(self, path: str) -> dict[str, Any] | None:
        """``/apis/<group>`` or ``/apis/<group>/<version>`` of a served group, else None."""
        parts = path.strip("/").split("/")
        if parts[0] != "apis" or len(parts) not in (2, 3):
            return None
        versions = self._types().get(parts[1])
        if versions is None:
            return None
        if len(parts) == 2:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(parts[1], versions)}
        rtypes = versions.get(parts[2])
        if rtypes is None:
            raise ApiError(404, _NOT_FOUND)
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{parts[1]}/{parts[2]}",
            "resources": [e for r in rtypes for e in api_resource(r)],
        }

    def route(self, path: str) -> tuple[str, str | None, str | None, str | None] | None:
        """(store key, namespace, name, subresource) for a served group's resource path.

        None when ``path`` is not under a group served here; 404 for an unknown
        resource, or a namespace on a cluster-scoped kind.
        """
        parts = path.strip("/").split("/")
        if parts[0] != "apis" or len(parts) < 4:
            return None
        versions = self._types().get(parts[1])
        if versions is None:
            return None
        rest, namespace = parts[3:], None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        rtype = next((r for r in versions.get(parts[2], []) if r.resource_name == rest[0]), None)
        if rtype is None or (namespace is not None and not rtype.namespaced):
            raise ApiError(404, _NOT_FOUND)
        name = rest[1] if len(rest) > 1 else None
        sub = "/".join(rest[2:]) or None
        return rtype.plural, namespace, name, sub


def _group_entry(group: str, versions: dict[str, list[ResourceType]]) -> dict[str, Any]:
    ordered = sorted(versions, key=version_priority, reverse=True)
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}
