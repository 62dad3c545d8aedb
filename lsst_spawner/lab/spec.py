"""``LabSpec``: everything lsst_spawner adds to a lab, and how it lands on KubeSpawner's pod.

:func:`build_lab_spec` computes what lsst_spawner adds; :func:`apply_lab_spec`
applies it to KubeSpawner's pod and returns the lab's two objects: the pod and
its Secret, which also holds the env values too long for the pod (ours and
KubeSpawner's; see :mod:`lsst_spawner.lab.env`), which is why the Secret is
finished from KubeSpawner's pod.

The builders return plain JSON-ready dicts in the Kubernetes wire format
(camelCase), not ``kubernetes_asyncio`` models: that is what the golden files
hold and what ``kubernetes_validate`` checks, it needs no API client to
serialize, and ``kubernetes_asyncio``'s ``create_namespaced_*`` calls accept a
dict body as it is. KubeSpawner's ``V1Pod`` is turned into a dict once, at the
edge (:func:`lsst_spawner.kube.pod_to_dict`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..identity import Identity
from .env import place_env
from .errors import LabSpecError
from .files import (
    LabFile,
    Occupied,
    build_file_mounts,
    build_files_volume,
    check_lab_files,
    file_data,
    home_directory,
    occupied_paths,
)
from .init import InitSettings, build_init_containers
from .limits import check_lab_object_limits
from .names import build_lab_labels, build_object_names, expand_template, template_fields
from .nss import NssSettings, build_nss_files
from .secrets import (
    API_TOKEN_ENV,
    SecretSettings,
    build_lab_secret,
    build_nss_volume,
    build_secret_env,
    build_secret_volume,
    encode_data,
    find_literal_secrets,
)
from .security import (
    build_container_security_context,
    build_identity_env,
    build_pod_security_context,
    check_lab_identity,
    drop_system_groups,
)
from .sizes import (
    LabProfile,
    LabSize,
    apply_profile_scheduling,
    build_profile_env,
    build_profile_resources,
    build_profile_scheduling,
    size_profile,
)
from .volumes import (
    WRITABLE_VOLUME_PREFIX,
    SiteMount,
    SiteVolume,
    build_mounts,
    build_volumes,
    select_site_storage,
)

__all__ = [
    "OWNED_ENV",
    "LabObjects",
    "LabRequest",
    "LabSettings",
    "LabSpec",
    "apply_lab_spec",
    "build_lab_objects",
    "build_lab_spec",
]

#: Env variables lsst_spawner sets; ``LSSTSpawner.lab_env`` may not set them.
OWNED_ENV = frozenset(
    {
        "USER",
        "HOME",
        "JUPYTER_IMAGE",
        "JUPYTER_IMAGE_SPEC",
        "JUPYTER_RUNTIME_DIR",
        "EXTERNAL_UID",
        "EXTERNAL_GID",
        "EXTERNAL_GROUPS",
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_KEY_0",
        "GIT_CONFIG_VALUE_0",
        "CPU_LIMIT",
        "CPU_GUARANTEE",
        "MEM_LIMIT",
        "MEM_GUARANTEE",
        "CONTAINER_SIZE",
        "DEBUG",
        "RESET_USER_ENV",
        "IMAGE_DESCRIPTION",
        "IMAGE_DIGEST",
        *API_TOKEN_ENV,
    }
)

_LOG = logging.getLogger(__name__)

#: KubeSpawner's name for the lab container.
NOTEBOOK_CONTAINER = "notebook"


@dataclass(frozen=True)
class LabSettings:
    """The site's lab configuration, frozen; built by ``LabTraits.lab_settings()``."""

    sizes: tuple[LabSize, ...]
    default_size: str
    pod_name_template: str = "nb-{user_server}"
    request_ratio: float = 0.25
    fs_group: int | None = None
    minimum_uid: int = 1000
    minimum_gid: int = 1000
    #: Supplementary gids below ``minimum_gid`` that are kept.
    allowed_system_gids: frozenset[int] = frozenset()
    max_groups: int = 1024
    nss: NssSettings = field(default_factory=NssSettings)
    passwd_path: str = "/etc/passwd"  # noqa: S105 - a path
    group_path: str = "/etc/group"
    runtime_directory: str = "/run/lab"
    secrets: SecretSettings = field(default_factory=SecretSettings)
    volumes: tuple[SiteVolume, ...] = ()
    mounts: tuple[SiteMount, ...] = ()
    init: InitSettings = field(default_factory=InitSettings)
    #: Static files written into the lab through its Secret.
    files: tuple[LabFile, ...] = ()
    #: The lab container's root filesystem is read-only; ``writable_paths`` are emptyDirs.
    read_only_root: bool = True
    writable_paths: tuple[str, ...] = ("/tmp",)  # noqa: S108 - a path in the lab's container
    #: Plain env for every lab (idle and cull timeouts, site values).
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LabRequest:
    """What to build: the user's choice, validated upstream by the options form."""

    #: The container image reference, pinned by digest when known.
    image: str
    size: str | None = None
    debug: bool = False
    reset_user_env: bool = False
    #: Image variables (``JUPYTER_IMAGE_SPEC``, ``IMAGE_DIGEST``, ...) from the menu entry;
    #: when empty, ``JUPYTER_IMAGE`` and ``JUPYTER_IMAGE_SPEC`` are set to :attr:`image`.
    image_env: tuple[tuple[str, str], ...] = ()
    #: The menu profile chosen (limits, guarantees, node group); ``None``: :attr:`size`
    #: among the configured ``lab_sizes``.
    profile: LabProfile | None = None
    #: The JupyterHub server name ("" for the default server), checked upstream.
    server_name: str = ""


