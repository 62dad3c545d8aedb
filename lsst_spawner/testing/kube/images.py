"""Image configs for the OCI kubelet: read from the registry a reference names, and published.

The OCI kubelet runs every container on the host's own (read-only) root
filesystem, so an image contributes only its *config*: ``Entrypoint``, ``Cmd``,
``Env``, ``User`` and ``WorkingDir``. :func:`fetch_image_config` reads that
config from the registry the reference names, as a container runtime resolves a
pull (manifest, then config blob); a reference the registry does not have
raises :class:`ImagePullError`, which the kubelet reports as ``ErrImagePull``.
Only loopback registries are contacted, over plain HTTP: test traffic never
leaves the machine.

:func:`publish_image` pushes such an image (a config blob, one empty layer and
a Docker v2 manifest) into a registry, for tests: see :data:`HOST_PATH`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..registry import DOCKER_MANIFEST, _digest, _put_blob, _put_manifest

__all__ = [
    "HOST_PATH",
    "LAB_STAND_IN",
    "ImageConfig",
    "ImagePullError",
    "fetch_image_config",
    "mirrored",
    "parse_reference",
    "publish_image",
    "publish_lab_stand_in",
    "registry_images",
]

#: A PATH for test images: this interpreter's bin directory (the virtualenv's console
#: scripts, such as ``jupyterhub-singleuser``) first, then the host's usual directories.
_SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
HOST_PATH = os.pathsep.join((os.path.dirname(sys.executable), *_SYSTEM_PATH))
_ACCEPT = ", ".join(
    [
        DOCKER_MANIFEST,
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


class ImagePullError(Exception):
    """The image cannot be pulled: the message is what a kubelet's Failed event says."""


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image config that decide how its container runs."""

    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    user: str = ""
    working_dir: str = ""
    digest: str = ""

    @classmethod
    def from_blob(cls, blob: dict[str, Any], digest: str = "") -> ImageConfig:
        config = blob.get("config") or {}
        return cls(
            entrypoint=list(config.get("Entrypoint") or []),
            cmd=list(config.get("Cmd") or []),
            env=list(config.get("Env") or []),
            user=str(config.get("User") or ""),
            working_dir=str(config.get("WorkingDir") or ""),
            digest=digest,
        )

    def argv(self, command: list[str] | None, args: list[str] | None) -> list[str]:
        """Kubernetes' rule: ``command`` replaces Entrypoint (dropping Cmd), ``args`` Cmd."""
        if command:
            return [*command, *(args or [])]
        return [*self.entrypoint, *(args if args else self.cmd)]


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None
    digest: str | None


def parse_reference(image: str) -> Reference:
    """Split ``host[:port]/repo[:tag][@digest]``; the host part is required here."""
    rest, _, digest = image.partition("@")
    first, slash, remainder = rest.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        raise ImagePullError(
            f'failed to resolve reference "{image}": no registry host in the reference '
            "(the OCI kubelet pulls only from the registry a reference names)"
        )
    repository, tag = remainder, None
    if ":" in remainder.rsplit("/", 1)[-1]:
        repository, _, tag = remainder.rpartition(":")
    if not repository or (not tag and not digest):
        tag = tag or "latest"
    return Reference(first, repository, tag, digest or None)


def mirrored(image: str, mirrors: dict[str, str]) -> str:
    """``image`` pulled through a registry mirror, as containerd's ``registry.mirrors`` do.

    A reference without a registry host is Docker Hub's (``python:3`` is
    ``docker.io/library/python:3``); a host found in ``mirrors`` is replaced by its mirror.
    """
    first, slash, rest = image.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        first, rest = "docker.io", (image if slash else f"library/{image}")
    if first in mirrors:
        return f"{mirrors[first]}/{rest}"
    return image if first != "docker.io" or image.startswith("docker.io/") else f"{first}/{rest}"


def _loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


