"""Prepull bookkeeping, pure: eligible nodes, image presence, the menu's radio rule, pull plans.

No I/O: the prepuller (:mod:`lsst_spawner.kube.prepull`) lists the nodes and
hands their ``Node`` objects here; everything below is a function of them, the
lab's node selection and the menu.

- A node is *eligible* for labs when it is Ready, schedulable, has every label
  of the lab's ``node_selector`` and the lab tolerates each of its
  ``NoSchedule``/``NoExecute`` taints (``PreferNoSchedule`` taints are ignored:
  labs may still land there).
- An image is *present* on a node when the node's ``status.images`` lists its
  digest (``repo@sha256:...``), or, for an image without a known digest, its
  ``repo:tag``. It is present on ``all``, ``some`` or ``none`` of the eligible
  nodes.
- With presence known, radio choices are only images present on every eligible
  node (Nublado's rule, ``radio_requires_presence``); the others move to the
  front of the dropdown, which marks them slower to start. The recommended image
  stays the first radio choice either way (it is the default), marked when it is
  not everywhere.
- A node listing exactly ``nodeStatusMaxImages`` images (50 by default) may have
  more than it says: the kubelet lists only the largest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from .model import ImageMenu, MenuImage

__all__ = [
    "KUBELET_MAX_IMAGES",
    "PREPULL_LABELS",
    "NodeImages",
    "PrepullState",
    "Presence",
    "PullPlan",
    "apply_presence",
    "build_prepull_state",
    "image_on_node",
    "node_is_eligible",
    "plan_pulls",
    "prepull_pod",
    "prepull_pod_name",
    "prepull_targets",
    "presence_of",
    "presence_table",
    "tolerates",
    "with_preferred_nodes",
]

Presence = Literal["all", "some", "none"]

#: The kubelet's default ``nodeStatusMaxImages``: a node lists at most this many images.
KUBELET_MAX_IMAGES = 50

#: Labels of every prepull pod (the prepuller finds its leftovers by them).
PREPULL_LABELS = {
    "app.kubernetes.io/managed-by": "lsst-spawner",
    "app.kubernetes.io/component": "image-prepuller",
}


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Whether one of ``tolerations`` tolerates ``taint``, by Kubernetes' matching rules.

    An empty effect matches every effect; ``Exists`` with an empty key matches
    every taint; ``Equal`` (the default) needs the key and the value.
    """
    for toleration in tolerations:
        effect = toleration.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        key = toleration.get("key") or ""
        if (toleration.get("operator") or "Equal") == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (toleration.get("value") or "") == (
            taint.get("value") or ""
        ):
            return True
    return False