@dataclass(frozen=True)
class LabSpec:
    """Everything lsst_spawner adds to a lab, computed from settings, identity and options.

    ``env`` is our env, plain and ``valueFrom``; :func:`apply_lab_spec` merges it
    with KubeSpawner's and moves long plain values into the Secret ``secret_name``.
    """

    pod_name: str
    secret_name: str
    image: str
    labels: Mapping[str, str]
    pod_security_context: Mapping[str, Any]
    container_security_context: Mapping[str, Any]
    env: tuple[Mapping[str, Any], ...]
    resources: Mapping[str, Any]
    volumes: tuple[Mapping[str, Any], ...]
    volume_mounts: tuple[Mapping[str, Any], ...]
    init_containers: tuple[Mapping[str, Any], ...]
    secret: Mapping[str, Any]
    #: Secret values by name, to prove the Pod holds none of them.
    secret_values: Mapping[str, str] = field(repr=False, default_factory=dict)
    #: The pod spec's nodeSelector, tolerations and affinity from the profile's node group.
    scheduling: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabObjects:
    """The objects of one lab, in creation order: its Secret, then its Pod."""

    secret: dict[str, Any]
    pod: dict[str, Any]

    def as_list(self) -> list[dict[str, Any]]:
        return [self.secret, self.pod]


def _choose_size(settings: LabSettings, name: str | None) -> LabSize:
    wanted = name or settings.default_size
    for size in settings.sizes:
        if size.name == wanted:
            return size
    raise LabSpecError(f"size {wanted!r} is not among LSSTSpawner.lab_sizes")