async def fetch_image_config(image: str, limit: float = 10.0) -> ImageConfig:
    """The config of ``image`` from its registry; :class:`ImagePullError` when it has none."""
    ref = parse_reference(image)
    if not _loopback(ref.registry):
        raise ImagePullError(
            f'failed to resolve reference "{image}": {ref.registry} is not a loopback '
            "registry (the test kubelet never leaves the machine)"
        )
    base = f"http://{ref.registry}/v2/{ref.repository}"
    wanted = ref.digest or ref.tag
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit)) as http:
            async with http.get(f"{base}/manifests/{wanted}", headers={"Accept": _ACCEPT}) as r:
                if r.status == 404:
                    raise ImagePullError(
                        f'failed to resolve reference "{image}": {image}: not found'
                    )
                if r.status != 200:
                    raise ImagePullError(
                        f'failed to resolve reference "{image}": unexpected status '
                        f"from HEAD request to {base}/manifests/{wanted}: {r.status}"
                    )
                raw = await r.read()
            if ref.digest and _digest(raw) != ref.digest:
                raise ImagePullError(
                    f'failed to pull and unpack image "{image}": manifest digest '
                    f"{_digest(raw)} does not match {ref.digest}"
                )
            manifest = json.loads(raw)
            config_digest = (manifest.get("config") or {}).get("digest")
            if not config_digest:
                raise ImagePullError(
                    f'failed to pull and unpack image "{image}": the manifest has no config '
                    "(a manifest list or schema 1 manifest is not supported here)"
                )
            async with http.get(f"{base}/blobs/{config_digest}") as r:
                if r.status != 200:
                    raise ImagePullError(
                        f'failed to pull and unpack image "{image}": config blob '
                        f"{config_digest}: HTTP {r.status}"
                    )
                blob = json.loads(await r.read())
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ImagePullError(
            f'failed to pull and unpack image "{image}": {type(exc).__name__}: {exc}'
        ) from None
    return ImageConfig.from_blob(blob, _digest(raw))


def registry_images(mirrors: dict[str, str] | None = None) -> Any:
    """An ``images`` check for the process kubelet: is the image in the registry it names?

    The kubelet then pulls as a node would: a reference whose manifest (by tag or
    digest) the registry does not have fails with ``ErrImagePull`` and the
    registry's answer (the :class:`ImagePullError` this raises).
    """

    async def present(image: str) -> bool:
        await fetch_image_config(mirrored(image, mirrors or {}))
        return True

    return present


async def publish_image(
    registry_url: str,
    repository: str,
    tag: str,
    *,
    entrypoint: list[str] | None = None,
    cmd: list[str] | None = None,
    env: dict[str, str] | None = None,
    user: str = "",
    working_dir: str = "",
    authorization: str | None = None,
) -> str:
    """Push an image whose config carries these fields; return its reference with digest.

    The one layer is an empty tar (the OCI kubelet uses the host's root
    filesystem), so only the config matters. ``env`` defaults to
    ``PATH=`` :data:`HOST_PATH`.
    """
    headers = {"Authorization": authorization} if authorization else {}
    variables = {"PATH": HOST_PATH, **(env or {})}
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Entrypoint": entrypoint or None,
                "Cmd": cmd or None,
                "Env": [f"{k}={v}" for k, v in variables.items()],
                "User": user,
                "WorkingDir": working_dir,
            },
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    ).encode()
    layer = b"\0" * 1024  # an empty tar archive
    async with aiohttp.ClientSession() as session:
        for blob in (layer, config):
            await _put_blob(session, registry_url, repository, blob, headers)
        digest = await _put_manifest(
            session,
            registry_url,
            repository,
            tag,
            config=config,
            layer=layer,
            layer_type="application/vnd.docker.image.rootfs.diff.tar",
            headers=headers,
        )
    host = registry_url.split("://", 1)[-1].rstrip("/")
    return f"{host}/{repository}:{tag}@{digest}"


#: The entrypoint of :func:`publish_lab_stand_in`: a command other than
#: ``jupyterhub-singleuser`` runs as given; otherwise a plain HTTP server on the pod's
#: address (``hostname -i`` reads the ``/etc/hosts`` the kubelet writes) and port 8888
#: stands in for the lab, which would need a hub to talk to.
LAB_STAND_IN = [
    "/bin/sh",
    "-c",
    'if [ "$#" -gt 0 ] && [ "$1" != jupyterhub-singleuser ]; then exec "$@"; fi; '
    f'exec {sys.executable} -m http.server --bind "$(hostname -i)" 8888 --directory /tmp',
    "lab",
]


async def publish_lab_stand_in(
    registry_url: str, repository: str, tags: list[str], authorization: str | None = None
) -> dict[str, str]:
    """Publish one stand-in lab image under each of ``tags``; return ``{tag: digest}``.

    All tags share one manifest (so one digest), as a site's aliases do. The working
    directory is ``/tmp`` (the container's own tmpfs), where a non-root user can write.
    """
    digests: dict[str, str] = {}
    for tag in tags:
        reference = await publish_image(
            registry_url,
            repository,
            tag,
            entrypoint=LAB_STAND_IN,
            working_dir="/tmp",
            authorization=authorization,
        )
        digests[tag] = reference.rsplit("@", 1)[1]
    return digests
