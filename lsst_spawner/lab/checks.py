"""The checks of the lab's traits and the frozen settings built from them.

:func:`lab_settings_and_problems` is the only way from traits to
:class:`~lsst_spawner.lab.spec.LabSettings`: ``check-config``, hub start and
every spawn call it (through ``LabTraits.to_settings()``), so a configuration
``check-config`` passes is never refused later for a configuration reason.
Every check returns problems named by trait and never raises.

The checks read the traits through :class:`LabTraitValues`, a protocol that
``LabTraits`` (and so ``LSSTSpawner``) satisfies, so this module does not
import :mod:`lsst_spawner.lab.traits`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..identity import MAX_ID
from ..problems import ConfigProblem
from .errors import LabSpecError
from .files import Occupied, occupied_paths
from .init import InitSettings
from .limits import MAX_ENV_STRING_BYTES, env_string_bytes
from .names import build_object_names, expand_template, names_server, template_fields
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
from .part_checks import (
    check_extra_secrets,
    check_files,
    check_init_containers,
    check_writable_paths,
)
from .secrets import ENV_NAME_PATTERN, SecretSettings
from .security import MAX_GROUPS_LIMIT
from .sizes import parse_sizes
from .spec import OWNED_ENV, LabSettings
from .volumes import (
    RESERVED_VOLUME_NAMES,
    WRITABLE_VOLUME_PREFIX,
    BuiltinMount,
    SiteMount,
    SiteVolume,
    check_absolute_path,
    check_kubespawner_layout,
    check_volume_layout,
    parse_mounts,
    parse_volumes,
)

__all__ = ["KUBESPAWNER_CHECKED_TRAITS", "LabTraitValues", "lab_settings_and_problems"]

_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?")
# Usernames that stress the pod name template: long, dotted, upper case.
_SAMPLE_USERNAMES = ("a", "first.last", "x" * 64, "Mixed_Case-User")
# Server names that stress it, checked when the template names the server.
_SAMPLE_SERVER_NAMES = ("", "a", "x" * 63, "Mixed.Case_Server")

#: KubeSpawner's traits whose entries must not take the lab's own names and paths.
KUBESPAWNER_CHECKED_TRAITS = ("volumes", "volume_mounts", "init_containers")


class LabTraitValues(Protocol):
    """The lab traits the checks read, as ``LabTraits`` declares them."""

    def trait_where(self, trait: str) -> str: ...
    def has_trait(self, name: str) -> bool: ...
    def lab_timeout_env(self) -> dict[str, str]: ...

    @property
    def lab_pod_name_template(self) -> str: ...
    @property
    def lab_sizes(self) -> Sequence[Any]: ...
    @property
    def lab_default_size(self) -> str: ...
    @property
    def lab_size_request_ratio(self) -> float: ...
    @property
    def lab_fs_group(self) -> int | None: ...
    @property
    def lab_minimum_uid(self) -> int: ...
    @property
    def lab_minimum_gid(self) -> int: ...
    @property
    def lab_allowed_system_gids(self) -> Sequence[int]: ...
    @property
    def lab_max_groups(self) -> int: ...
    @property
    def lab_base_passwd(self) -> str: ...
    @property
    def lab_base_group(self) -> str: ...
    @property
    def lab_extra_users(self) -> Sequence[Any]: ...
    @property
    def lab_extra_groups(self) -> Sequence[Any]: ...
    @property
    def lab_home_directory(self) -> str: ...
    @property
    def lab_shell(self) -> str: ...
    @property
    def lab_passwd_path(self) -> str: ...
    @property
    def lab_group_path(self) -> str: ...
    @property
    def lab_secret_directory(self) -> str: ...
    @property
    def lab_runtime_directory(self) -> str: ...
    @property
    def lab_git_credential_hosts(self) -> Sequence[str]: ...
    @property
    def lab_extra_secrets(self) -> Sequence[Any]: ...
    @property
    def lab_volumes(self) -> Sequence[Any]: ...
    @property
    def lab_volume_mounts(self) -> Sequence[Any]: ...
    @property
    def lab_init_volume_mounts(self) -> Sequence[Any]: ...
    @property
    def lab_init_enabled(self) -> bool: ...
    @property
    def lab_init_image(self) -> str: ...
    @property
    def lab_init_command(self) -> Sequence[str]: ...
    @property
    def lab_init_containers(self) -> Sequence[Any]: ...
    @property
    def lab_init_allow_privileged(self) -> bool: ...
    @property
    def lab_files(self) -> Sequence[Any]: ...
    @property
    def lab_read_only_root_filesystem(self) -> bool: ...
    @property
    def lab_writable_paths(self) -> Sequence[str]: ...
    @property
    def lab_env(self) -> Mapping[str, str]: ...


def trait_name(t: LabTraitValues, trait: str) -> str:
    """Return the trait as operators write it: ``LSSTSpawner.<trait>``."""
    return t.trait_where(trait)


def check_names(t: LabTraitValues) -> list[ConfigProblem]:
    template = t.lab_pod_name_template
    servers = _SAMPLE_SERVER_NAMES if names_server(template) else ("",)
    for username in _SAMPLE_USERNAMES:
        for server in servers:
            try:
                build_object_names(template, username, server)
            except LabSpecError as error:
                return [ConfigProblem(trait_name(t, "lab_pod_name_template"), _message(error))]
    return []


def check_nss(t: LabTraitValues) -> tuple[NssSettings | None, list[ConfigProblem]]:
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


def builtin_mounts(t: LabTraitValues) -> list[BuiltinMount]:
    return [
        BuiltinMount(trait_name(t, "lab_passwd_path"), t.lab_passwd_path, is_file=True),
        BuiltinMount(trait_name(t, "lab_group_path"), t.lab_group_path, is_file=True),
        BuiltinMount(trait_name(t, "lab_secret_directory"), t.lab_secret_directory),
        BuiltinMount(trait_name(t, "lab_runtime_directory"), t.lab_runtime_directory),
    ]


def check_paths(t: LabTraitValues) -> list[ConfigProblem]:
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


def check_volumes(
    t: LabTraitValues,
) -> tuple[tuple[list[SiteVolume], list[SiteMount], InitSettings] | None, list[ConfigProblem]]:
    """Site volumes and mounts, and the init containers with theirs."""
    volumes, problems = parse_volumes(t.lab_volumes, trait_name(t, "lab_volumes"))
    mounts, mount_problems = parse_mounts(t.lab_volume_mounts, trait_name(t, "lab_volume_mounts"))
    init_mounts, init_problems = parse_mounts(
        t.lab_init_volume_mounts, trait_name(t, "lab_init_volume_mounts")
    )
    problems += mount_problems + init_problems
    containers, by_trait, container_problems = check_init_containers(
        t.lab_init_containers,
        trait_name(t, "lab_init_containers"),
        allow_privileged=t.lab_init_allow_privileged,
        defaults=(t.lab_init_image, tuple(t.lab_init_command), init_mounts),
    )
    problems += container_problems
    builtins = builtin_mounts(t)
    layout = {
        trait_name(t, "lab_volume_mounts"): mounts,
        trait_name(t, "lab_init_volume_mounts"): init_mounts,
        **by_trait,
    }
    problems += check_volume_layout(volumes, layout, builtins)
    if t.lab_init_volume_mounts and not t.lab_init_enabled:
        problems.append(
            ConfigProblem(
                trait_name(t, "lab_init_volume_mounts"),
                "set, but lab_init_enabled is False: the init container does not run",
            )
        )
    init = InitSettings(
        enabled=t.lab_init_enabled,
        containers=containers,
        allow_privileged=t.lab_init_allow_privileged,
    )
    problems += check_kubespawner_traits(t, volumes, mounts, init)
    return (None if problems else (volumes, mounts, init)), problems


def check_kubespawner_traits(
    t: LabTraitValues,
    volumes: Sequence[SiteVolume],
    mounts: Sequence[SiteMount],
    init: InitSettings,
) -> list[ConfigProblem]:
    """KubeSpawner's volumes, mounts and init containers that take the lab's names or paths."""
    kubespawner = {
        name: list(getattr(t, name) or ())
        for name in KUBESPAWNER_CHECKED_TRAITS
        if t.has_trait(name)
    }
    if not any(kubespawner.values()):
        return []
    volume_names = {name: "volume (built in)" for name in RESERVED_VOLUME_NAMES}
    if t.lab_read_only_root_filesystem:
        where = trait_name(t, "lab_writable_paths")
        volume_names.update(
            {
                f"{WRITABLE_VOLUME_PREFIX}{i}": f"volume of a writable path ({where}[{i}])"
                for i in range(len(t.lab_writable_paths))
            }
        )
    volume_names.update({v.name: f"site volume ({trait_name(t, 'lab_volumes')})" for v in volumes})
    mount_paths = {b.path: f"mount ({b.trait})" for b in builtin_mounts(t)}
    mount_paths.update(
        {m.mount_path: f"site mount ({trait_name(t, 'lab_volume_mounts')})" for m in mounts}
    )
    for trait, paths in (
        ("lab_writable_paths", t.lab_writable_paths if t.lab_read_only_root_filesystem else ()),
        ("lab_files", [f.get("path") for f in t.lab_files if isinstance(f, Mapping)]),
    ):
        mount_paths.update({str(p): f"mount ({trait_name(t, trait)})" for p in paths})
    where = trait_name(t, "lab_init_containers")
    init_names = (
        {c.name: f"init container ({where}[{i}])" for i, c in enumerate(init.containers)}
        if init.enabled
        else {}
    )
    return check_kubespawner_layout(
        kubespawner,
        volume_names=volume_names,
        mount_paths=mount_paths,
        init_container_names=init_names,
    )


def check_numbers(t: LabTraitValues) -> list[ConfigProblem]:
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
    for trait in ("lab_minimum_uid", "lab_minimum_gid"):
        value = getattr(t, trait)
        if not 1 <= value <= MAX_ID:
            problems.append(
                ConfigProblem(
                    trait_name(t, trait),
                    f"{value} must be in 1..{MAX_ID}: labs never run as root",
                )
            )
    for index, gid in enumerate(t.lab_allowed_system_gids):
        if not 1 <= gid <= MAX_ID:
            problems.append(
                ConfigProblem(
                    trait_name(t, f"lab_allowed_system_gids[{index}]"),
                    f"{gid} must be a gid in 1..{MAX_ID} (never root's group)",
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


def _lab_namespace(t: LabTraitValues) -> str | None:
    """KubeSpawner's ``namespace``, where labs and the Secrets they read live."""
    if not t.has_trait("namespace"):
        return None
    return str(getattr(t, "namespace", "")) or None


