"""The cross-trait checks of ``LabTraits``: each returns problems named by trait, never raises."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config import ConfigProblem
from ..identity import MAX_ID
from .errors import LabSpecError
from .names import build_object_names, expand_template, template_fields
from .nss import (
    NssGroup,
    NssSettings,
    NssUser,
    check_unique,
    nss_group_from_dict,
    nss_user_from_dict,
    parse_group,
    parse_passwd,
)
from .secrets import ENV_NAME_PATTERN, RESERVED_SECRET_KEYS, SECRET_KEY_PATTERN, ExtraSecret
from .security import MAX_GROUPS_LIMIT
from .spec import OWNED_ENV
from .volumes import (
    BuiltinMount,
    check_absolute_path,
    check_volume_layout,
    parse_mounts,
    parse_volumes,
)

if TYPE_CHECKING:
    from .traits import LabTraits

_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?")
# Usernames that stress the pod name template: long, dotted, upper case.
_SAMPLE_USERNAMES = ("a", "first.last", "x" * 64, "Mixed_Case-User")


def trait_name(t: LabTraits, trait: str) -> str:
    """Return the trait as operators write it: ``LSSTSpawner.<trait>``."""
    return f"{t.trait_owner}.{trait}"


def check_names(t: LabTraits) -> list[ConfigProblem]:
    for username in _SAMPLE_USERNAMES:
        try:
            build_object_names(t.lab_pod_name_template, username)
        except LabSpecError as error:
            return [ConfigProblem(trait_name(t, "lab_pod_name_template"), _message(error))]
    return []


def check_nss(t: LabTraits) -> tuple[NssSettings | None, list[ConfigProblem]]:
    problems: list[ConfigProblem] = []
    base_users: tuple[NssUser, ...] = ()
    base_groups: tuple[NssGroup, ...] = ()
    users: list[NssUser] = []
    groups: list[NssGroup] = []
    try:
        base_users = parse_passwd(t.lab_base_passwd, "passwd")
    except LabSpecError as error:
        problems.append(ConfigProblem(trait_name(t, "lab_base_passwd"), str(error)))
    try:
        base_groups = parse_group(t.lab_base_group, "group")
    except LabSpecError as error:
        problems.append(ConfigProblem(trait_name(t, "lab_base_group"), str(error)))
    for index, raw in enumerate(t.lab_extra_users):
        where = trait_name(t, f"lab_extra_users[{index}]")
        try:
            users.append(nss_user_from_dict(raw, where))
        except LabSpecError as error:
            problems.append(_problem(error))
    for index, raw in enumerate(t.lab_extra_groups):
        where = trait_name(t, f"lab_extra_groups[{index}]")
        try:
            groups.append(nss_group_from_dict(raw, where))
        except LabSpecError as error:
            problems.append(_problem(error))
    for message in check_unique((*base_users, *users), (*base_groups, *groups)):
        problems.append(ConfigProblem(trait_name(t, "lab_extra_users/lab_extra_groups"), message))
    home_where = trait_name(t, "lab_home_directory")
    try:
        home = expand_template(
            t.lab_home_directory, template_fields("sample", 1000, 1000), where=home_where
        )
        if check_absolute_path(home):
            problems.append(ConfigProblem(home_where, str(check_absolute_path(home))))
    except LabSpecError as error:
        problems.append(_problem(error))
    if check_absolute_path(t.lab_shell):
        problems.append(
            ConfigProblem(trait_name(t, "lab_shell"), str(check_absolute_path(t.lab_shell)))
        )
    settings = NssSettings(
        base_passwd=base_users,
        base_group=base_groups,
        extra_users=tuple(users),
        extra_groups=tuple(groups),
        home_template=t.lab_home_directory,
        shell=t.lab_shell,
    )
    return (None if problems else settings), problems


def builtin_mounts(t: LabTraits) -> list[BuiltinMount]:
    return [
        BuiltinMount(trait_name(t, "lab_passwd_path"), t.lab_passwd_path, is_file=True),
        BuiltinMount(trait_name(t, "lab_group_path"), t.lab_group_path, is_file=True),
        BuiltinMount(trait_name(t, "lab_secret_directory"), t.lab_secret_directory),
        BuiltinMount(trait_name(t, "lab_runtime_directory"), t.lab_runtime_directory),
    ]


def check_paths(t: LabTraits) -> list[ConfigProblem]:
    problems = []
    builtins = builtin_mounts(t)
    for builtin in builtins:
        if why := check_absolute_path(builtin.path):
            problems.append(ConfigProblem(builtin.trait, why))
    for i, first in enumerate(builtins):
        for second in builtins[i + 1 :]:
            a, b = first.path, second.path
            if a == b or a.startswith(b + "/") or b.startswith(a + "/"):
                problems.append(
                    ConfigProblem(second.trait, f"{b!r} collides with {first.trait} ({a!r})")
                )
    return problems


def check_volumes(t: LabTraits) -> tuple[tuple[Any, Any, Any] | None, list[ConfigProblem]]:
    volumes, problems = parse_volumes(t.lab_volumes, trait_name(t, "lab_volumes"))
    mounts, mount_problems = parse_mounts(t.lab_volume_mounts, trait_name(t, "lab_volume_mounts"))
    init_mounts, init_problems = parse_mounts(
        t.lab_init_volume_mounts, trait_name(t, "lab_init_volume_mounts")
    )
    problems += mount_problems + init_problems
    problems += check_volume_layout(
        volumes,
        {
            trait_name(t, "lab_volume_mounts"): mounts,
            trait_name(t, "lab_init_volume_mounts"): init_mounts,
        },
        builtin_mounts(t),
    )
    if t.lab_init_volume_mounts and not t.lab_init_enabled:
        problems.append(
            ConfigProblem(
                trait_name(t, "lab_init_volume_mounts"),
                "set, but lab_init_enabled is False: the init container does not run",
            )
        )
    return (None if problems else (volumes, mounts, init_mounts)), problems


def check_numbers(t: LabTraits) -> list[ConfigProblem]:
    problems = []
    if not 0 < t.lab_size_request_ratio <= 1:
        problems.append(
            ConfigProblem(
                trait_name(t, "lab_size_request_ratio"),
                f"{t.lab_size_request_ratio!r} must be more than 0 and at most 1",
            )
        )
    if t.lab_fs_group is not None and not 1 <= t.lab_fs_group <= MAX_ID:
        problems.append(
            ConfigProblem(
                trait_name(t, "lab_fs_group"),
                f"{t.lab_fs_group} must be None or a gid in 1..{MAX_ID} (never root's)",
            )
        )
    if not 1 <= t.lab_minimum_uid <= MAX_ID:
        problems.append(
            ConfigProblem(
                trait_name(t, "lab_minimum_uid"),
                f"{t.lab_minimum_uid} must be at least 1: labs never run as root",
            )
        )
    if not 0 <= t.lab_max_groups <= MAX_GROUPS_LIMIT:
        problems.append(
            ConfigProblem(
                trait_name(t, "lab_max_groups"),
                f"{t.lab_max_groups} must be in 0..{MAX_GROUPS_LIMIT}",
            )
        )
    if t.lab_init_enabled and not t.lab_init_image.strip():
        problems.append(ConfigProblem(trait_name(t, "lab_init_image"), "must not be empty"))
    for index, host in enumerate(t.lab_git_credential_hosts):
        if not _HOST.fullmatch(host):
            problems.append(
                ConfigProblem(
                    trait_name(t, f"lab_git_credential_hosts[{index}]"),
                    f"{host!r} is not a host name (optionally with :port)",
                )
            )
    return problems


def check_secrets(t: LabTraits) -> tuple[tuple[ExtraSecret, ...], list[ConfigProblem]]:
    problems: list[ConfigProblem] = []
    extras: list[ExtraSecret] = []
    keys: set[str] = set()
    for index, raw in enumerate(t.lab_extra_secrets):
        where = trait_name(t, f"lab_extra_secrets[{index}]")
        if not isinstance(raw, Mapping) or set(raw) - {"key", "env", "hub_env"}:
            problems.append(ConfigProblem(where, "must be a dict with key, hub_env and env"))
            continue
        key, env, hub_env = raw.get("key"), raw.get("env"), raw.get("hub_env")
        if not isinstance(key, str) or not SECRET_KEY_PATTERN.fullmatch(key):
            problems.append(ConfigProblem(f"{where}.key", f"{key!r} is not a file name"))
        elif key in RESERVED_SECRET_KEYS:
            reserved = ", ".join(RESERVED_SECRET_KEYS)
            problems.append(
                ConfigProblem(
                    f"{where}.key", f"{key!r} is reserved: the lab Secret holds {reserved}"
                )
            )
        elif key in keys:
            problems.append(ConfigProblem(f"{where}.key", f"{key!r} is repeated"))
        if env is not None and (
            not isinstance(env, str) or not ENV_NAME_PATTERN.fullmatch(env) or env in OWNED_ENV
        ):
            problems.append(
                ConfigProblem(f"{where}.env", f"{env!r} is not a free env variable name")
            )
        if not isinstance(hub_env, str) or not ENV_NAME_PATTERN.fullmatch(hub_env):
            problems.append(
                ConfigProblem(f"{where}.hub_env", f"{hub_env!r} is not an env variable name")
            )
        if isinstance(key, str):
            keys.add(key)
            extras.append(ExtraSecret(key, env if isinstance(env, str) else None))
    return tuple(extras), problems


def check_env(t: LabTraits) -> list[ConfigProblem]:
    problems = []
    for name in t.lab_env:
        where = trait_name(t, f"lab_env[{name!r}]")
        if not ENV_NAME_PATTERN.fullmatch(name):
            problems.append(ConfigProblem(where, "not a valid environment variable name"))
        elif name in OWNED_ENV or name.startswith("CULL_") or name == "NO_ACTIVITY_TIMEOUT":
            problems.append(ConfigProblem(where, "is set by lsst_spawner itself"))
    return problems


def _message(error: LabSpecError) -> str:
    text = str(error)
    return text.split(": ", 1)[1] if text.startswith("LSSTSpawner.") else text


def _problem(error: LabSpecError) -> ConfigProblem:
    where, _, message = str(error).partition(": ")
    return ConfigProblem(where, message)
