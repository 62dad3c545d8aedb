"""Lab sizes: CPU and memory quantities, container resources and size environment."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ..config import ConfigProblem

__all__ = [
    "LabSize",
    "build_resources",
    "build_size_env",
    "describe_size",
    "format_memory",
    "parse_cpu",
    "parse_memory",
    "parse_sizes",
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


@dataclass(frozen=True)
class LabSize:
    """A size users may choose: CPU in cores and memory in bytes, both limits."""

    name: str
    cpu: float
    memory: int


def parse_cpu(value: object) -> float:
    """Parse a CPU quantity (``2``, ``0.5``, ``"1500m"``) into cores; at least 1m."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a CPU quantity")
    if isinstance(value, int | float):
        cores = float(value)
    elif isinstance(value, str) and (match := _QUANTITY.fullmatch(value.strip())):
        number, suffix = match.groups()
        if suffix not in ("", "m"):
            raise ValueError(f"{value!r} is not a CPU quantity: use cores (2, 0.5) or '500m'")
        cores = float(number) / (1000 if suffix == "m" else 1)
    else:
        raise ValueError(f"{value!r} is not a CPU quantity: use cores (2, 0.5) or '500m'")
    if not math.isfinite(cores) or cores < 0.001:
        raise ValueError(f"{value!r} must be at least 1m (0.001 cores)")
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
    raw: Sequence[Any], default: str, where: str = "LSSTSpawner.lab_sizes"
) -> tuple[list[LabSize], list[ConfigProblem]]:
    """Parse ``[{"name", "cpu", "memory"}, ...]`` and check the default, collecting problems."""
    sizes: list[LabSize] = []
    problems: list[ConfigProblem] = []
    names: set[str] = set()
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
        ok = True
        if not isinstance(name, str) or not name.strip() or not name.isprintable():
            problems.append(ConfigProblem(f"{here}.name", f"{name!r} must be a non-empty name"))
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
    if raw and default not in names and not any(p.where.endswith(".name") for p in problems):
        problems.append(
            ConfigProblem(
                "LSSTSpawner.lab_default_size",
                f"{default!r} is not among the sizes ({', '.join(sorted(names))})",
            )
        )
    return sizes, problems


def _requests(size: LabSize, ratio: float) -> tuple[float, int]:
    return max(0.001, round(size.cpu * ratio, 3)), int(size.memory * ratio)


def build_resources(size: LabSize, ratio: float) -> dict[str, dict[str, str]]:
    """Return container ``resources``: limits are the size, requests ``ratio`` of it."""
    cpu_request, memory_request = _requests(size, ratio)
    return {
        "limits": {"cpu": _format_cpu(size.cpu), "memory": str(size.memory)},
        "requests": {"cpu": _format_cpu(cpu_request), "memory": str(memory_request)},
    }


def build_size_env(size: LabSize, ratio: float) -> dict[str, str]:
    """Return ``CPU_LIMIT``, ``CPU_GUARANTEE`` (cores), ``MEM_*`` (bytes) and ``CONTAINER_SIZE``."""
    cpu_request, memory_request = _requests(size, ratio)
    return {
        "CPU_LIMIT": f"{size.cpu:g}",
        "CPU_GUARANTEE": f"{cpu_request:g}",
        "MEM_LIMIT": str(size.memory),
        "MEM_GUARANTEE": str(memory_request),
        "CONTAINER_SIZE": f"{size.name} ({size.cpu:g} CPU, {format_memory(size.memory)} RAM)",
    }
