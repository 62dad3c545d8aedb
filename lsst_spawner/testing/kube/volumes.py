"""A pod's volumes as the OCI kubelet sets them up on the host, and its containers' mounts.

Each volume becomes a host directory (or a host path) that :func:`container_mounts`
turns into bind mounts of the OCI spec. The layouts follow the real kubelet's:

- ``configMap``, ``secret``, ``projected`` and ``downwardAPI`` volumes are written
  the way its atomic writer writes them: the files in a ``..<timestamp>``
  directory, ``..data`` a symlink to it, and each top-level entry a symlink into
  ``..data``; ``items`` pick and rename keys, ``mode``/``defaultMode`` set the
  permission bits, a missing object or key fails the mount unless ``optional``.
  They are always mounted read-only (as since Kubernetes 1.10).
- ``emptyDir``: a fresh directory, mode 0777; ``persistentVolumeClaim``: one
  directory per claim under the kubelet's claims directory, kept across pods; the
  claim must exist and be bound-able (any claim in the namespace is).
- ``hostPath`` with its ``type`` checks.
- ``fsGroup`` (with ``fsGroupChangePolicy`` ignored: always applied): every file
  of a writable or secret-like volume is given that group and group read (and
  write, when writable) permission, directories the setgid bit, as the kubelet's
  ``SetVolumeOwnership`` does.
"""

from __future__ import annotations

import base64
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .podenv import field_ref
from .store import ObjectStore

__all__ = ["HostVolume", "VolumeError", "container_mounts", "prepare_volumes"]


class VolumeError(Exception):
    """A volume cannot be set up: the kubelet's ``FailedMount`` event message."""

    #: The volume that failed (set by :func:`prepare_volumes`).
    volume: str = ""


@dataclass(frozen=True)
class HostVolume:
    path: Path
    read_only: bool  # the volume's own (secret-like volumes; a claim mounted readOnly)


def _object_data(
    store: ObjectStore, namespace: str, kind: str, name: str, optional: bool
) -> dict[str, bytes] | None:
    resource = "secrets" if kind == "secret" else "configmaps"
    obj = store.objects[resource].get((namespace, name))
    if obj is None:
        if optional:
            return None
        label = "secret" if kind == "secret" else "configmap"
        raise VolumeError(f'{label} "{name}" not found')
    data: dict[str, bytes] = {}
    if kind == "secret":
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    else:
        data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


def _relative(path: str, what: str) -> PurePosixPath:
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts:
        raise VolumeError(f"{what} {path!r} must be a relative path without '..'")
    return pure


def _pick(
    data: dict[str, bytes] | None,
    items: list[dict[str, Any]] | None,
    default_mode: int,
    kind: str,
    optional: bool,
) -> dict[PurePosixPath, tuple[bytes, int]]:
    if data is None:
        return {}
    if not items:
        return {_relative(k, "key"): (v, default_mode) for k, v in data.items()}
    files: dict[PurePosixPath, tuple[bytes, int]] = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            # The kubelet's words (pkg/volume/secret and configmap MakePayload).
            if kind == "secret":
                raise VolumeError(f"references non-existent secret key: {key}")
            raise VolumeError(f"configmap references non-existent config key: {key}")
        files[_relative(item.get("path", ""), "item path")] = (
            data[key],
            int(item.get("mode", default_mode)),
        )
    return files


def _downward(
    pod: Mapping[str, Any], items: list[dict[str, Any]], default_mode: int
) -> dict[PurePosixPath, tuple[bytes, int]]:
    files: dict[PurePosixPath, tuple[bytes, int]] = {}
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    for item in items:
        path = _relative(item.get("path", ""), "item path")
        if "fieldRef" in item:
            path_spec = item["fieldRef"].get("fieldPath", "")
            if path_spec in ("metadata.labels", "metadata.annotations"):
                values = pod["metadata"].get(path_spec.split(".")[1]) or {}
                value = "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
            else:
                value = field_ref(pod, path_spec)
        else:
            ref = item.get("resourceFieldRef") or {}
            container = containers.get(ref.get("containerName", ""), {})
            kind, _, what = ref.get("resource", "").partition(".")
            value = str(((container.get("resources") or {}).get(kind) or {}).get(what, "0"))
        files[path] = (value.encode(), int(item.get("mode", default_mode)))
    return files