def _ready(node: Mapping[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def node_is_eligible(
    node: Mapping[str, Any],
    node_selector: Mapping[str, str],
    tolerations: Sequence[Mapping[str, Any]],
) -> bool:
    """Whether a lab with this node selection may run on ``node`` (see the module's docstring)."""
    spec = node.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    if spec.get("unschedulable") or not _ready(node):
        return False
    if any(labels.get(key) != value for key, value in node_selector.items()):
        return False
    return all(
        tolerates(tolerations, taint)
        for taint in spec.get("taints") or []
        if taint.get("effect") in ("NoSchedule", "NoExecute")
    )


@dataclass(frozen=True)
class NodeImages:
    """One eligible node and the image names its ``status.images`` lists."""

    name: str
    names: frozenset[str]
    #: How many images the node lists (``KUBELET_MAX_IMAGES`` means: maybe more).
    image_count: int

    @property
    def list_may_be_truncated(self) -> bool:
        return self.image_count == KUBELET_MAX_IMAGES


@dataclass(frozen=True)
class PrepullState:
    """The eligible nodes and their images, as the prepuller last listed them."""

    nodes: tuple[NodeImages, ...] = ()
    #: Nodes listed but not eligible for labs (selector, taints, not ready).
    ineligible: tuple[str, ...] = ()
    observed_at: datetime | None = None
    #: Changes whenever what the nodes report changes (the menu is rebuilt then).
    version: str = ""

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(node.name for node in self.nodes)


def build_prepull_state(
    nodes: Iterable[Mapping[str, Any]],
    node_selector: Mapping[str, str],
    tolerations: Sequence[Mapping[str, Any]],
    now: datetime | None = None,
) -> PrepullState:
    """The state of ``nodes`` (``Node`` objects, as listed) for a lab's node selection."""
    eligible: list[NodeImages] = []
    ineligible: list[str] = []
    for node in nodes:
        name = str((node.get("metadata") or {}).get("name", ""))
        if not node_is_eligible(node, node_selector, tolerations):
            ineligible.append(name)
            continue
        images = (node.get("status") or {}).get("images") or []
        names = frozenset(str(n) for image in images for n in image.get("names") or [])
        eligible.append(NodeImages(name, names, len(images)))
    eligible.sort(key=lambda node: node.name)
    digest = hashlib.sha256()
    for item in eligible:
        digest.update(item.name.encode() + b"\0" + "\0".join(sorted(item.names)).encode() + b"\1")
    return PrepullState(
        nodes=tuple(eligible),
        ineligible=tuple(sorted(ineligible)),
        observed_at=now,
        version=digest.hexdigest(),
    )


def _repository(image: MenuImage) -> str:
    return image.reference[: -len(image.tag) - 1]


def image_on_node(image: MenuImage, names: frozenset[str]) -> bool:
    """Whether a node whose ``status.images`` lists ``names`` has ``image``.

    By digest when the menu knows it (so a moved tag does not count), else by ``repo:tag``.
    """
    if image.digest:
        return f"{_repository(image)}@{image.digest}" in names
    return image.reference in names


def presence_of(image: MenuImage, state: PrepullState) -> tuple[Presence, tuple[str, ...]]:
    """On ``all``, ``some`` or ``none`` of the eligible nodes, and on which."""
    on = tuple(node.name for node in state.nodes if image_on_node(image, node.names))
    if not state.nodes or not on:
        return "none", ()
    return ("all" if len(on) == len(state.nodes) else "some"), on


def prepull_targets(menu: ImageMenu) -> tuple[MenuImage, ...]:
    """What is prepulled: the menu's radio images (the pinned tags are among them),
    one per pinned reference (an alias and its target share one pull)."""
    seen: set[str] = set()
    targets: list[MenuImage] = []
    for image in menu.radio:
        key = f"{_repository(image)}@{image.digest}" if image.digest else image.reference
        if key not in seen:
            seen.add(key)
            targets.append(image)
    return tuple(targets)


def apply_presence(
    menu: ImageMenu, state: PrepullState, *, radio_requires_presence: bool = True
) -> ImageMenu:
    """``menu`` with each image's presence, and the radio rule applied (module docstring)."""
    anywhere = frozenset().union(*(node.names for node in state.nodes))

    def marked(image: MenuImage) -> MenuImage:
        presence: Presence = "none"
        on: tuple[str, ...] = ()
        if image_on_node(image, anywhere):  # most of a big dropdown is on no node
            presence, on = presence_of(image, state)
        # Positional, not dataclasses.replace: ten thousand of these per marking.
        return MenuImage(
            image.tag,
            image.kind,
            image.display_name,
            image.reference,
            image.digest,
            image.choice,
            image.shown_as,
            presence,
            on if presence == "some" else (),
        )

    recommended = menu.recommended
    radio: list[MenuImage] = []
    demoted: list[MenuImage] = []
    for image in menu.radio:
        entry = marked(image)
        if image is recommended or not radio_requires_presence or entry.presence == "all":
            radio.append(entry)
        else:
            demoted.append(replace(entry, choice="dropdown"))
    dropdown = [*demoted, *(marked(image) for image in menu.dropdown)]
    aliased = tuple(marked(image) for image in menu.aliased)
    by_tag = {image.tag: image for image in (*aliased, *dropdown, *radio)}
    new_recommended = by_tag.get(recommended.tag) if recommended is not None else None
    if recommended is not None and new_recommended is None:
        new_recommended = marked(recommended)
    return replace(
        menu,
        radio=tuple(radio),
        dropdown=tuple(dropdown),
        aliased=aliased,
        recommended=new_recommended,
        latest={kind: by_tag.get(image.tag, image) for kind, image in menu.latest.items()},
        _by_tag={},
    )


def with_preferred_nodes(pod: Mapping[str, Any], nodes: Sequence[str]) -> dict[str, Any]:
    """``pod`` with a preferred node affinity for ``nodes`` (those that have its image).

    Preferred, not required: a lab still starts elsewhere (pulling its image)
    when those nodes are full. Returns a new dict; ``pod`` is not changed.
    """
    if not nodes:
        return dict(pod)
    new = dict(pod)
    spec = dict(new.get("spec") or {})
    affinity = dict(spec.get("affinity") or {})
    node_affinity = dict(affinity.get("nodeAffinity") or {})
    preferred = list(node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or [])
    preferred.append(
        {
            "weight": 100,
            "preference": {
                "matchFields": [{"key": "metadata.name", "operator": "In", "values": sorted(nodes)}]
            },
        }
    )
    node_affinity["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    affinity["nodeAffinity"] = node_affinity
    spec["affinity"] = affinity
    new["spec"] = spec
    return new


@dataclass(frozen=True)
class PullPlan:
    """One pull to start: ``image`` onto ``node``."""

    node: str
    image: MenuImage


def plan_pulls(
    targets: Sequence[MenuImage],
    state: PrepullState,
    *,
    busy: Iterable[str] = (),
    skip: Iterable[tuple[str, str]] = (),
) -> list[PullPlan]:
    """At most one pull per eligible node not ``busy``: its first target it lacks.

    ``skip`` holds ``(node, pinned_reference)`` pairs not to try now (a pull
    that failed recently).
    """
    busy_nodes, skipped = set(busy), set(skip)
    plans: list[PullPlan] = []
    for node in state.nodes:
        if node.name in busy_nodes:
            continue
        for image in targets:
            if image_on_node(image, node.names):
                continue
            if (node.name, image.pinned_reference) in skipped:
                continue
            plans.append(PullPlan(node.name, image))
            break
    return plans


def prepull_pod_name(node: str, reference: str) -> str:
    """A stable DNS-1123 name for the pull of ``reference`` onto ``node``."""
    return "prepull-" + hashlib.sha256(f"{node}\0{reference}".encode()).hexdigest()[:20]


def prepull_pod(
    image: MenuImage, node: str, *, tolerations: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The pod that pulls ``image`` onto ``node``: pinned there, runs ``/bin/true`` and exits.

    ``nodeName`` skips the scheduler; ``restartPolicy: Never`` so it never runs
    again; no service account token, no service links, the smallest requests,
    an unprivileged user. The lab's tolerations keep a ``NoExecute`` taint from
    evicting it. Nublado's prepuller uses the same pod.
    """
    reference = image.pinned_reference
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": prepull_pod_name(node, reference),
            "labels": dict(PREPULL_LABELS),
            "annotations": {"lsst.io/prepull-image": reference, "lsst.io/prepull-node": node},
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 1,
            "tolerations": [dict(t) for t in tolerations],
            "containers": [
                {
                    "name": "prepull",
                    "image": reference,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["/bin/true"],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "16Mi"},
                        "limits": {"cpu": "100m", "memory": "64Mi"},
                    },
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65534,
                        "runAsGroup": 65534,
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def presence_table(targets: Sequence[MenuImage], state: PrepullState) -> str:
    """The image x node table ``lsst-spawner prepull-status`` prints."""
    nodes = state.node_names
    header = ["IMAGE", "PRESENT", *nodes]
    rows = [header]
    for image in targets:
        presence, _ = presence_of(image, state)
        cells = ["yes" if image_on_node(image, node.names) else "-" for node in state.nodes]
        rows.append([image.tag, presence, *cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    notes = []
    if not nodes:
        notes.append("no eligible node (check the lab's node_selector and tolerations)")
    for node in state.nodes:
        if node.list_may_be_truncated:
            notes.append(
                f"node {node.name} lists exactly {KUBELET_MAX_IMAGES} images: the kubelet lists "
                "only the largest, so it may have more; raise the kubelet's nodeStatusMaxImages"
            )
    if state.ineligible:
        notes.append("not eligible for labs: " + ", ".join(state.ineligible))
    return "\n".join([line.rstrip() for line in lines] + [f"note: {n}" for n in notes])
