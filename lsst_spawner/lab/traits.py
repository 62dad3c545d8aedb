"""``LabTraits``: every lab trait of ``LSSTSpawner``, checked as a whole and frozen.

The declarations live here; :func:`lsst_spawner.lab.checks.lab_settings_and_problems`
checks them and builds the frozen settings (:meth:`LabTraits.to_settings`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import ClassVar

from traitlets import Bool, Dict, Float, Int, List, Unicode

from ..config import CheckedConfigurable, ConfigError, ConfigProblem, Duration
from . import checks
from .claims import HomeClaimTraits
from .files import parse_files, unreadable_files
from .init import DEFAULT_INIT_IMAGE, INIT_CONTAINER_NAME
from .kubespawner_fit import REPLACED_KUBESPAWNER_TRAITS, kubespawner_warnings
from .nss import DEFAULT_BASE_GROUP, DEFAULT_BASE_PASSWD
from .part_checks import check_init_containers
from .quota import SizeQuotaTraits
from .security import MAX_GROUPS_LIMIT
from .sizes import SIZE_NAME_RULE
from .spec import LabSettings
from .volumes import check_mount_groups, parse_mounts

__all__ = ["LabTraits", "to_settings"]


class LabTraits(SizeQuotaTraits, HomeClaimTraits, CheckedConfigurable):
    """The lab's traits: identity, NSS files, secrets, volumes, sizes, init container, timeouts."""

    #: Class name used in problem messages, as operators write the traits.
    trait_owner: ClassVar[str] = "LSSTSpawner"
    #: KubeSpawner's traits checked against the lab's own volumes, mounts and init containers,
    #: and its namespace, the only one whose Secrets a lab may read by reference.
    foreign_checked_traits: ClassVar[tuple[str, ...]] = (
        *checks.KUBESPAWNER_CHECKED_TRAITS,
        "namespace",
    )
    foreign_warned_traits: ClassVar[tuple[str, ...]] = tuple(REPLACED_KUBESPAWNER_TRAITS)

    lab_pod_name_template = Unicode(
        "nb-{user_server}",
        config=True,
        help="Name of the lab pod; its Secret is named after it with -secret. {user_server} is "
        "the escaped username, plus '--' and the escaped server name for a named server "
        "({username} and {servername} also work; named servers need one with the server).",
    )
    lab_sizes = List(
        Dict(),
        default_value=[
            {"name": "small", "cpu": 1, "memory": "4Gi"},
            {"name": "medium", "cpu": 2, "memory": "8Gi"},
            {"name": "large", "cpu": 4, "memory": "16Gi"},
        ],
        config=True,
        help="Lab sizes users may choose: dicts with name (" + SIZE_NAME_RULE + "), cpu "
        "(cores or '500m') and memory ('4Gi', '8G' or bytes). These are the container limits.",
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
        1000,
        config=True,
        help="Smallest uid a lab may run as (at least 1: never root). The default, 1000, "
        "keeps the system accounts of login.defs out of labs.",
    )
    lab_minimum_gid = Int(
        1000,
        config=True,
        help="Smallest primary gid a lab may run with (a lower one refuses the spawn); "
        "supplementary groups below it are dropped with a warning unless in "
        "lab_allowed_system_gids.",
    )
    lab_allowed_system_gids = List(
        Int(),
        config=True,
        help="Supplementary gids below lab_minimum_gid that labs keep (for example a site's "
        "'users' group, 100); other low gids (tty, disk, docker, ...) are dropped.",
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
        help="Where the generated passwd file, kept in the lab's Secret, is mounted (read-only, "
        "with subPath).",
    )
    lab_group_path = Unicode(
        "/etc/group",
        config=True,
        help="Where the generated group file, kept in the lab's Secret, is mounted (read-only, "
        "with subPath).",
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
        help="Site secrets of each lab: dicts with key (file name in the secret directory), "
        "optional env (a lab variable) and either hub_env (a hub environment variable, copied "
        "into the lab's Secret) or secret_key_ref ({name, key} of a Secret in the lab namespace, "
        "read by the kubelet, never by the hub).",
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
        "sub_path (placeholders as lab_home_directory) and read_only. read_write_groups and "
        "read_only_groups (group names) scope a mount: other users do not get it.",
    )
    lab_init_volume_mounts = List(
        Dict(),
        config=True,
        help="Mounts of site volumes in the init containers that give no volume_mounts (such as "
        "the default init-home), same form as lab_volume_mounts.",
    )
    lab_init_enabled = Bool(
        False,
        config=True,
        help="Run the init containers of lab_init_containers (by default the one that creates "
        "the user's home directory) before the lab.",
    )
    lab_init_image = Unicode(
        DEFAULT_INIT_IMAGE,
        config=True,
        help="Image of the init containers that name none (such as the default init-home); "
        "{version} is the installed lsst_spawner version.",
    )
    lab_init_command = List(
        Unicode(),
        config=True,
        help="Command of the init containers that name none; empty uses the image's entrypoint.",
    )
    lab_init_containers = List(
        Dict(),
        default_value=[{"name": INIT_CONTAINER_NAME, "privilege": "root"}],
        config=True,
        help="Init containers run in order before the lab: dicts with name, and optional image, "
        "command, volume_mounts (default: lab_init_image, lab_init_command and "
        "lab_init_volume_mounts), privilege (user, root or privileged) and capabilities (root).",
    )
    lab_init_allow_privileged = Bool(
        False,
        config=True,
        help="Allow privileged init containers, and root ones adding capabilities such as "
        "SYS_ADMIN; without it such entries of lab_init_containers are refused.",
    )
    lab_files = List(
        Dict(),
        config=True,
        help="Static files written read-only into every lab through its Secret: dicts with path, "
        "content (text) and optional mode (default 0o444; the owner is root). 1 MiB in all.",
    )
    lab_read_only_root_filesystem = Bool(
        True,
        config=True,
        help="Give the lab container a read-only root filesystem; it writes only to its volumes "
        "(home, lab_writable_paths, the runtime directory).",
    )
    lab_writable_paths = List(
        Unicode(),
        default_value=["/tmp"],  # noqa: S108 - a path in the lab's container
        config=True,
        help="Directories the lab may write under a read-only root, each an emptyDir of the pod; "
        "a site mount at the same path takes its place.",
    )
    lab_env = Dict(
        value_trait=Unicode(),
        config=True,
        help="Plain environment variables for every lab, visible in its pod. Never put "
        "secrets here: use lab_extra_secrets.",
    )
    lab_spawn_timeout = Duration(
        "10m", minimum=1, config=True, help="How long a lab may take to start."
    )
    lab_delete_timeout = Duration(
        "2m", minimum=1, config=True, help="How long deleting a lab's objects may take."
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

    def config_problems(self) -> list[ConfigProblem]:
        problems = super().config_problems()
        problems.extend(self.lab_config_problems())
        return problems

    def config_warnings(self) -> list[ConfigProblem]:
        warnings = super().config_warnings()
        names = [*REPLACED_KUBESPAWNER_TRAITS, "volume_mounts"]
        present = [name for name in names if self.has_trait(name)]
        values = {name: getattr(self, name) for name in present}
        defaults = {name: self.trait_defaults(name) for name in present}
        warnings.extend(
            kubespawner_warnings(values, defaults, home_directory=self.lab_home_directory)
        )
        where = checks.trait_name(self, "lab_files")
        files, _ = parse_files(self.lab_files, where)
        warnings.extend(unreadable_files(files, self.lab_fs_group, where))
        return warnings

    def lab_config_problems(self) -> list[ConfigProblem]:
        """Return every problem in the lab traits alone."""
        return to_settings(self)[1]

    def lab_group_problems(self, known: Collection[str]) -> list[ConfigProblem]:
        """Mounts and quota entries naming a group outside ``known`` (known at config time)."""
        mounts = {
            checks.trait_name(self, trait): parse_mounts(getattr(self, trait), trait)[0]
            for trait in ("lab_volume_mounts", "lab_init_volume_mounts")
        }
        _, init_mounts, _ = check_init_containers(
            self.lab_init_containers,
            checks.trait_name(self, "lab_init_containers"),
            allow_privileged=self.lab_init_allow_privileged,
            defaults=(self.lab_init_image, tuple(self.lab_init_command), []),
        )
        mounts.update({trait: found for trait, found in init_mounts.items() if found})
        return check_mount_groups(mounts, known) + self.quota_group_problems(known)

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
        settings, problems = to_settings(self)
        if settings is None:
            lines = "\n".join(f"  - {problem}" for problem in problems)
            raise ConfigError(f"{len(problems)} lab configuration problem(s):\n{lines}")
        return settings

    def lab_extra_secret_values(self, environ: Mapping[str, str]) -> dict[str, str]:
        """Read the extra secrets' values from the hub's environment (pass ``os.environ``)."""
        values = {}
        for raw in self.lab_extra_secrets:
            if "hub_env" not in raw:  # by reference: the kubelet reads it, not the hub
                continue
            value = environ.get(str(raw.get("hub_env", "")), "")
            if value:
                values[str(raw["key"])] = value
        return values


def to_settings(traits: LabTraits) -> tuple[LabSettings | None, list[ConfigProblem]]:
    """The frozen :class:`LabSettings` of ``traits`` (``None`` with problems) and every problem.

    The only checks of the lab traits: ``check-config``, hub start and the
    spawn all come through here.
    """
    return checks.lab_settings_and_problems(traits)
