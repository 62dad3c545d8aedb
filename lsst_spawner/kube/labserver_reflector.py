"""The hub's one watch of the LabServers of a namespace (operator mode).

Each spawn used to read its LabServer every half second while it started, so N
spawns at once cost the hub and the API server 2N GETs a second (at N=1,000 the
hub's event loop stalled for minutes). KubeSpawner's shared reflector, given the
custom objects' list call, keeps all of a namespace's LabServers from one list and
one watch; spawns read their status from it.
"""

from __future__ import annotations

from typing import Any

from kubespawner.reflector import NamespacedResourceReflector

from ..crd.models import GROUP, VERSION

__all__ = ["LABSERVER_REFLECTOR_KIND", "LabServerReflector"]

#: The key of the shared reflector in ``KubeSpawner.reflectors`` (with the namespace).
LABSERVER_REFLECTOR_KIND = "labservers"


class _LabServerLister:
    """``CustomObjectsApi``'s LabServer list under the one method name a reflector calls."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def list_labservers(self, namespace: str, **kwargs: Any) -> Any:
        return self.api.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "labservers", **kwargs
        )


class LabServerReflector(NamespacedResourceReflector):
    """The LabServers of one namespace, as ``{"namespace/name": object}`` in ``resources``."""

    api: Any
    kind = LABSERVER_REFLECTOR_KIND
    api_group_name = "CustomObjectsApi"
    list_method_name = "list_labservers"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api = _LabServerLister(self.api)
