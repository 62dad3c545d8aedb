"""Lab sizes: CPU and memory quantities, container resources and size environment."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ..config import ConfigProblem

__all__ = [
    "MAX_CPU",
    "MAX_MEMORY",
    "SIZE_NAME_PATTERN",
    "SIZE_NAME_RULE",
    "LabProfile",
    "LabSize",
    "apply_profile_scheduling",
    "build_profile_env",
    "build_profile_resources",
    "build_profile_scheduling",
    "build_resources",
    "build_size_env",
    "describe_size",
    "format_memory",
    "parse_cpu",
    "parse_memory",
    "parse_sizes",
    "size_profile",
]

_MEMORY_SUFFIXES = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
}
_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)")

#: Size names: what users pick in the form and send as ``user_options["size"]``.
SIZE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
#: :data:`SIZE_NAME_PATTERN` in words, for messages and help.
SIZE_NAME_RULE = "1 to 63 of A-Z a-z 0-9 _ . -, starting with a letter or digit"
#: Most CPU a size may have, in cores (far beyond any node; keeps millicores exact).
MAX_CPU = 1_000_000
#: Most memory a size may have, in bytes: 1Ei, below Kubernetes' int64 quantities.
MAX_MEMORY = 2**60


@dataclass(frozen=True)
class LabSize:
    """A size users may choose: CPU in cores and memory in bytes, both limits."""

    name: str
    cpu: float
    memory: int


@dataclass(frozen=True)
class LabProfile:
    """What a lab runs with: limits, guarantees and, from a node group, where and with what.

    A configured size is a profile without scheduling (:func:`size_profile`); a
    menu profile brings its node group's node selector, tolerations, affinity
    and extended resources (``nvidia.com/gpu``), each requested and limited.
    """

    name: str
    cpu_limit: float
    cpu_guarantee: float
    memory_limit: int
    memory_guarantee: int
    node_selector: tuple[tuple[str, str], ...] = ()
    #: Kubernetes tolerations and affinity in the wire format, as JSON text (hashable).
    tolerations_json: tuple[str, ...] = ()
    affinity_json: str = ""
    extended_resources: tuple[tuple[str, int], ...] = ()


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_cpu(value: object) -> float:
    """Parse a CPU quantity (``2``, ``0.5``, ``"1500m"``) into cores; at least 1m."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a CPU quantity")
    if isinstance(value, int) and value > MAX_CPU:  # float() of a huge int overflows
        raise ValueError(f"{_shown(value)} is more than {MAX_CPU:,} cores")
    if isinstance(value, int | float):
        cores = float(value)
    elif isinstance(value, str) and (match := _QUANTITY.fullmatch(value.strip())):
        number, suffix = match.groups()
        if suffix not in ("", "m"):
            raise ValueError(f"{value!r} is not a CPU quantity: use cores (2, 0.5) or '500m'")
        cores = float(number) / (1000 if suffix == "m" else 1)  # float("9" * 400) is inf
    else:
        raise ValueError(f"{value!r} is not a CPU quantity: use cores (2, 0.5) or '500m'")
    if math.isinf(cores) and cores > 0:
        raise ValueError(f"{_shown(value)} is more than {MAX_CPU:,} cores")
    if not math.isfinite(cores) or cores < 0.001:
        raise ValueError(f"{value!r} must be at least 1m (0.001 cores)")
    if cores > MAX_CPU:
        raise ValueError(f"{value!r} is more than {MAX_CPU:,} cores")
    return cores