def _file_occupied(t: LabTraitValues, mounts: Sequence[SiteMount]) -> list[Occupied]:
    """The lab's mount paths, which no static file may equal, contain or sit inside."""
    traits = ("lab_passwd_path", "lab_group_path", "lab_secret_directory", "lab_runtime_directory")
    builtins = {trait: str(getattr(t, trait)) for trait in traits}
    writable = [str(p) for p in t.lab_writable_paths] if t.lab_read_only_root_filesystem else []
    return occupied_paths(builtins, writable, [m.mount_path for m in mounts])


def check_env(t: LabTraitValues) -> list[ConfigProblem]:
    problems = []
    for name in t.lab_env:
        where = trait_name(t, f"lab_env[{name!r}]")
        if not ENV_NAME_PATTERN.fullmatch(name):
            problems.append(ConfigProblem(where, "not a valid environment variable name"))
        elif name in OWNED_ENV or name.startswith("CULL_") or name == "NO_ACTIVITY_TIMEOUT":
            problems.append(ConfigProblem(where, "is set by lsst_spawner itself"))
        elif (size := env_string_bytes(name, t.lab_env[name])) > MAX_ENV_STRING_BYTES:
            problems.append(
                ConfigProblem(
                    where,
                    f"{size} bytes is over the kernel's limit of {MAX_ENV_STRING_BYTES} bytes "
                    "on one environment string (NAME=value): the lab could not start",
                )
            )
    return problems


