"""``LabTraits``: every lab trait of ``LSSTSpawner``, checked as a whole and frozen."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from traitlets import Bool, Dict, Float, Int, List, Unicode

from ..config import CheckedConfigurable, ConfigError, ConfigProblem, Duration
from ..identity import MAX_ID
from .errors import LabSpecError
from .init import DEFAULT_INIT_IMAGE, InitSettings
from .names import build_object_names, expand_template, template_fields
from .nss import (
    DEFAULT_BASE_GROUP,
    DEFAULT_BASE_PASSWD,
    NssGroup,
    NssSettings,
    NssUser,
    check_unique,
    nss_group_from_dict,
    nss_user_from_dict,
    parse_group,
    parse_passwd,
)
from .secrets import (
    ENV_NAME_PATTERN,
    RESERVED_SECRET_KEYS,
    SECRET_KEY_PATTERN,
    ExtraSecret,
    SecretSettings,
)
from .security import MAX_GROUPS_LIMIT
from .sizes import parse_sizes
from .spec import OWNED_ENV, LabSettings
from .volumes import (
    BuiltinMount,
    check_absolute_path,
    check_volume_layout,
    parse_mounts,
    parse_volumes,
)

__all__ = ["LabTraits"]

_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?")
# Usernames that stress the pod name template: long, dotted, upper case.
_SAMPLE_USERNAMES = ("a", "first.last", "x" * 64, "Mixed_Case-User")


class LabTraits(CheckedConfigurable):
    """The lab's traits: identity, NSS files, secrets, volumes, sizes, init container, timeouts."""

    #: Class name used in problem messages, as operators write the traits.
    trait_owner = "LSSTSpawner"

    lab_pod_name_template = Unicode(
        "nb-{username}",
        config=True,
        help="Name of the lab pod. {username} is the escaped, DNS-safe username; the ConfigMap "
        "and Secret are named after the pod with -nss and -secret.",
    )
    lab_sizes = List(
        Dict(),
        default_value=[
            {"name": "small", "cpu": 1, "memory": "4Gi"},
            {"name": "medium", "cpu": 2, "memory": "8Gi"},
            {"name": "large", "cpu": 4, "memory": "16Gi"},
        ],
        config=True,
        help="Lab sizes users may choose: dicts with name, cpu (cores or '500m') and memory "
        "('4Gi', '8G' or bytes). These are the container limits.",
    )
    lab_default_size = Unicode(
        "medium", config=True, help="Name of the size used when the user chooses none."
    )
    lab_size_request_ratio = Float(
        0.25,
        config=True,
        help="Requests (guarantees) as a fraction of the size's limits, in (0, 1].",
    )
    lab_fs_group = Int(
        None,
        allow_none=True,
        config=True,
        help="fsGroup of the lab pod, or None for none. Volumes that support it become owned "
        "by this group.",
    )
    lab_minimum_uid = Int(
        1,
        config=True,
        help="Smallest uid and primary gid a lab may run as (at least 1: never root). Raise it "
        "to 1000 if your images have system accounts below that.",
    )
    lab_max_groups = Int(
        1024,
        config=True,
        help=f"Most groups a user may have; more is refused at spawn (at most {MAX_GROUPS_LIMIT}, "
        "so EXTERNAL_GROUPS fits the kernel's limit on one environment string).",
    )
    lab_base_passwd = Unicode(
        DEFAULT_BASE_PASSWD,
        config=True,
        help="System users of the lab's /etc/passwd, in passwd format; the user's entry is "
        "appended. The default has root and nobody.",
    )
    lab_base_group = Unicode(
        DEFAULT_BASE_GROUP,
        config=True,
        help="System groups of the lab's /etc/group, in group format; the user's groups are "
        "appended. The default has root and nogroup.",
    )
    lab_extra_users = List(
        Dict(),
        config=True,
        help="More system users for /etc/passwd, as dicts with name, uid, gid and optional "
        "gecos, home and shell.",
    )
    lab_extra_groups = List(
        Dict(),
        config=True,
        help="More system groups for /etc/group, as dicts with name, gid and optional members.",
    )
    lab_home_directory = Unicode(
        "/home/{unescaped_username}",
        config=True,
        help="The user's home directory in /etc/passwd and $HOME. Placeholders: {username} "
        "(escaped), {unescaped_username}, {uid}, {gid}.",
    )
    lab_shell = Unicode("/bin/bash", config=True, help="The user's login shell in /etc/passwd.")
    lab_passwd_path = Unicode(
        "/etc/passwd",
        config=True,
        help="Where the generated passwd file is mounted (read-only, with subPath).",
    )
    lab_group_path = Unicode(
        "/etc/group",
        config=True,
        help="Where the generated group file is mounted (read-only, with subPath).",
    )
    lab_secret_directory = Unicode(
        "/etc/lab/secrets",
        config=True,
        help="Where the lab's Secret is mounted read-only: the API token, git-credentials and "
        "the extra secrets, one file each.",
    )
    lab_runtime_directory = Unicode(
        "/run/lab",
        config=True,
        help="A small memory-backed emptyDir for Jupyter runtime files ($JUPYTER_RUNTIME_DIR).",
    )
    lab_git_credential_hosts = List(
        Unicode(),
        default_value=["github.com"],
        config=True,
        help="Hosts the user's git token is offered to over https, through git's credential "
        "store file in the secret directory.",
    )
    lab_extra_secrets = List(
        Dict(),
        config=True,
        help="Site secrets copied into each lab's Secret: dicts with key (file name), hub_env "
        "(the hub environment variable holding the value) and optional env (a lab variable).",
    )
    lab_volumes = List(
        Dict(),
        config=True,
        help="Site volumes: dicts with name and one source among nfs, hostPath, "
        "persistentVolumeClaim, emptyDir, configMap and secret, in Kubernetes form.",
    )
    lab_volume_mounts = List(
        Dict(),
        config=True,
        help="Mounts of site volumes in the lab: dicts with mount_path, volume and optional "
        "sub_path (placeholders as lab_home_directory) and read_only.",
    )
    lab_init_volume_mounts = List(
        Dict(),
        config=True,
        help="Mounts of site volumes in the home-directory init container, same form as "
        "lab_volume_mounts.",
    )
    lab_init_enabled = Bool(
        False,
        config=True,
        help="Run an init container that creates the user's home directory before the lab.",
    )
    lab_init_image = Unicode(
        DEFAULT_INIT_IMAGE,
        config=True,
        help="Image of the init container; {version} is the installed lsst_spawner version.",
    )
    lab_init_command = List(
        Unicode(),
        config=True,
        help="Command of the init container; empty uses the image's entrypoint.",
    )
    lab_env = Dict(
        value_trait=Unicode(),
        config=True,
        help="Plain environment variables for every lab. Never put secrets here: use "
        "lab_extra_secrets.",
    )
    lab_spawn_timeout = Duration(
        "10m", minimum=1, config=True, help="How long a lab may take to start."
    )
    lab_delete_timeout = Duration(
        "2m", minimum=1, config=True, help="How long deleting a lab's objects may take."
    )
    kubernetes_request_timeout = Duration(
        "30s", minimum=1, config=True, help="Timeout of one Kubernetes API request."
    )
    kubernetes_retry_budget = Duration(
        "2m",
        minimum=1,
        config=True,
        help="Total time transient Kubernetes failures are retried for, with backoff.",
    )
    lab_no_activity_timeout = Duration(
        0, config=True, help="Lab env NO_ACTIVITY_TIMEOUT: shut down after this idle; 0 never."
    )
    lab_cull_kernel_idle_timeout = Duration(
        0, config=True, help="Lab env CULL_KERNEL_IDLE_TIMEOUT: cull idle kernels; 0 never."
    )
    lab_cull_kernel_interval = Duration(
        "5m", config=True, help="Lab env CULL_KERNEL_INTERVAL: how often kernels are checked."
    )
    lab_cull_terminal_inactive_timeout = Duration(
        0,
        config=True,
        help="Lab env CULL_TERMINAL_INACTIVE_TIMEOUT: cull inactive terminals; 0 never.",
    )

    # --- checks -----------------------------------------------------------------

    def _where(self, trait: str) -> str:
        return f"{self.trait_owner}.{trait}"

    def config_problems(self) -> list[ConfigProblem]:
        problems = super().config_problems()
        problems.extend(self.lab_config_problems())
        return problems

    def lab_config_problems(self) -> list[ConfigProblem]:
        """Return every problem in the lab traits alone."""
        problems: list[ConfigProblem] = []
        problems += self._check_names()
        problems += self._check_nss()[1]
        problems += self._check_paths()
        problems += self._check_volumes()[1]
        problems += parse_sizes(self.lab_sizes, self.lab_default_size, self._where("lab_sizes"))[1]
        problems += self._check_numbers()
        problems += self._check_secrets()[1]
        problems += self._check_env()
        return problems

    def _check_names(self) -> list[ConfigProblem]:
        for username in _SAMPLE_USERNAMES:
            try:
                build_object_names(self.lab_pod_name_template, username)
            except LabSpecError as error:
                return [ConfigProblem(self._where("lab_pod_name_template"), _message(error))]
        return []

    def _check_nss(self) -> tuple[NssSettings | None, list[ConfigProblem]]:
        problems: list[ConfigProblem] = []
        base_users: tuple[NssUser, ...] = ()
        base_groups: tuple[NssGroup, ...] = ()
        users: list[NssUser] = []
        groups: list[NssGroup] = []
        try:
            base_users = parse_passwd(self.lab_base_passwd, "passwd")
        except LabSpecError as error:
            problems.append(ConfigProblem(self._where("lab_base_passwd"), str(error)))
        try:
            base_groups = parse_group(self.lab_base_group, "group")
        except LabSpecError as error:
            problems.append(ConfigProblem(self._where("lab_base_group"), str(error)))
        for index, raw in enumerate(self.lab_extra_users):
            where = self._where(f"lab_extra_users[{index}]")
            try:
                users.append(nss_user_from_dict(raw, where))
            except LabSpecError as error:
                problems.append(_problem(error))
        for index, raw in enumerate(self.lab_extra_groups):
            where = self._where(f"lab_extra_groups[{index}]")
            try:
                groups.append(nss_group_from_dict(raw, where))
            except LabSpecError as error:
                problems.append(_problem(error))
        for message in check_unique((*base_users, *users), (*base_groups, *groups)):
            problems.append(ConfigProblem(self._where("lab_extra_users/lab_extra_groups"), message))
        home_where = self._where("lab_home_directory")
        try:
            home = expand_template(
                self.lab_home_directory, template_fields("sample", 1000, 1000), where=home_where
            )
            if check_absolute_path(home):
                problems.append(ConfigProblem(home_where, str(check_absolute_path(home))))
        except LabSpecError as error:
            problems.append(_problem(error))
        if check_absolute_path(self.lab_shell):
            problems.append(
                ConfigProblem(self._where("lab_shell"), str(check_absolute_path(self.lab_shell)))
            )
        settings = NssSettings(
            base_passwd=base_users,
            base_group=base_groups,
            extra_users=tuple(users),
            extra_groups=tuple(groups),
            home_template=self.lab_home_directory,
            shell=self.lab_shell,
        )
        return (None if problems else settings), problems

    def _builtin_mounts(self) -> list[BuiltinMount]:
        return [
            BuiltinMount(self._where("lab_passwd_path"), self.lab_passwd_path, is_file=True),
            BuiltinMount(self._where("lab_group_path"), self.lab_group_path, is_file=True),
            BuiltinMount(self._where("lab_secret_directory"), self.lab_secret_directory),
            BuiltinMount(self._where("lab_runtime_directory"), self.lab_runtime_directory),
        ]

    def _check_paths(self) -> list[ConfigProblem]:
        problems = []
        builtins = self._builtin_mounts()
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

    def _check_volumes(self) -> tuple[tuple[Any, Any, Any] | None, list[ConfigProblem]]:
        volumes, problems = parse_volumes(self.lab_volumes, self._where("lab_volumes"))
        mounts, mount_problems = parse_mounts(
            self.lab_volume_mounts, self._where("lab_volume_mounts")
        )
        init_mounts, init_problems = parse_mounts(
            self.lab_init_volume_mounts, self._where("lab_init_volume_mounts")
        )
        problems += mount_problems + init_problems
        problems += check_volume_layout(
            volumes,
            {
                self._where("lab_volume_mounts"): mounts,
                self._where("lab_init_volume_mounts"): init_mounts,
            },
            self._builtin_mounts(),
        )
        if self.lab_init_volume_mounts and not self.lab_init_enabled:
            problems.append(
                ConfigProblem(
                    self._where("lab_init_volume_mounts"),
                    "set, but lab_init_enabled is False: the init container does not run",
                )
            )
        return (None if problems else (volumes, mounts, init_mounts)), problems

    def _check_numbers(self) -> list[ConfigProblem]:
        problems = []
        if not 0 < self.lab_size_request_ratio <= 1:
            problems.append(
                ConfigProblem(
                    self._where("lab_size_request_ratio"),
                    f"{self.lab_size_request_ratio!r} must be more than 0 and at most 1",
                )
            )
        if self.lab_fs_group is not None and not 1 <= self.lab_fs_group <= MAX_ID:
            problems.append(
                ConfigProblem(
                    self._where("lab_fs_group"),
                    f"{self.lab_fs_group} must be None or a gid in 1..{MAX_ID} (never root's)",
                )
            )
        if not 1 <= self.lab_minimum_uid <= MAX_ID:
            problems.append(
                ConfigProblem(
                    self._where("lab_minimum_uid"),
                    f"{self.lab_minimum_uid} must be at least 1: labs never run as root",
                )
            )
        if not 0 <= self.lab_max_groups <= MAX_GROUPS_LIMIT:
            problems.append(
                ConfigProblem(
                    self._where("lab_max_groups"),
                    f"{self.lab_max_groups} must be in 0..{MAX_GROUPS_LIMIT}",
                )
            )
        if self.lab_init_enabled and not self.lab_init_image.strip():
            problems.append(ConfigProblem(self._where("lab_init_image"), "must not be empty"))
        for index, host in enumerate(self.lab_git_credential_hosts):
            if not _HOST.fullmatch(host):
                problems.append(
                    ConfigProblem(
                        self._where(f"lab_git_credential_hosts[{index}]"),
                        f"{host!r} is not a host name (optionally with :port)",
                    )
                )
        return problems

    def _check_secrets(self) -> tuple[tuple[ExtraSecret, ...], list[ConfigProblem]]:
        problems: list[ConfigProblem] = []
        extras: list[ExtraSecret] = []
        keys: set[str] = set()
        for index, raw in enumerate(self.lab_extra_secrets):
            where = self._where(f"lab_extra_secrets[{index}]")
            if not isinstance(raw, Mapping) or set(raw) - {"key", "env", "hub_env"}:
                problems.append(ConfigProblem(where, "must be a dict with key, hub_env and env"))
                continue
            key, env, hub_env = raw.get("key"), raw.get("env"), raw.get("hub_env")
            if not isinstance(key, str) or not SECRET_KEY_PATTERN.fullmatch(key):
                problems.append(ConfigProblem(f"{where}.key", f"{key!r} is not a file name"))
            elif key in RESERVED_SECRET_KEYS or key in keys:
                problems.append(ConfigProblem(f"{where}.key", f"{key!r} is reserved or repeated"))
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

    def _check_env(self) -> list[ConfigProblem]:
        problems = []
        for name in self.lab_env:
            where = self._where(f"lab_env[{name!r}]")
            if not ENV_NAME_PATTERN.fullmatch(name):
                problems.append(ConfigProblem(where, "not a valid environment variable name"))
            elif name in OWNED_ENV or name.startswith("CULL_") or name == "NO_ACTIVITY_TIMEOUT":
                problems.append(ConfigProblem(where, "is set by lsst_spawner itself"))
        return problems

    # --- frozen settings for the builders --------------------------------------

    def lab_timeout_env(self) -> dict[str, str]:
        """Return the idle and cull values passed to the lab, in whole seconds."""
        return {
            "NO_ACTIVITY_TIMEOUT": str(int(self.lab_no_activity_timeout)),
            "CULL_KERNEL_IDLE_TIMEOUT": str(int(self.lab_cull_kernel_idle_timeout)),
            "CULL_KERNEL_INTERVAL": str(int(self.lab_cull_kernel_interval)),
            "CULL_TERMINAL_INACTIVE_TIMEOUT": str(int(self.lab_cull_terminal_inactive_timeout)),
        }

    def lab_settings(self) -> LabSettings:
        """Return the frozen :class:`LabSettings`; raise :class:`ConfigError` listing problems."""
        problems = self.lab_config_problems()
        if problems:
            lines = "\n".join(f"  - {problem}" for problem in problems)
            raise ConfigError(f"{len(problems)} lab configuration problem(s):\n{lines}")
        nss, _ = self._check_nss()
        layout, _ = self._check_volumes()
        extras, _ = self._check_secrets()
        sizes, _ = parse_sizes(self.lab_sizes, self.lab_default_size)
        assert nss is not None
        assert layout is not None
        volumes, mounts, init_mounts = layout
        return LabSettings(
            sizes=tuple(sizes),
            default_size=self.lab_default_size,
            pod_name_template=self.lab_pod_name_template,
            request_ratio=self.lab_size_request_ratio,
            fs_group=self.lab_fs_group,
            minimum_uid=self.lab_minimum_uid,
            max_groups=self.lab_max_groups,
            nss=nss,
            passwd_path=self.lab_passwd_path,
            group_path=self.lab_group_path,
            runtime_directory=self.lab_runtime_directory,
            secrets=SecretSettings(
                directory=self.lab_secret_directory,
                git_credential_hosts=tuple(self.lab_git_credential_hosts),
                extra=extras,
            ),
            volumes=tuple(volumes),
            mounts=tuple(mounts),
            init_mounts=tuple(init_mounts),
            init=InitSettings(
                enabled=self.lab_init_enabled,
                image=self.lab_init_image,
                command=tuple(self.lab_init_command),
            ),
            env=tuple(sorted({**self.lab_env, **self.lab_timeout_env()}.items())),
        )

    def lab_extra_secret_values(self, environ: Mapping[str, str]) -> dict[str, str]:
        """Read the extra secrets' values from the hub's environment (pass ``os.environ``)."""
        values = {}
        for raw in self.lab_extra_secrets:
            value = environ.get(str(raw.get("hub_env", "")), "")
            if value:
                values[str(raw["key"])] = value
        return values


def _message(error: LabSpecError) -> str:
    text = str(error)
    return text.split(": ", 1)[1] if text.startswith("LSSTSpawner.") else text


def _problem(error: LabSpecError) -> ConfigProblem:
    where, _, message = str(error).partition(": ")
    return ConfigProblem(where, message)
