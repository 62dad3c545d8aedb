"""Checks of the lab's parts: site secrets, init containers, static files, writable paths.

Called by :func:`lsst_spawner.lab.checks.lab_settings_and_problems` (check-config,
hub start and every spawn); each returns the frozen part of the settings and
every problem, named by trait. The rules that also run at spawn time live
next to their builders (:func:`~lsst_spawner.lab.files.file_problems`,
:func:`~lsst_spawner.lab.init.init_container_problems`), and are called here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..problems import ConfigProblem
from .errors import LabSpecError
from .files import LabFile, Occupied, file_problems, home_directory, parse_files
from .init import InitContainer, init_container_problems
from .names import expand_template, template_fields
from .secrets import (
    ENV_NAME_PATTERN,
    RESERVED_KEY_PREFIXES,
    RESERVED_SECRET_KEYS,
    ExtraSecret,
    SecretRef,
    is_secret_key,
)
from .volumes import BuiltinMount, SiteMount, check_absolute_path, parse_mounts

__all__ = [
    "check_extra_secrets",
    "check_files",
    "check_init_containers",
    "check_writable_paths",
]

#: A DNS subdomain (RFC 1123), the rule for Secret names.
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SECRET_FIELDS = {"key", "env", "hub_env", "secret_key_ref"}
_INIT_FIELDS = {"name", "image", "command", "volume_mounts", "privilege", "capabilities"}
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# Usernames whose home directories stand for every user's when the files are checked.
_SAMPLE_USERS = ("sample.user", "x" * 32)


def _secret_ref(
    raw: Any, where: str, namespace: str | None, problems: list[ConfigProblem]
) -> SecretRef | None:
    if not isinstance(raw, Mapping) or set(raw) - {"name", "key", "namespace"}:
        problems.append(ConfigProblem(where, "must be a dict with name, key and namespace"))
        return None
    name, key, other = raw.get("name"), raw.get("key"), raw.get("namespace")
    start = len(problems)
    if other is not None and other != namespace:
        lab = f"the lab namespace ({namespace!r})" if namespace else "the lab namespace"
        problems.append(
            ConfigProblem(
                f"{where}.namespace",
                f"{other!r}: a lab can only read Secrets in {lab}; copy the Secret there",
            )
        )
    if not isinstance(name, str) or len(name) > 253 or not _SUBDOMAIN.fullmatch(name):
        problems.append(ConfigProblem(f"{where}.name", f"{name!r} is not a Secret name"))
    if not is_secret_key(key):
        problems.append(ConfigProblem(f"{where}.key", f"{key!r} is not a Secret key"))
    if len(problems) > start:
        return None
    return SecretRef(str(name), str(key))


def check_extra_secrets(
    raw_list: Sequence[Any], where: str, owned_env: frozenset[str], namespace: str | None
) -> tuple[tuple[ExtraSecret, ...], list[ConfigProblem]]:
    """``lab_extra_secrets``: from the hub's env (``hub_env``) or by ``secret_key_ref``."""
    problems: list[ConfigProblem] = []
    extras: list[ExtraSecret] = []
    keys: set[str] = set()
    for index, raw in enumerate(raw_list):
        here = f"{where}[{index}]"
        if not isinstance(raw, Mapping) or set(raw) - _SECRET_FIELDS:
            problems.append(
                ConfigProblem(here, "must be a dict with key, env and hub_env or secret_key_ref")
            )
            continue
        key, env, hub_env = raw.get("key"), raw.get("env"), raw.get("hub_env")
        if not is_secret_key(key):
            problems.append(ConfigProblem(f"{here}.key", f"{key!r} is not a file name"))
        elif key in RESERVED_SECRET_KEYS or str(key).startswith(RESERVED_KEY_PREFIXES):
            reserved = ", ".join([*RESERVED_SECRET_KEYS, *(p + "*" for p in RESERVED_KEY_PREFIXES)])
            problems.append(
                ConfigProblem(
                    f"{here}.key", f"{key!r} is reserved: the lab Secret holds {reserved}"
                )
            )
        elif key in keys:
            problems.append(ConfigProblem(f"{here}.key", f"{key!r} is repeated"))
        if env is not None and (
            not isinstance(env, str) or not ENV_NAME_PATTERN.fullmatch(env) or env in owned_env
        ):
            problems.append(
                ConfigProblem(f"{here}.env", f"{env!r} is not a free env variable name")
            )
        ref = None
        if ("hub_env" in raw) == ("secret_key_ref" in raw):
            problems.append(ConfigProblem(here, "give exactly one of hub_env and secret_key_ref"))
        elif "secret_key_ref" in raw:
            ref = _secret_ref(raw["secret_key_ref"], f"{here}.secret_key_ref", namespace, problems)
        elif not isinstance(hub_env, str) or not ENV_NAME_PATTERN.fullmatch(hub_env):
            problems.append(
                ConfigProblem(f"{here}.hub_env", f"{hub_env!r} is not an env variable name")
            )
        if isinstance(key, str):
            keys.add(key)
            extras.append(ExtraSecret(key, env if isinstance(env, str) else None, ref))
    return tuple(extras), problems