def _write_atomic(
    root: Path, files: dict[PurePosixPath, tuple[bytes, int]], group: int | None
) -> None:
    root.mkdir(parents=True, exist_ok=True)
    stamp = root / (time.strftime("..%Y_%m_%d_%H_%M_%S.") + str(time.monotonic_ns() % 10**9))
    stamp.mkdir()
    for path, (content, mode) in files.items():
        target = stamp / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        if group is not None:
            os.chown(target, 0, group)
            mode |= 0o440
        os.chmod(target, mode & 0o7777)
    (root / "..data").symlink_to(stamp.name)
    for top in sorted({p.parts[0] for p in files}):
        (root / top).symlink_to(f"..data/{top}")
    if group is not None:
        for directory in (root, stamp):
            os.chown(directory, 0, group)
            os.chmod(directory, 0o2755)  # noqa: S103 - the kubelet's own mode


def _own(path: Path, group: int) -> None:
    """The kubelet's SetVolumeOwnership for a writable volume."""
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames]:
            entry = Path(dirpath) / name
            info = entry.lstat()
            if stat.S_ISLNK(info.st_mode):
                continue
            os.chown(entry, -1, group)
            extra = 0o2770 if stat.S_ISDIR(info.st_mode) else 0o660
            os.chmod(entry, (info.st_mode & 0o7777) | extra)
    os.chown(path, -1, group)
    os.chmod(path, (path.stat().st_mode & 0o7777) | 0o2770)  # noqa: S103 - as SetVolumeOwnership


def prepare_volumes(
    store: ObjectStore, pod: Mapping[str, Any], root: Path, claims: Path
) -> dict[str, HostVolume]:
    """Set up every volume of ``pod`` under ``root``; :class:`VolumeError` on the first failure."""
    security = pod["spec"].get("securityContext") or {}
    group = security.get("fsGroup")
    volumes: dict[str, HostVolume] = {}
    for volume in pod["spec"].get("volumes") or []:
        try:
            _prepare(store, pod, volume, root, claims, group, volumes)
        except VolumeError as exc:
            exc.volume = volume["name"]
            raise
    return volumes