def _message(error: LabSpecError) -> str:
    text = str(error)
    return text.split(": ", 1)[1] if text.startswith("LSSTSpawner.") else text


def _problem(error: LabSpecError) -> ConfigProblem:
    where, _, message = str(error).partition(": ")
    return ConfigProblem(where, message)


def lab_settings_and_problems(t: LabTraitValues) -> tuple[LabSettings | None, list[ConfigProblem]]:
    """The frozen :class:`LabSettings` of ``t`` (``None`` with problems) and every problem."""
    problems: list[ConfigProblem] = []
    problems += check_names(t)
    nss, nss_problems = check_nss(t)
    problems += nss_problems
    problems += check_paths(t)
    layout, volume_problems = check_volumes(t)
    problems += volume_problems
    sizes, size_problems = parse_sizes(
        t.lab_sizes,
        t.lab_default_size,
        trait_name(t, "lab_sizes"),
        default_where=trait_name(t, "lab_default_size"),
    )
    problems += size_problems
    problems += check_numbers(t)
    extras, secret_problems = check_extra_secrets(
        t.lab_extra_secrets, trait_name(t, "lab_extra_secrets"), OWNED_ENV, _lab_namespace(t)
    )
    problems += secret_problems
    problems += check_env(t)
    problems += check_writable_paths(
        t.lab_writable_paths, trait_name(t, "lab_writable_paths"), builtin_mounts(t)
    )
    site_mounts = parse_mounts(t.lab_volume_mounts, trait_name(t, "lab_volume_mounts"))[0]
    files, file_problems = check_files(
        t.lab_files,
        trait_name(t, "lab_files"),
        _file_occupied(t, site_mounts),
        t.lab_home_directory,
    )
    problems += file_problems
    if problems or nss is None or layout is None:
        return None, problems
    volumes, mounts, init = layout
    settings = LabSettings(
        sizes=tuple(sizes),
        default_size=t.lab_default_size,
        pod_name_template=t.lab_pod_name_template,
        request_ratio=t.lab_size_request_ratio,
        fs_group=t.lab_fs_group,
        minimum_uid=t.lab_minimum_uid,
        minimum_gid=t.lab_minimum_gid,
        allowed_system_gids=frozenset(t.lab_allowed_system_gids),
        max_groups=t.lab_max_groups,
        nss=nss,
        passwd_path=t.lab_passwd_path,
        group_path=t.lab_group_path,
        runtime_directory=t.lab_runtime_directory,
        secrets=SecretSettings(
            directory=t.lab_secret_directory,
            git_credential_hosts=tuple(t.lab_git_credential_hosts),
            extra=extras,
        ),
        volumes=tuple(volumes),
        mounts=tuple(mounts),
        init=init,
        files=files,
        read_only_root=t.lab_read_only_root_filesystem,
        writable_paths=tuple(t.lab_writable_paths),
        env=tuple(sorted({**t.lab_env, **t.lab_timeout_env()}.items())),
    )
    return settings, []