def _init_entry(
    raw: Any,
    here: str,
    defaults: tuple[str, tuple[str, ...], list[SiteMount]],
    problems: list[ConfigProblem],
) -> tuple[InitContainer, str] | None:
    """One ``lab_init_containers`` entry and the trait its mounts come from."""
    image, command, mounts = defaults
    if not isinstance(raw, Mapping) or set(raw) - _INIT_FIELDS:
        problems.append(
            ConfigProblem(here, f"must be a dict with {', '.join(sorted(_INIT_FIELDS))}")
        )
        return None
    start = len(problems)
    name = raw.get("name")
    if not isinstance(name, str) or not _DNS_LABEL.fullmatch(name):
        problems.append(ConfigProblem(f"{here}.name", f"{name!r} is not a DNS label"))
    image = raw.get("image", image)
    if not isinstance(image, str) or not image.strip():
        problems.append(ConfigProblem(f"{here}.image", "must be a non-empty image reference"))
    command = raw.get("command", command)
    if not isinstance(command, list | tuple) or not all(isinstance(a, str) for a in command):
        problems.append(ConfigProblem(f"{here}.command", "must be a list of strings"))
    privilege = raw.get("privilege", "user")
    default_caps: Sequence[Any] = ("CHOWN", "DAC_OVERRIDE", "FOWNER") if privilege == "root" else ()
    caps = raw.get("capabilities", default_caps)
    if not isinstance(caps, list | tuple) or not all(isinstance(c, str) for c in caps):
        problems.append(ConfigProblem(f"{here}.capabilities", "must be a list of names"))
        caps = ()
    mounts_from = "LSSTSpawner.lab_init_volume_mounts"
    if "volume_mounts" in raw:
        mounts_from = f"{here}.volume_mounts"
        raw_mounts = raw["volume_mounts"]
        mounts, mount_problems = parse_mounts(
            raw_mounts if isinstance(raw_mounts, list) else [raw_mounts], mounts_from
        )
        problems += mount_problems
    if len(problems) > start:
        return None
    container = InitContainer(
        name=str(name),
        image=str(image),
        command=tuple(command),
        mounts=tuple(mounts),
        privilege=str(privilege),
        capabilities=tuple(caps),
    )
    return container, mounts_from


def check_init_containers(
    raw_list: Sequence[Any],
    where: str,
    *,
    allow_privileged: bool,
    defaults: tuple[str, tuple[str, ...], list[SiteMount]],
) -> tuple[tuple[InitContainer, ...], dict[str, list[SiteMount]], list[ConfigProblem]]:
    """``lab_init_containers``: the containers, their mounts by trait, and every problem.

    ``defaults`` are ``lab_init_image``, ``lab_init_command`` and
    ``lab_init_volume_mounts``, for entries that do not give their own.
    """
    problems: list[ConfigProblem] = []
    containers: list[InitContainer] = []
    mounts: dict[str, list[SiteMount]] = {}
    names: dict[str, int] = {}
    for index, raw in enumerate(raw_list):
        here = f"{where}[{index}]"
        parsed = _init_entry(raw, here, defaults, problems)
        if parsed is None:
            continue
        container, mounts_from = parsed
        if container.name in names:
            problems.append(
                ConfigProblem(
                    f"{here}.name", f"{container.name!r} is also {where}[{names[container.name]}]"
                )
            )
        names.setdefault(container.name, index)
        for trait, message in init_container_problems(
            container, allow_privileged=allow_privileged, where=here
        ):
            problems.append(ConfigProblem(trait, message))
        containers.append(container)
        mounts[mounts_from] = list(container.mounts)
    return tuple(containers), mounts, problems


def check_writable_paths(
    paths: Sequence[Any], where: str, builtins: Sequence[BuiltinMount]
) -> list[ConfigProblem]:
    """``lab_writable_paths``: absolute, distinct, apart from each other and the built-ins.

    A writable path may contain a built-in directory (the runtime directory under
    ``/tmp``: the kubelet mounts it inside the emptyDir), not the NSS files (an empty
    ``/etc`` would hide the image's), and may not be or sit inside a built-in.
    """
    problems: list[ConfigProblem] = []
    for index, path in enumerate(paths):
        here = f"{where}[{index}]"
        if why := check_absolute_path(path):
            problems.append(ConfigProblem(here, why))
            continue
        others = [(f"{where}[{i}]", p, True) for i, p in enumerate(paths[:index])]
        others += [(b.trait, b.path, b.is_file) for b in builtins]
        for what, other, no_nesting in others:
            if isinstance(other, str) and (
                path == other
                or path.startswith(other + "/")
                or (no_nesting and other.startswith(path + "/"))
            ):
                problems.append(ConfigProblem(here, f"{path!r} collides with {what} ({other!r})"))
                break
    return problems


def check_files(
    raw: Sequence[Any],
    where: str,
    occupied: Sequence[Occupied],
    home_template: str,
) -> tuple[tuple[LabFile, ...], list[ConfigProblem]]:
    """``lab_files``: shape, size, and the same path rule each spawn applies.

    The home directory is checked for sample users (a spawn checks the user's own).
    """
    files, problems = parse_files(raw, where)
    homes = []
    for username in _SAMPLE_USERS:
        try:
            home = expand_template(home_template, template_fields(username, 1000, 1000), where="")
        except LabSpecError:  # the home template's own check reports it
            continue
        homes.append(home_directory(home))
    problems += file_problems(files, [*occupied, *homes], where)
    return tuple(files), problems