def build_lab_spec(
    settings: LabSettings,
    identity: Identity,
    options: LabRequest,
    *,
    api_token: str,
    secret_values: Mapping[str, str] | None = None,
    log: logging.Logger | None = None,
) -> LabSpec:
    """Build the :class:`LabSpec` of one lab; raise :class:`LabSpecError` if it would be unsafe.

    Supplementary groups below ``settings.minimum_gid`` are dropped, with a warning on ``log``.
    """
    identity = drop_system_groups(identity, settings, log or _LOG)
    check_lab_identity(
        identity,
        minimum_uid=settings.minimum_uid,
        minimum_gid=settings.minimum_gid,
        max_groups=settings.max_groups,
    )
    if not options.image:
        raise LabSpecError("no image was chosen for the lab")
    profile = options.profile or size_profile(
        _choose_size(settings, options.size), settings.request_ratio
    )
    names = build_object_names(settings.pod_name_template, identity.username, options.server_name)
    labels = build_lab_labels(identity.username, options.image, names["pod"], options.server_name)
    fields = template_fields(identity.username, identity.uid, identity.gid)
    home = expand_template(
        settings.nss.home_template, fields, where="LSSTSpawner.lab_home_directory"
    )
    extra_values = dict(secret_values or {})
    groups = {g.name for g in identity.groups}
    init_containers = settings.init.containers if settings.init.enabled else ()
    site_volumes, site_mounts, _ = select_site_storage(
        settings.volumes,
        settings.mounts,
        [mount for container in init_containers for mount in container.mounts],
        groups,
    )
    site_paths = {mount.mount_path for mount in site_mounts}
    writable = [
        (f"{WRITABLE_VOLUME_PREFIX}{index}", path)
        for index, path in enumerate(settings.writable_paths)
        if settings.read_only_root and path not in site_paths
    ]
    check_lab_files(settings.files, _occupied(settings, home, site_paths), "LSSTSpawner.lab_files")

    secret = build_lab_secret(
        name=names["secret"],
        labels=labels,
        identity=identity,
        api_token=api_token,
        extra_values=extra_values,
        nss_files=build_nss_files(identity, settings.nss),
        settings=settings.secrets,
        files=file_data(settings.files),
    )

    # Site env first: the values lsst_spawner owns always win (check-config also rejects them).
    plain_env: dict[str, str] = {
        **dict(settings.env),
        "USER": identity.username,
        "HOME": home,
        "JUPYTER_IMAGE": options.image,
        "JUPYTER_IMAGE_SPEC": options.image,
        **dict(options.image_env),
        "JUPYTER_RUNTIME_DIR": settings.runtime_directory,
        **build_identity_env(identity),
        **build_profile_env(profile),
    }
    if options.debug:
        plain_env["DEBUG"] = "TRUE"
    if options.reset_user_env:
        plain_env["RESET_USER_ENV"] = "TRUE"
    env = [{"name": k, "value": v} for k, v in sorted(plain_env.items())]
    env += build_secret_env(
        names["secret"], has_git_token=bool(identity.git_token), settings=settings.secrets
    )

    files_volume = build_files_volume(names["secret"], settings.files)
    volumes: list[dict[str, Any]] = [
        build_nss_volume(names["secret"]),
        build_secret_volume(names["secret"], secret["data"], settings.secrets.extra),
        {"name": "lab-runtime", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        *([files_volume] if files_volume else []),
        *({"name": name, "emptyDir": {}} for name, _ in writable),
        *build_volumes(site_volumes, fields),
    ]
    mounts: list[dict[str, Any]] = [
        {
            "name": "lab-nss",
            "mountPath": settings.passwd_path,
            "subPath": "passwd",
            "readOnly": True,
        },
        {"name": "lab-nss", "mountPath": settings.group_path, "subPath": "group", "readOnly": True},
        {"name": "lab-secrets", "mountPath": settings.secrets.directory, "readOnly": True},
        {"name": "lab-runtime", "mountPath": settings.runtime_directory},
        *build_file_mounts(settings.files),
        *({"name": name, "mountPath": path} for name, path in writable),
        *build_mounts(site_mounts, fields),
    ]
    init = build_init_containers(
        settings.init,
        identity,
        home=home,
        mounts=[
            build_mounts([m for m in (x.for_groups(groups) for x in c.mounts) if m], fields)
            for c in init_containers
        ],
    )
    values = {"api_token": api_token, **{f"extra secret {k}": v for k, v in extra_values.items()}}
    if identity.git_token:
        values["git_token"] = identity.git_token
    return LabSpec(
        pod_name=names["pod"],
        secret_name=names["secret"],
        image=options.image,
        labels=labels,
        pod_security_context=build_pod_security_context(identity, settings.fs_group),
        container_security_context=build_container_security_context(
            identity, read_only_root=settings.read_only_root
        ),
        env=tuple(env),
        resources=build_profile_resources(profile),
        volumes=tuple(volumes),
        volume_mounts=tuple(mounts),
        init_containers=tuple(init),
        secret=secret,
        secret_values=values,
        scheduling=build_profile_scheduling(profile),
    )


def _occupied(settings: LabSettings, home: str, site_paths: Iterable[str]) -> list[Occupied]:
    """The paths no static file may take, for this user (see :func:`file_problems`)."""
    builtins = {
        "lab_passwd_path": settings.passwd_path,
        "lab_group_path": settings.group_path,
        "lab_secret_directory": settings.secrets.directory,
        "lab_runtime_directory": settings.runtime_directory,
    }
    writable = settings.writable_paths if settings.read_only_root else ()
    return [*occupied_paths(builtins, writable, list(site_paths)), home_directory(home)]


def _check_clashes(
    ours: Iterable[Mapping[str, Any]],
    theirs: list[dict[str, Any]],
    key: str,
    kind: str,
    trait: str,
) -> list[Mapping[str, Any]]:
    """Our items; :class:`LabSpecError` if one of KubeSpawner's has the same ``key``."""
    items = list(ours)
    clash = sorted({item[key] for item in items} & {item.get(key, "") for item in theirs})
    if clash:
        raise LabSpecError(f"KubeSpawner.{trait} defines {kind} {clash} that lsst_spawner owns")
    return items


def apply_lab_spec(pod: Mapping[str, Any], spec: LabSpec) -> LabObjects:
    """Apply the lab spec to KubeSpawner's pod (a dict); return the lab's Secret and Pod.

    KubeSpawner's own settings survive (node selector, tolerations, affinity,
    its labels and annotations, extra volumes, containers, env and envFrom);
    the lab container's image, security context, resources and the env
    variables we own are replaced; the literal API token KubeSpawner puts in
    env is replaced by a ``secretKeyRef``. The lab container's plain env, ours
    and KubeSpawner's, comes first, sorted, with values too long for the pod
    read from the Secret's ``env.`` keys (:func:`lsst_spawner.lab.env.place_env`).
    Raises :class:`LabSpecError` if a KubeSpawner volume, mount or init
    container clashes with ours, or if any secret value is present anywhere in
    the pod or the env values (plain env, not a place for secrets).

    Neither ``pod`` nor ``spec`` is changed, and the result shares nothing with
    them: the parts that change are new dicts and lists, and the pod and the
    env values are copied at the end through their JSON text, which the secret
    check reads too (both are JSON data; a JSON round trip is several times
    cheaper than ``copy.deepcopy``, and this runs on every spawn).
    """
    result = dict(pod)
    metadata = result["metadata"] = dict(result.get("metadata") or {})
    metadata["name"] = spec.pod_name
    metadata["labels"] = {**(metadata.get("labels") or {}), **spec.labels}
    body = result["spec"] = dict(result.get("spec") or {})
    body["securityContext"] = {
        **(body.get("securityContext") or {}),
        **spec.pod_security_context,
    }
    containers = body["containers"] = [dict(c) for c in body.get("containers") or []]
    if not containers:
        raise LabSpecError("KubeSpawner's pod has no containers")
    lab = next((c for c in containers if c.get("name") == NOTEBOOK_CONTAINER), containers[0])
    lab["image"] = spec.image
    lab["securityContext"] = {
        **(lab.get("securityContext") or {}),
        **spec.container_security_context,
    }
    lab["resources"] = spec.resources
    apply_profile_scheduling(body, spec.scheduling)

    # KubeSpawner's entries for names we set are dropped, even valueFrom ones, so
    # lsst_spawner's value wins (in env, which beats any envFrom a site gives).
    owned = {e["name"] for e in spec.env} | set(API_TOKEN_ENV)
    theirs = [e for e in lab.get("env") or [] if e.get("name") not in owned]
    data, lab["env"] = place_env([*theirs, *spec.env], spec.secret_name)

    their_mounts = lab.get("volumeMounts") or []
    ours = _check_clashes(
        spec.volume_mounts, their_mounts, "mountPath", "mount paths", "volume_mounts"
    )
    lab["volumeMounts"] = their_mounts + ours

    their_volumes = body.get("volumes") or []
    our_volumes = _check_clashes(spec.volumes, their_volumes, "name", "volumes", "volumes")
    body["volumes"] = their_volumes + our_volumes

    if spec.init_containers:
        their_init = body.get("initContainers") or []
        our_init = _check_clashes(
            spec.init_containers, their_init, "name", "init containers", "init_containers"
        )
        # Ours first: the home directory must exist before anything else runs.
        body["initContainers"] = our_init + their_init

    # The env values are checked as plain text (in the Secret they are base64).
    public = {"env": data, "pod": result}
    as_json = json.dumps(public, default=_plain_mapping)
    leaks = find_literal_secrets(public, spec.secret_values, as_json=as_json)
    if leaks:
        raise LabSpecError(
            "refusing to create a lab pod or environment holding secret values literally (check "
            f"KubeSpawner.environment and similar settings): {', '.join(leaks)}"
        )
    copied: dict[str, Any] = json.loads(as_json)
    secret: dict[str, Any] = json.loads(json.dumps(spec.secret, default=_plain_mapping))
    secret["data"].update(encode_data(copied["env"]))
    check_lab_object_limits(secret, copied["pod"], env=copied["env"], json_size=len(as_json))
    return LabObjects(secret=secret, pod=copied["pod"])


def _plain_mapping(obj: Any) -> Any:
    """``json.dumps`` help for read-only mappings (the spec's are ``MappingProxyType``)."""
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"a lab pod holds only JSON data, not {type(obj).__name__}")


def build_lab_objects(
    settings: LabSettings,
    identity: Identity,
    options: LabRequest,
    *,
    base_pod: Mapping[str, Any],
    api_token: str,
    secret_values: Mapping[str, str] | None = None,
    namespace: str | None = None,
) -> LabObjects:
    """Build the Secret and Pod of one lab from KubeSpawner's pod (a dict)."""
    spec = build_lab_spec(
        settings, identity, options, api_token=api_token, secret_values=secret_values
    )
    objects = apply_lab_spec(base_pod, spec)
    if namespace:
        for obj in objects.as_list():
            obj["metadata"]["namespace"] = namespace
    return objects
