"""Small static files written into every lab, read-only, through the lab's Secret.

Each file of ``LSSTSpawner.lab_files`` is the lab Secret's key ``file.<n>``,
mounted with ``subPath`` at its path from the ``lab-files`` volume, with its
mode. :func:`file_problems` is the one rule on where a file may go: check-config
applies it with sample users' home directories, and every spawn applies it
again with the user's own (:func:`check_lab_files`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..problems import ConfigProblem
from .errors import LabSpecError
from .limits import MAX_OBJECT_DATA_BYTES
from .volumes import check_absolute_path

__all__ = [
    "FILES_VOLUME",
    "LabFile",
    "Occupied",
    "build_file_mounts",
    "build_files_volume",
    "check_lab_files",
    "file_data",
    "file_key",
    "file_problems",
    "home_directory",
    "occupied_paths",
    "parse_files",
    "unreadable_files",
]

#: The volume of the lab's static files (a ``secret`` volume of the lab's Secret).
FILES_VOLUME = "lab-files"
_DEFAULT_MODE = 0o444


@dataclass(frozen=True)
class LabFile:
    """One static file: where, what, and its permission bits (the owner is root)."""

    path: str
    content: str
    mode: int = _DEFAULT_MODE


@dataclass(frozen=True)
class Occupied:
    """A path of the lab no file may equal, contain or sit inside, and what it is."""

    path: str
    what: str


def occupied_paths(
    builtins: Mapping[str, str], writable: Sequence[str], site_mounts: Sequence[str]
) -> list[Occupied]:
    """The lab's mounts no file may take: ``builtins`` by trait, writable paths, site mounts."""
    return [
        *(
            Occupied(path, f"the built-in mount LSSTSpawner.{trait}")
            for trait, path in builtins.items()
        ),
        *(Occupied(path, "a writable path (LSSTSpawner.lab_writable_paths)") for path in writable),
        *(Occupied(path, "a site mount (LSSTSpawner.lab_volume_mounts)") for path in site_mounts),
    ]


def home_directory(path: str) -> Occupied:
    """The user's home directory, which no file may equal, contain or sit inside."""
    return Occupied(path, "the home directory (LSSTSpawner.lab_home_directory)")


def unreadable_files(
    files: Sequence[LabFile], fs_group: int | None, where: str
) -> list[ConfigProblem]:
    """Warnings for files the lab's user cannot read: owned by root, group ``fs_group``."""
    warnings = []
    for index, file in enumerate(files):
        if file.mode & 0o004 or (fs_group is not None and file.mode & 0o040):
            continue
        group = f"group lab_fs_group ({fs_group})" if fs_group is not None else "no lab_fs_group"
        warnings.append(
            ConfigProblem(
                f"{where}[{index}].mode",
                f"{file.mode:#o}: the lab's user cannot read this file (owner root, {group})",
            )
        )
    return warnings


def file_key(index: int) -> str:
    """The lab Secret's key of the ``index``-th file."""
    return f"file.{index}"


def _size(content: str) -> int:
    return len(content.encode("utf-8", "surrogatepass"))


def parse_files(raw: Sequence[Any], where: str) -> tuple[list[LabFile], list[ConfigProblem]]:
    """Parse ``[{"path", "content", "mode"?}, ...]``; every problem of shape, path and size."""
    files: list[LabFile] = []
    problems: list[ConfigProblem] = []
    total = 0
    for index, item in enumerate(raw):
        here = f"{where}[{index}]"
        if not isinstance(item, Mapping) or set(item) - {"path", "content", "mode"}:
            problems.append(ConfigProblem(here, "must be a dict with path, content and mode"))
            continue
        path, content, mode = item.get("path"), item.get("content"), item.get("mode", 0o444)
        if why := check_absolute_path(path):
            problems.append(ConfigProblem(f"{here}.path", why))
            continue
        if not isinstance(content, str):
            problems.append(ConfigProblem(f"{here}.content", "must be a string"))
            continue
        if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o777:
            problems.append(
                ConfigProblem(f"{here}.mode", f"{mode!r} must be permission bits in 0..0o777")
            )
            continue
        total += _size(content)
        if total > MAX_OBJECT_DATA_BYTES:
            problems.append(
                ConfigProblem(
                    f"{here}.content",
                    f"the files add up to {total / 1024:.1f} KiB with this one, over the "
                    f"{MAX_OBJECT_DATA_BYTES / 1024:.1f} KiB a Kubernetes Secret may hold",
                )
            )
        files.append(LabFile(str(path), content, mode))
    return files, problems


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def file_problems(
    files: Sequence[LabFile], occupied: Sequence[Occupied], where: str
) -> list[ConfigProblem]:
    """Files at the same path, or at, above or inside a path of ``occupied``.

    ``occupied`` holds the lab's mounts (NSS files, secret and runtime
    directories, writable directories, site mounts) and its home directory: a
    file there would hide them, or put a stub file on the user's storage.
    """
    problems: list[ConfigProblem] = []
    seen: dict[str, int] = {}
    for index, file in enumerate(files):
        here = f"{where}[{index}].path"
        if file.path in seen:
            problems.append(
                ConfigProblem(here, f"{file.path!r} is also the path of {where}[{seen[file.path]}]")
            )
            continue
        seen[file.path] = index
        earlier = [Occupied(f.path, f"{where}[{i}]") for i, f in enumerate(files[:index])]
        for other in [*earlier, *occupied]:
            if _inside(file.path, other.path) or _inside(other.path, file.path):
                problems.append(
                    ConfigProblem(
                        here, f"{file.path!r} collides with {other.what} ({other.path!r})"
                    )
                )
                break
    return problems


def check_lab_files(files: Sequence[LabFile], occupied: Sequence[Occupied], where: str) -> None:
    """:func:`file_problems` at spawn time: raise :class:`LabSpecError` for the first problem."""
    problems = file_problems(files, occupied, where)
    if problems:
        raise LabSpecError(str(problems[0]))


def file_data(files: Sequence[LabFile]) -> dict[str, str]:
    """The lab Secret's data for ``files``: ``file.<n>`` -> content."""
    return {file_key(index): file.content for index, file in enumerate(files)}


def build_files_volume(secret_name: str, files: Sequence[LabFile]) -> dict[str, Any] | None:
    """The ``lab-files`` volume: each file's key with its mode, or None without files."""
    if not files:
        return None
    items = [
        {"key": file_key(index), "path": file_key(index), "mode": file.mode}
        for index, file in enumerate(files)
    ]
    return {
        "name": FILES_VOLUME,
        "secret": {"secretName": secret_name, "defaultMode": _DEFAULT_MODE, "items": items},
    }


def build_file_mounts(files: Sequence[LabFile]) -> list[dict[str, Any]]:
    """One read-only ``subPath`` mount per file."""
    return [
        {"name": FILES_VOLUME, "mountPath": file.path, "subPath": file_key(index), "readOnly": True}
        for index, file in enumerate(files)
    ]
