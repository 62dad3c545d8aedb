"""KubeSpawner settings that LSSTSpawner replaces or ignores, found in a configuration.

Zero to JupyterHub turns its ``singleuser.*`` values into KubeSpawner traits, and a site
coming from plain KubeSpawner keeps its old ones. Some of them mean nothing to a lab:
the image comes from the menu, the uid and gids from each user's identity, the form from
the menu and ``LSSTSpawner.lab_sizes``. They are not errors (z2jh sets several by
default), so they are *warnings*: ``check-config`` prints them and hub start logs them,
each naming the trait and what decides instead.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from ..problems import ConfigProblem

__all__ = ["REPLACED_KUBESPAWNER_TRAITS", "kubespawner_warnings"]

#: KubeSpawner trait → what decides it for a lab instead.
REPLACED_KUBESPAWNER_TRAITS: dict[str, str] = {
    "image": "the image menu (LSSTSpawner.image_*) and the user's choice",
    "uid": "each user's uid from the identity (auth_state['identity'])",
    "gid": "each user's primary gid from the identity",
    "supplemental_gids": "the gids of the user's groups from the identity",
    "fs_gid": "LSSTSpawner.lab_fs_group",
    "privileged": "the lab's security context (never privileged)",
    "allow_privilege_escalation": "the lab's security context (never escalates)",
    "profile_list": "the options form: the image menu and LSSTSpawner.lab_sizes",
}

# Names KubeSpawner and lsst_spawner expand in paths; any stand-in works for comparing.
_PLACEHOLDERS = ("unescaped_username", "username", "servername", "user_server", "uid", "gid")


def _expand(path: str) -> str:
    for name in _PLACEHOLDERS:
        path = path.replace("{" + name + "}", "u")
    return posixpath.normpath(path)


def _is_within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def kubespawner_warnings(
    values: Mapping[str, Any], defaults: Mapping[str, Any], *, home_directory: str
) -> list[ConfigProblem]:
    """Warnings for KubeSpawner trait ``values`` (differing from ``defaults``) a lab ignores.

    ``home_directory`` is ``LSSTSpawner.lab_home_directory`` (the lab's ``HOME``).
    """
    warnings = []
    for name, instead in REPLACED_KUBESPAWNER_TRAITS.items():
        if name in values and values[name] != defaults.get(name) and values[name] is not None:
            shown = repr(values[name])
            if len(shown) > 80:
                shown = shown[:77] + "..."
            warnings.append(
                ConfigProblem(
                    f"KubeSpawner.{name}",
                    f"is set ({shown}) but LSSTSpawner ignores it: {instead} decides",
                )
            )
    home = _expand(home_directory)
    mounts: Sequence[Any] = values.get("volume_mounts") or ()
    for index, mount in enumerate(mounts):
        path = mount.get("mountPath", mount.get("mount_path")) if isinstance(mount, dict) else None
        if not isinstance(path, str) or not _is_within(_expand(path), "/home"):
            continue
        if _is_within(home, _expand(path)) or _expand(path) == "/home":
            continue
        warnings.append(
            ConfigProblem(
                f"KubeSpawner.volume_mounts[{index}]",
                f"mounts a volume at {path}, but the lab's HOME is {home_directory} "
                "(LSSTSpawner.lab_home_directory): files the user keeps in HOME are not on this "
                "volume. Mount it at the lab's HOME (z2jh: singleuser.storage.homeMountPath)",
            )
        )
    return warnings