def parse_memory(value: object) -> int:
    """Parse a memory quantity (``"4Gi"``, ``"512Mi"``, ``"8G"``, bytes) into bytes."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a memory quantity")
    if isinstance(value, int):
        amount = value
    elif isinstance(value, str) and (match := _QUANTITY.fullmatch(value.strip())):
        number, suffix = match.groups()
        if suffix not in _MEMORY_SUFFIXES:
            raise ValueError(
                f"{value!r} is not a memory quantity: use bytes or a suffix among "
                f"{', '.join(s for s in _MEMORY_SUFFIXES if s)} (for example '4Gi')"
            )
        try:
            amount = int(Decimal(number) * _MEMORY_SUFFIXES[suffix])
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a memory quantity") from None
    else:
        raise ValueError(f"{value!r} is not a memory quantity: use bytes or a string like '4Gi'")
    if amount < 2**20:
        raise ValueError(f"{value!r} is less than 1Mi; a lab needs more memory than that")
    if amount > MAX_MEMORY:
        raise ValueError(f"{_shown(value)} is more than 1Ei ({MAX_MEMORY} bytes)")
    return amount


def format_memory(amount: int) -> str:
    """Return ``amount`` bytes as the shortest exact binary quantity (``4Gi``)."""
    for suffix in ("Pi", "Ti", "Gi", "Mi", "Ki"):
        if amount % _MEMORY_SUFFIXES[suffix] == 0:
            return f"{amount // _MEMORY_SUFFIXES[suffix]}{suffix}"
    return str(amount)


def _format_cpu(cores: float) -> str:
    millis = max(1, round(cores * 1000))
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def describe_size(size: LabSize) -> str:
    """A size as users read it in the form: ``medium (2 CPU, 8Gi RAM)``."""
    return f"{size.name} ({_format_cpu(size.cpu)} CPU, {format_memory(size.memory)} RAM)"


def parse_sizes(
    raw: Sequence[Any],
    default: str,
    where: str = "LSSTSpawner.lab_sizes",
    *,
    default_where: str = "LSSTSpawner.lab_default_size",
) -> tuple[list[LabSize], list[ConfigProblem]]:
    """Parse ``[{"name", "cpu", "memory"}, ...]`` and check the default, collecting problems.

    Names follow :data:`SIZE_NAME_PATTERN`, the grammar the options form accepts.
    """
    sizes: list[LabSize] = []
    problems: list[ConfigProblem] = []
    names: set[str] = set()
    named: set[str] = set()  # every name given, also of sizes with problems
    if not raw:
        problems.append(ConfigProblem(where, "at least one size is required"))
    for index, item in enumerate(raw):
        here = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            problems.append(ConfigProblem(here, "must be a dict with name, cpu and memory"))
            continue
        unknown = set(item) - {"name", "cpu", "memory"}
        if unknown:
            problems.append(ConfigProblem(here, f"unknown keys {sorted(unknown)}"))
        name = item.get("name")
        if isinstance(name, str):
            named.add(name)
        ok = True
        if not isinstance(name, str) or not SIZE_NAME_PATTERN.fullmatch(name):
            shown = name if not isinstance(name, str) or len(name) <= 80 else name[:77] + "..."
            problems.append(
                ConfigProblem(f"{here}.name", f"{shown!r} is not a size name: use {SIZE_NAME_RULE}")
            )
            ok = False
        elif name in names:
            problems.append(ConfigProblem(f"{here}.name", f"duplicate size name {name!r}"))
            ok = False
        try:
            cpu = parse_cpu(item.get("cpu"))
        except ValueError as error:
            problems.append(ConfigProblem(f"{here}.cpu", str(error)))
            ok = False
        try:
            memory = parse_memory(item.get("memory"))
        except ValueError as error:
            problems.append(ConfigProblem(f"{here}.memory", str(error)))
            ok = False
        if ok:
            assert isinstance(name, str)
            names.add(name)
            sizes.append(LabSize(name, cpu, memory))
    # A default naming a size with problems is not a problem of its own.
    if raw and default not in named and not any(p.where.endswith(".name") for p in problems):
        problems.append(
            ConfigProblem(
                default_where,
                f"{default!r} is not among the sizes ({', '.join(sorted(names))})",
            )
        )
    return sizes, problems


def size_profile(size: LabSize, ratio: float) -> LabProfile:
    """A configured size as a profile: its limits, guarantees ``ratio`` of them."""
    return LabProfile(
        name=size.name,
        cpu_limit=size.cpu,
        cpu_guarantee=max(0.001, round(size.cpu * ratio, 3)),
        memory_limit=size.memory,
        memory_guarantee=int(size.memory * ratio),
    )


def build_profile_resources(profile: LabProfile) -> dict[str, dict[str, str]]:
    """Container ``resources``: the profile's limits and guarantees, and its extended resources.

    Extended resources cannot be overcommitted: each is requested as much as it is limited.
    """
    extended = {name: str(count) for name, count in profile.extended_resources}
    return {
        "limits": {
            "cpu": _format_cpu(profile.cpu_limit),
            "memory": str(profile.memory_limit),
            **extended,
        },
        "requests": {
            "cpu": _format_cpu(profile.cpu_guarantee),
            "memory": str(profile.memory_guarantee),
            **extended,
        },
    }


def build_profile_scheduling(profile: LabProfile) -> dict[str, Any]:
    """The pod spec fields the profile's node group sets: nodeSelector, tolerations, affinity."""
    scheduling: dict[str, Any] = {}
    if profile.node_selector:
        scheduling["nodeSelector"] = dict(profile.node_selector)
    if profile.tolerations_json:
        scheduling["tolerations"] = [json.loads(item) for item in profile.tolerations_json]
    if profile.affinity_json:
        scheduling["affinity"] = json.loads(profile.affinity_json)
    return scheduling


def build_resources(size: LabSize, ratio: float) -> dict[str, dict[str, str]]:
    """Return container ``resources``: limits are the size, requests ``ratio`` of it."""
    return build_profile_resources(size_profile(size, ratio))


def build_size_env(size: LabSize, ratio: float) -> dict[str, str]:
    """Return ``CPU_LIMIT``, ``CPU_GUARANTEE`` (cores), ``MEM_*`` (bytes) and ``CONTAINER_SIZE``."""
    return build_profile_env(size_profile(size, ratio))


def build_profile_env(profile: LabProfile) -> dict[str, str]:
    """:func:`build_size_env` of a profile: its limits and guarantees as the lab reads them."""
    memory = format_memory(profile.memory_limit)
    return {
        "CPU_LIMIT": f"{profile.cpu_limit:g}",
        "CPU_GUARANTEE": f"{profile.cpu_guarantee:g}",
        "MEM_LIMIT": str(profile.memory_limit),
        "MEM_GUARANTEE": str(profile.memory_guarantee),
        "CONTAINER_SIZE": f"{profile.name} ({profile.cpu_limit:g} CPU, {memory} RAM)",
    }


def apply_profile_scheduling(body: dict[str, Any], scheduling: Mapping[str, Any]) -> None:
    """The profile's node group on the pod spec, with KubeSpawner's own settings kept.

    Its node selector entries win over KubeSpawner's for the same key, its
    tolerations are added to KubeSpawner's, and its affinity, when it has one,
    replaces KubeSpawner's (two affinities cannot be merged without changing
    what either means).
    """
    if "nodeSelector" in scheduling:
        body["nodeSelector"] = {**(body.get("nodeSelector") or {}), **scheduling["nodeSelector"]}
    if "tolerations" in scheduling:
        theirs = list(body.get("tolerations") or [])
        body["tolerations"] = theirs + [t for t in scheduling["tolerations"] if t not in theirs]
    if "affinity" in scheduling:
        body["affinity"] = scheduling["affinity"]
