"""Containers in a real OCI runtime (Debian's ``runc``) for the kubelet's ``oci`` mode.

Each container gets its own bundle: the root filesystem is an overlay whose
lower layer is the host's ``/`` (so programs and the virtualenv are there) and
whose upper layer is the container's own, thrown away when it stops; a
``readOnlyRootFilesystem`` container gets it read-only. Missing mount points
(``/home/<user>``) are thereby created in the container's layer, never on the
host. Besides ``/proc``, ``/dev`` and ``/dev/shm``, the mounts are the pod's
volumes, a tmpfs ``/tmp`` and the ``/etc/hosts`` the kubelet writes.

Namespaces: pid, ipc, uts and mount are the container's own; the network is the
host's (every pod listens on its own loopback address, see the kubelet), and no
cgroup limits are set (the cgroups of these machines are v1/hybrid, and the
resources of a pod are not enforced here).

:func:`build_process` and :func:`build_spec` are pure: they turn the pod, the
container and the image config into the OCI process and spec, honouring the
security context (user, group, supplemental groups and fsGroup, capabilities,
``allowPrivilegeEscalation``, ``privileged``, ``readOnlyRootFilesystem``,
``runAsNonRoot``, ``seccompProfile``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .images import ImageConfig
from .podenv import ContainerConfigError

__all__ = [
    "DEFAULT_CAPABILITIES",
    "RUNC_ENV",
    "OciUnavailableError",
    "build_process",
    "build_spec",
    "find_runc",
    "resolve_user",
]

#: Environment variable naming the runc binary (default: ``runc`` on PATH).
RUNC_ENV = "LSST_SPAWNER_RUNC"

#: The capabilities containerd gives a container that neither adds nor drops any.
DEFAULT_CAPABILITIES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
)
_ALL_CAPABILITIES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
]

#: The system calls containerd's default (``RuntimeDefault``) profile refuses outright
#: (those it allows only with arguments or capabilities are not modelled).
_SECCOMP_DENIED = [
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class OciUnavailableError(RuntimeError):
    """runc is missing or cannot run containers here."""


def find_runc() -> str:
    """Path of ``runc``; raise with install advice when it is missing."""
    candidate = os.environ.get(RUNC_ENV) or shutil.which("runc") or "/usr/sbin/runc"
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    raise OciUnavailableError(
        f"runc is missing ({candidate}): install it with 'apt-get install -y runc' "
        f"or set {RUNC_ENV}"
    )


def _passwd(root: Path) -> list[list[str]]:
    try:
        text = (root / "etc/passwd").read_text(errors="replace")
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line.count(":") >= 6]


def resolve_user(
    pod: Mapping[str, Any], container: Mapping[str, Any], image: ImageConfig, root: Path = Path("/")
) -> tuple[int, int, list[int]]:
    """``(uid, gid, additional gids)`` as the kubelet and containerd decide them."""
    pod_sc = pod["spec"].get("securityContext") or {}
    sc = container.get("securityContext") or {}
    where = f'(pod: "{pod["metadata"]["name"]}", container: {container["name"]})'
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    gid = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    image_user, _, image_group = image.user.partition(":")
    image_gid: int | None = None
    if uid is None and image_user:
        if image_user.isdigit():
            uid = int(image_user)
        else:
            entry = next((e for e in _passwd(root) if e[0] == image_user), None)
            if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
                raise ContainerConfigError(
                    f"container has runAsNonRoot and image has non-numeric user "
                    f"({image_user}), cannot verify user is non-root {where}"
                )
            if entry is None:
                raise ContainerConfigError(
                    f"unable to find user {image_user}: no matching entries in passwd file"
                )
            uid, image_gid = int(entry[2]), int(entry[3])
    uid = int(uid or 0)
    if image_group.isdigit():
        image_gid = int(image_group)
    if gid is None:
        if image_gid is None:
            entry = next((e for e in _passwd(root) if e[2] == str(uid)), None)
            image_gid = int(entry[3]) if entry else 0
        gid = image_gid
    if uid == 0 and sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
        raise ContainerConfigError(f"container has runAsNonRoot and image will run as root {where}")
    groups = [int(g) for g in pod_sc.get("supplementalGroups") or []]
    if pod_sc.get("fsGroup") is not None:
        groups.append(int(pod_sc["fsGroup"]))
    ordered = list(dict.fromkeys([int(gid), *groups]))
    return uid, int(gid), ordered


def _capabilities(sc: Mapping[str, Any]) -> list[str]:
    if sc.get("privileged"):
        return [f"CAP_{c}" for c in _ALL_CAPABILITIES]
    wanted = sc.get("capabilities") or {}

    def names(key: str) -> set[str]:
        return {str(c).upper().removeprefix("CAP_") for c in wanted.get(key) or []}

    drop, add = names("drop"), names("add")
    base = set() if "ALL" in drop else set(DEFAULT_CAPABILITIES) - drop
    chosen = set(_ALL_CAPABILITIES) if "ALL" in add else base | add
    return [f"CAP_{c}" for c in _ALL_CAPABILITIES if c in chosen]


def _seccomp(pod: Mapping[str, Any], sc: Mapping[str, Any]) -> dict[str, Any] | None:
    profile = sc.get("seccompProfile") or (pod["spec"].get("securityContext") or {}).get(
        "seccompProfile"
    )
    kind = (profile or {}).get("type", "Unconfined")
    if kind == "Unconfined" or sc.get("privileged"):
        return None
    if kind != "RuntimeDefault":
        raise ContainerConfigError(
            f"seccomp profile type {kind!r} is not supported by this kubelet (RuntimeDefault "
            "and Unconfined are)"
        )
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": list(_SECCOMP_DENIED), "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }


def build_process(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    image: ImageConfig,
    argv: list[str],
    env: Mapping[str, str],
) -> dict[str, Any]:
    """The OCI ``process``: argv, the environment (image's, then the pod's), user, caps."""
    if not argv:
        name = container["name"]
        raise ContainerConfigError(
            f'failed to create containerd task: no command specified for container "{name}"'
        )
    sc = container.get("securityContext") or {}
    uid, gid, groups = resolve_user(pod, container, image)
    variables: dict[str, str] = {"PATH": DEFAULT_PATH}
    for entry in image.env:
        key, _, value = entry.partition("=")
        variables[key] = value
    variables["HOSTNAME"] = str(pod["metadata"]["name"])
    variables.update(env)
    if "HOME" not in variables:
        home = next((e[5] for e in _passwd(Path("/")) if e[2] == str(uid)), "/")
        variables["HOME"] = home
    caps = _capabilities(sc)
    escalation = sc.get("allowPrivilegeEscalation")
    no_new_privs = escalation is False and not sc.get("privileged")
    return {
        "terminal": False,
        "user": {"uid": uid, "gid": gid, "additionalGids": groups},
        "args": argv,
        "env": [f"{k}={v}" for k, v in variables.items()],
        "cwd": container.get("workingDir") or image.working_dir or "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": no_new_privs,
    }


def build_spec(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    process: dict[str, Any],
    rootfs: Path,
    mounts: list[dict[str, Any]],
) -> dict[str, Any]:
    """The whole OCI runtime spec of one container."""
    sc = container.get("securityContext") or {}
    base_mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/tmp",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777", "size=262144k"],
        },
    ]
    linux: dict[str, Any] = {
        "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
        "maskedPaths": [
            "/proc/acpi",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/sched_debug",
            "/proc/scsi",
            "/sys/firmware",
        ],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    }
    seccomp = _seccomp(pod, sc)
    if seccomp is not None:
        linux["seccomp"] = seccomp
    return {
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": {"path": str(rootfs), "readonly": bool(sc.get("readOnlyRootFilesystem"))},
        "hostname": pod["metadata"]["name"],
        # The pod's volumes after the kubelet's /tmp (an emptyDir there replaces it), parents
        # before what they contain as containerd sorts them, and this Python's binds last,
        # so that such an emptyDir does not hide them either.
        "mounts": base_mounts
        + sorted(mounts, key=lambda m: len(Path(m["destination"]).parts))
        + _host_paths_hidden_by_tmp(),
        "linux": linux,
    }


def _host_paths_hidden_by_tmp() -> list[dict[str, Any]]:
    """Read-only binds of this Python (its venv, this checkout) when they live under /tmp.

    The container's /tmp is a tmpfs, which would hide a venv or a clone under /tmp (a CI
    checkout, a fresh clone): the lab's ``jupyterhub-singleuser`` could not start.
    """
    tmp = Path("/tmp")
    package_root = Path(__file__).resolve().parents[3]
    tops: set[Path] = set()
    for path in (Path(sys.prefix), package_root, Path(sys.executable).parent):
        resolved = path.resolve() if path.exists() else path
        for candidate in (path.absolute(), resolved):
            if candidate.is_relative_to(tmp) and candidate != tmp:
                tops.add(tmp / candidate.relative_to(tmp).parts[0])
    return [
        {"destination": str(top), "type": "bind", "source": str(top), "options": ["rbind", "ro"]}
        for top in sorted(tops)
    ]


async def _run(*argv: str, check: bool = True) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    text = out.decode(errors="replace").strip()
    if check and process.returncode != 0:
        raise OciUnavailableError(f"{' '.join(argv)} failed ({process.returncode}): {text}")
    return text


def _open_interpreter_path(upper: Path) -> None:
    """Make the directories above this Python searchable by anyone, in the container's layer.

    On these machines the interpreter lives under ``/root`` (mode 0700): a container
    running as a user could not start it. An image would install it world-readable;
    here the container's own layer gets copies of those directories (same owner, plus
    ``o+x``), which overlayfs shows in place of the host's, contents unchanged.
    """
    wanted = {Path(p).resolve() for p in (sys.executable, sys.prefix, sys.base_prefix)}
    for target in wanted:
        for directory in reversed(target.parents):
            info = directory.stat()
            if directory == Path("/") or info.st_mode & 0o001:
                continue
            copy = upper / directory.relative_to("/")
            copy.mkdir(parents=True, exist_ok=True)
            os.chown(copy, info.st_uid, info.st_gid)
            os.chmod(copy, (info.st_mode & 0o7777) | 0o005)


class Bundle:
    """One container's bundle directory, its overlay root and its runc container id."""

    def __init__(self, directory: Path, container_id: str) -> None:
        self.directory = directory
        self.id = container_id
        self.rootfs = directory / "rootfs"
        self.mounted = False

    async def prepare(self) -> None:
        if self.directory.exists():
            shutil.rmtree(self.directory)
        for part in ("rootfs", "upper", "work"):
            (self.directory / part).mkdir(parents=True)
        _open_interpreter_path(self.directory / "upper")
        options = (
            f"lowerdir=/,upperdir={self.directory / 'upper'},workdir={self.directory / 'work'}"
        )
        await _run("mount", "-t", "overlay", "overlay", "-o", options, str(self.rootfs))
        self.mounted = True

    def write(self, spec: dict[str, Any]) -> None:
        (self.directory / "config.json").write_text(json.dumps(spec))

    async def cleanup(self, runc: str) -> None:
        await _run(runc, "delete", "--force", self.id, check=False)
        if self.mounted:
            await _run("umount", "-l", str(self.rootfs), check=False)
            self.mounted = False
        with contextlib.suppress(OSError):
            shutil.rmtree(self.directory)