def _prepare(
    store: ObjectStore,
    pod: Mapping[str, Any],
    volume: Mapping[str, Any],
    root: Path,
    claims: Path,
    group: int | None,
    volumes: dict[str, HostVolume],
) -> None:
    namespace = pod["metadata"]["namespace"]
    name = volume["name"]
    here = root / name
    if "emptyDir" in volume:
        here.mkdir(parents=True, exist_ok=True)
        os.chmod(here, 0o777)  # noqa: S103 - an emptyDir is world-writable
        if group is not None:
            _own(here, group)
        volumes[name] = HostVolume(here, False)
    elif "secret" in volume or "configMap" in volume:
        kind = "secret" if "secret" in volume else "configmap"
        source = volume.get("secret") or volume.get("configMap") or {}
        ref = source.get("secretName") if kind == "secret" else source.get("name")
        optional = bool(source.get("optional"))
        data = _object_data(store, namespace, kind, ref or "", optional)
        mode = int(source.get("defaultMode", 0o644))
        files = _pick(data, source.get("items"), mode, kind, optional)
        _write_atomic(here, files, group)
        volumes[name] = HostVolume(here, True)
    elif "projected" in volume:
        source = volume["projected"]
        mode = int(source.get("defaultMode", 0o644))
        files = {}
        for part in source.get("sources") or []:
            if "secret" in part or "configMap" in part:
                kind = "secret" if "secret" in part else "configmap"
                ref = part.get("secret") or part.get("configMap") or {}
                optional = bool(ref.get("optional"))
                data = _object_data(store, namespace, kind, ref.get("name", ""), optional)
                files.update(_pick(data, ref.get("items"), mode, kind, optional))
            elif "downwardAPI" in part:
                files.update(_downward(pod, part["downwardAPI"].get("items") or [], mode))
            else:
                kinds = ", ".join(sorted(part))
                raise VolumeError(f"projected source {kinds} is not supported by this kubelet")
        _write_atomic(here, files, group)
        volumes[name] = HostVolume(here, True)
    elif "downwardAPI" in volume:
        source = volume["downwardAPI"]
        mode = int(source.get("defaultMode", 0o644))
        _write_atomic(here, _downward(pod, source.get("items") or [], mode), group)
        volumes[name] = HostVolume(here, True)
    elif "hostPath" in volume:
        volumes[name] = HostVolume(_host_path(volume["hostPath"]), False)
    elif "persistentVolumeClaim" in volume:
        source = volume["persistentVolumeClaim"]
        claim = source.get("claimName", "")
        if (namespace, claim) not in store.objects["persistentvolumeclaims"]:
            raise VolumeError(f'persistentvolumeclaim "{claim}" not found')
        here = claims / namespace / claim
        if not here.exists():
            here.mkdir(parents=True)
            os.chmod(here, 0o777)  # noqa: S103 - as a hostpath provisioner makes it  # noqa: S103 - an emptyDir is world-writable
        if group is not None:
            _own(here, group)
        volumes[name] = HostVolume(here, bool(source.get("readOnly")))
    else:
        kinds = ", ".join(sorted(k for k in volume if k != "name"))
        raise VolumeError(f"volume {name}: {kinds} volumes are not supported by this kubelet")


def _host_path(source: Mapping[str, Any]) -> Path:
    path = Path(source.get("path", ""))
    kind = source.get("type") or ""
    if kind == "DirectoryOrCreate" and not path.exists():
        path.mkdir(mode=0o755, parents=True)
    elif kind == "FileOrCreate" and not path.exists():
        path.touch(mode=0o644)
    checks = {
        "Directory": path.is_dir,
        "DirectoryOrCreate": path.is_dir,
        "File": path.is_file,
        "FileOrCreate": path.is_file,
        "Socket": lambda: path.is_socket(),
        "CharDevice": lambda: path.is_char_device(),
        "BlockDevice": lambda: path.is_block_device(),
    }
    check = checks.get(kind)
    if check is not None and not check():
        raise VolumeError(f"hostPath type check failed: {path} is not a {kind}")
    return path


def container_mounts(
    container: Mapping[str, Any], volumes: Mapping[str, HostVolume]
) -> list[dict[str, Any]]:
    """OCI bind mounts for ``container``'s ``volumeMounts`` (subPath resolved and contained)."""
    mounts: list[dict[str, Any]] = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount.get("name", ""))
        if volume is None:
            raise VolumeError(f"volumeMount {mount.get('name')!r}: no such volume in the pod")
        source = volume.path
        sub = mount.get("subPath") or ""
        if sub:
            source = volume.path / _relative(sub, "subPath")
            if not source.exists() and not source.is_symlink():
                source.mkdir(parents=True)  # a missing subPath is created as a directory
            resolved = source.resolve()
            if not resolved.is_relative_to(volume.path.resolve()):
                raise VolumeError(
                    f"subPath {sub!r} of volume {mount['name']!r} resolves outside the volume"
                )
            source = resolved
        read_only = volume.read_only or bool(mount.get("readOnly"))
        options = ["rbind", "ro" if read_only else "rw", "nosuid", "nodev"]
        mounts.append(
            {
                "destination": mount["mountPath"],
                "type": "bind",
                "source": str(source),
                "options": options,
            }
        )
    return mounts
