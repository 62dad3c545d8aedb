"""Site volumes and their mounts: parsing, layout checks, group scoping and template expansion.

A mount may be scoped to groups (the identity's POSIX-safe group names, the same
names JupyterHub syncs): ``read_write_groups`` and ``read_only_groups``. A user in
a read-write group gets it read-write, else a user in a read-only group gets it
read-only, else the user gets no mount; a volume that none of the user's mounts
names is left out of the pod too. :func:`select_site_storage` makes that decision
from the identity's groups alone.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..auth.groups import group_name_problem
from ..config import ConfigProblem
from .errors import LabSpecError
from .names import DNS_LABEL_PATTERN, expand_template, template_fields

__all__ = [
    "RESERVED_VOLUME_NAMES",
    "VOLUME_SOURCES",
    "WRITABLE_VOLUME_PREFIX",
    "BuiltinMount",
    "SiteMount",
    "SiteVolume",
    "build_mounts",
    "build_volumes",
    "check_absolute_path",
    "check_kubespawner_layout",
    "check_mount_groups",
    "check_volume_layout",
    "parse_mounts",
    "parse_volumes",
    "select_site_storage",
]

#: Keys of a mount dict that scope it to groups.
GROUP_KEYS = ("read_write_groups", "read_only_groups")

#: Allowed volume sources and the keys each requires.
VOLUME_SOURCES: dict[str, tuple[str, ...]] = {
    "nfs": ("server", "path"),
    "hostPath": ("path",),
    "persistentVolumeClaim": ("claimName",),
    "emptyDir": (),
    "configMap": ("name",),
    "secret": ("secretName",),
}

#: Names of the volumes the lab always has; site volumes may not use them.
RESERVED_VOLUME_NAMES = ("lab-nss", "lab-secrets", "lab-runtime", "lab-files")
#: Prefix of the writable paths' emptyDir volumes (``lab-writable-0``), also reserved.
WRITABLE_VOLUME_PREFIX = "lab-writable-"

# Sample fields for checking templates at hub start, before any user exists.
_SAMPLE_FIELDS = template_fields("sample.user", 1000, 1000)


@dataclass(frozen=True)
class SiteVolume:
    """A volume the site defines: a name and one source of :data:`VOLUME_SOURCES`."""

    name: str
    source_type: str
    source: Mapping[str, Any]


@dataclass(frozen=True)
class SiteMount:
    """A mount of a site volume into the lab or init container.

    With :attr:`read_write_groups` or :attr:`read_only_groups` it is group-scoped:
    :meth:`for_groups` decides whether a user gets it, and read-only or not.
    """

    mount_path: str
    volume: str
    sub_path: str | None = None
    read_only: bool = False
    read_write_groups: frozenset[str] = frozenset()
    read_only_groups: frozenset[str] = frozenset()

    @property
    def group_scoped(self) -> bool:
        return bool(self.read_write_groups or self.read_only_groups)

    def for_groups(self, groups: Collection[str]) -> SiteMount | None:
        """This mount as a user in ``groups`` gets it, or None; read-write wins over read-only."""
        if not self.group_scoped:
            return self
        if self.read_write_groups.intersection(groups):
            return replace(self, read_only=False)
        if self.read_only_groups.intersection(groups):
            return replace(self, read_only=True)
        return None


@dataclass(frozen=True)
class BuiltinMount:
    """A path the lab always mounts; ``is_file`` for the ``subPath`` NSS files."""

    trait: str
    path: str
    is_file: bool = False


def check_absolute_path(value: object) -> str | None:
    """Return why ``value`` is not an absolute, normalized container path, or None."""
    if not isinstance(value, str) or not value.startswith("/"):
        return f"{value!r} must be an absolute path"
    if value == "/":
        return "'/' cannot be a mount path"
    if posixpath.normpath(value) != value or "//" in value:
        fixed = "/" + posixpath.normpath(value).lstrip("/")
        return f"{value!r} is not normalized (write {fixed!r})"
    if ":" in value or any(not c.isprintable() for c in value):
        return f"{value!r} must not contain ':' or control characters"
    return None


def _check_sub_path(value: str) -> str | None:
    expanded = value.format_map(_SAMPLE_FIELDS)
    if expanded.startswith("/") or posixpath.normpath(expanded) != expanded:
        return f"{value!r} must be a normalized relative path"
    if ".." in expanded.split("/"):
        return f"{value!r} must not contain '..'"
    if any(not c.isprintable() for c in expanded):
        return f"{value!r} must not contain control characters"
    return None


def _check_templates(data: Any, where: str, problems: list[ConfigProblem]) -> None:
    if isinstance(data, str):
        try:
            expand_template(data, _SAMPLE_FIELDS, where=where)
        except LabSpecError as error:
            problems.append(ConfigProblem(where, str(error).split(": ", 1)[1]))
    elif isinstance(data, Mapping):
        for key, value in data.items():
            _check_templates(value, f"{where}.{key}", problems)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _check_templates(value, f"{where}[{index}]", problems)


def parse_volumes(raw: Sequence[Any], where: str) -> tuple[list[SiteVolume], list[ConfigProblem]]:
    """Parse ``[{"name": ..., "<source>": {...}}, ...]``, collecting every problem."""
    volumes: list[SiteVolume] = []
    problems: list[ConfigProblem] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        here = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            problems.append(ConfigProblem(here, "must be a dict with a name and one source"))
            continue
        name = item.get("name")
        if not isinstance(name, str) or not DNS_LABEL_PATTERN.fullmatch(name):
            problems.append(ConfigProblem(f"{here}.name", f"{name!r} is not a DNS label"))
            continue
        if name in RESERVED_VOLUME_NAMES or str(name).startswith(WRITABLE_VOLUME_PREFIX):
            problems.append(ConfigProblem(f"{here}.name", f"{name!r} is reserved for the lab"))
            continue
        if name in seen:
            problems.append(ConfigProblem(f"{here}.name", f"duplicate volume name {name!r}"))
            continue
        seen.add(name)
        sources = [key for key in item if key != "name"]
        if len(sources) != 1 or sources[0] not in VOLUME_SOURCES:
            problems.append(
                ConfigProblem(
                    here,
                    f"needs exactly one source among {', '.join(VOLUME_SOURCES)}, found {sources}",
                )
            )
            continue
        source_type = sources[0]
        source = item[source_type]
        if not isinstance(source, Mapping):
            problems.append(ConfigProblem(f"{here}.{source_type}", "must be a dict"))
            continue
        missing = [key for key in VOLUME_SOURCES[source_type] if not source.get(key)]
        if missing:
            problems.append(ConfigProblem(f"{here}.{source_type}", f"missing {', '.join(missing)}"))
            continue
        _check_templates(dict(source), f"{here}.{source_type}", problems)
        volumes.append(SiteVolume(name, source_type, dict(source)))
    return volumes, problems


def parse_mounts(raw: Sequence[Any], where: str) -> tuple[list[SiteMount], list[ConfigProblem]]:
    """Parse ``[{"mount_path", "volume", "sub_path"?, "read_only"?}, ...]``."""
    mounts: list[SiteMount] = []
    problems: list[ConfigProblem] = []
    for index, item in enumerate(raw):
        here = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            problems.append(ConfigProblem(here, "must be a dict with mount_path and volume"))
            continue
        unknown = set(item) - {"mount_path", "volume", "sub_path", "read_only", *GROUP_KEYS}
        if unknown:
            problems.append(ConfigProblem(here, f"unknown keys {sorted(unknown)}"))
        path_problem = check_absolute_path(item.get("mount_path"))
        if path_problem:
            problems.append(ConfigProblem(f"{here}.mount_path", path_problem))
        volume = item.get("volume")
        if not isinstance(volume, str) or not volume:
            problems.append(ConfigProblem(f"{here}.volume", "must name a volume"))
        sub_path = item.get("sub_path")
        if sub_path is not None:
            before = len(problems)
            if not isinstance(sub_path, str) or not sub_path:
                problems.append(ConfigProblem(f"{here}.sub_path", "must be a non-empty string"))
            else:
                _check_templates(sub_path, f"{here}.sub_path", problems)
                if len(problems) == before and (why := _check_sub_path(sub_path)):
                    problems.append(ConfigProblem(f"{here}.sub_path", why))
        read_only = item.get("read_only", False)
        if not isinstance(read_only, bool):
            problems.append(ConfigProblem(f"{here}.read_only", "must be true or false"))
        # Kept with a bad group so that the layout check reports no follow-on problem.
        groups = _parse_mount_groups(item, here, problems)
        if path_problem is None and isinstance(volume, str) and isinstance(read_only, bool):
            mounts.append(SiteMount(item["mount_path"], volume, sub_path, read_only, *groups))
    return mounts, problems


def _parse_mount_groups(
    item: Mapping[str, Any], here: str, problems: list[ConfigProblem]
) -> tuple[frozenset[str], frozenset[str]]:
    """Parse ``read_write_groups`` and ``read_only_groups`` of one mount dict."""
    parsed: dict[str, frozenset[str]] = {}
    for key in GROUP_KEYS:
        raw = item.get(key)
        if raw is None:
            parsed[key] = frozenset()
            continue
        if not isinstance(raw, list | tuple) or not raw:
            problems.append(
                ConfigProblem(f"{here}.{key}", "must be a non-empty list of group names")
            )
            parsed[key] = frozenset()
            continue
        for index, name in enumerate(raw):
            if why := group_name_problem(name):
                problems.append(ConfigProblem(f"{here}.{key}[{index}]", why))
        parsed[key] = frozenset(name for name in raw if isinstance(name, str))
    read_write, read_only = parsed["read_write_groups"], parsed["read_only_groups"]
    for name in sorted(read_write & read_only):
        problems.append(
            ConfigProblem(
                f"{here}.read_only_groups",
                f"{name!r} is also in read_write_groups: a group gets a mount read-write or "
                "read-only, not both",
            )
        )
    if (read_write or read_only) and "read_only" in item:
        problems.append(
            ConfigProblem(
                f"{here}.read_only",
                "cannot be combined with read_write_groups or read_only_groups: with groups, "
                "the groups decide",
            )
        )
    return read_write, read_only


def check_mount_groups(
    mounts: Mapping[str, Sequence[SiteMount]], known: Collection[str]
) -> list[ConfigProblem]:
    """Flag group-scoped mounts naming a group outside ``known`` (groups known at config time).

    ``mounts`` maps a trait name to its mounts, as in :func:`check_volume_layout`.
    """
    problems = []
    for trait, trait_mounts in mounts.items():
        for index, mount in enumerate(trait_mounts):
            for key in GROUP_KEYS:
                for name in sorted(getattr(mount, key) - set(known)):
                    problems.append(
                        ConfigProblem(
                            f"{trait}[{index}].{key}",
                            f"{name!r} is not among the authenticator's known_groups: "
                            "no user can be in it",
                        )
                    )
    return problems


def select_site_storage(
    volumes: Sequence[SiteVolume],
    mounts: Sequence[SiteMount],
    init_mounts: Sequence[SiteMount],
    groups: Collection[str],
) -> tuple[list[SiteVolume], list[SiteMount], list[SiteMount]]:
    """The site volumes, lab mounts and init mounts of a user in ``groups`` (group names).

    Group-scoped mounts the user is in no group of are left out, the others get
    their read-only flag for the user, and volumes no remaining mount names are
    left out too.
    """
    chosen = [m for m in (mount.for_groups(groups) for mount in mounts) if m is not None]
    chosen_init = [m for m in (mount.for_groups(groups) for mount in init_mounts) if m is not None]
    used = {mount.volume for mount in (*chosen, *chosen_init)}
    return [v for v in volumes if v.name in used], chosen, chosen_init


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


def check_volume_layout(
    volumes: Sequence[SiteVolume],
    mounts: Mapping[str, Sequence[SiteMount]],
    builtins: Sequence[BuiltinMount],
) -> list[ConfigProblem]:
    """Check mounts against volumes and built-in mounts.

    ``mounts`` maps a trait name (``LSSTSpawner.lab_volume_mounts``) to its
    mounts. Every mount must name a defined volume, every volume must be
    mounted somewhere, no two mounts of one container share a path, and no site
    mount may equal, contain or sit inside a built-in mount.
    """
    problems: list[ConfigProblem] = []
    names = {volume.name for volume in volumes}
    used: set[str] = set()
    for trait, trait_mounts in mounts.items():
        paths: dict[str, int] = {}
        for index, mount in enumerate(trait_mounts):
            here = f"{trait}[{index}]"
            if mount.volume not in names:
                problems.append(
                    ConfigProblem(f"{here}.volume", f"{mount.volume!r} is not a defined volume")
                )
            used.add(mount.volume)
            if mount.mount_path in paths:
                problems.append(
                    ConfigProblem(
                        f"{here}.mount_path",
                        f"{mount.mount_path!r} is also mounted by "
                        f"{trait}[{paths[mount.mount_path]}]",
                    )
                )
            paths.setdefault(mount.mount_path, index)
            for builtin in builtins:
                if _inside(mount.mount_path, builtin.path) or _inside(
                    builtin.path, mount.mount_path
                ):
                    problems.append(
                        ConfigProblem(
                            f"{here}.mount_path",
                            f"{mount.mount_path!r} collides with the built-in mount "
                            f"{builtin.path!r} ({builtin.trait})",
                        )
                    )
    for index, volume in enumerate(volumes):
        if volume.name not in used:
            problems.append(
                ConfigProblem(
                    f"LSSTSpawner.lab_volumes[{index}].name",
                    f"volume {volume.name!r} is not mounted by the lab or the init container",
                )
            )
    return problems


def _field(item: Any, *keys: str) -> Any:
    """A field of a KubeSpawner list entry: a dict (camelCase or snake_case keys) or a model."""
    for key in keys:
        value = item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)
        if value is not None:
            return value
    return None


def check_kubespawner_layout(
    kubespawner: Mapping[str, Sequence[Any]],
    *,
    volume_names: Mapping[str, str],
    mount_paths: Mapping[str, str],
    init_container_names: Mapping[str, str],
) -> list[ConfigProblem]:
    """Check KubeSpawner's ``volumes``, ``volume_mounts`` and ``init_containers`` against ours.

    ``kubespawner`` maps each of those trait names to its configured list. The
    other arguments map each volume name, mount path and init container name
    the lab always has to the trait that sets it. An entry of KubeSpawner's with
    one of those names or paths is what :func:`lsst_spawner.lab.spec.apply_lab_spec`
    refuses at every spawn; here it is a problem of the KubeSpawner trait.
    """
    problems: list[ConfigProblem] = []
    rules = (
        ("volumes", ("name",), volume_names, "volume name"),
        ("volume_mounts", ("mountPath", "mount_path"), mount_paths, "mount path"),
        ("init_containers", ("name",), init_container_names, "init container name"),
    )
    for trait, keys, ours, kind in rules:
        for index, item in enumerate(kubespawner.get(trait) or ()):
            value = _field(item, *keys)
            if isinstance(value, str) and value in ours:
                problems.append(
                    ConfigProblem(
                        f"KubeSpawner.{trait}[{index}].{keys[0]}",
                        f"{value!r} is the {kind} of the lab's own {ours[value]}; choose another",
                    )
                )
    return problems


def _expand(data: Any, fields: Mapping[str, str], where: str) -> Any:
    if isinstance(data, str):
        return expand_template(data, fields, where=where)
    if isinstance(data, Mapping):
        return {key: _expand(value, fields, f"{where}.{key}") for key, value in data.items()}
    if isinstance(data, list):
        return [_expand(value, fields, f"{where}[{i}]") for i, value in enumerate(data)]
    return data


def build_volumes(volumes: Sequence[SiteVolume], fields: Mapping[str, str]) -> list[dict[str, Any]]:
    """Return Kubernetes volume dicts with placeholders expanded."""
    return [
        {
            "name": v.name,
            v.source_type: _expand(v.source, fields, f"LSSTSpawner.lab_volumes.{v.name}"),
        }
        for v in volumes
    ]


def build_mounts(mounts: Sequence[SiteMount], fields: Mapping[str, str]) -> list[dict[str, Any]]:
    """Return Kubernetes volumeMount dicts with placeholders expanded in sub paths."""
    result = []
    for mount in mounts:
        entry: dict[str, Any] = {"name": mount.volume, "mountPath": mount.mount_path}
        if mount.sub_path:
            sub_path = expand_template(
                mount.sub_path, fields, where="LSSTSpawner.lab_volume_mounts.sub_path"
            )
            # Checked again after expansion: the user's name is part of it now.
            if (
                sub_path.startswith("/")
                or posixpath.normpath(sub_path) != sub_path
                or (".." in sub_path.split("/"))
            ):
                raise LabSpecError(f"sub path {sub_path!r} of {mount.mount_path!r} is not safe")
            entry["subPath"] = sub_path
        if mount.read_only:
            entry["readOnly"] = True
        result.append(entry)
    return result
