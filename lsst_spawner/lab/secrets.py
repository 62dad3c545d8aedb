"""The lab's one Secret and the env and mounts that reach it, so the Pod holds no secret value.

The Secret also carries the lab's ``passwd`` and ``group`` files (not secret, but
they need an object, and the hub's Role may create Secrets, not ConfigMaps), which
are mounted at ``/etc/passwd`` and ``/etc/group`` only, never in the secret
directory; the site's static files (``file.<n>``, :mod:`lsst_spawner.lab.files`);
and env values too long to keep in the pod (``env.<NAME>``, :mod:`lsst_spawner.lab.env`).

A site secret comes either from the hub's environment (copied into this Secret)
or, by reference, from a key of an existing Secret in the lab's namespace
(:class:`SecretRef`): then the hub never reads it, and the pod names it in a
``secretKeyRef`` and in the secret directory's projected volume.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..identity import Identity
from .errors import LabSpecError

__all__ = [
    "API_TOKEN_KEY",
    "GIT_CREDENTIALS_KEY",
    "NSS_KEYS",
    "RESERVED_KEY_PREFIXES",
    "RESERVED_SECRET_KEYS",
    "SECRET_KEY_PATTERN",
    "ExtraSecret",
    "SecretRef",
    "SecretSettings",
    "build_git_credentials",
    "build_lab_secret",
    "build_nss_volume",
    "build_secret_env",
    "build_secret_volume",
    "encode_data",
    "find_literal_secrets",
    "is_secret_key",
]

API_TOKEN_KEY = "jupyterhub-api-token"  # noqa: S105 - a key name
GIT_CREDENTIALS_KEY = "git-credentials"
#: The NSS files' keys in the Secret (as :func:`lsst_spawner.lab.nss.build_nss_files` names them).
NSS_KEYS = ("passwd", "group")
#: Keys of the lab Secret that ``lab_extra_secrets`` may not use.
RESERVED_SECRET_KEYS = (API_TOKEN_KEY, GIT_CREDENTIALS_KEY, *NSS_KEYS)
#: Prefixes of the lab Secret's keys for env values and files, not for ``lab_extra_secrets``.
RESERVED_KEY_PREFIXES = ("env.", "file.")
#: Valid Secret data keys (they are also file names in the secret directory).
SECRET_KEY_PATTERN = re.compile(r"[-._a-zA-Z0-9]{1,253}")


def is_secret_key(key: object) -> bool:
    """Whether ``key`` is a valid Secret data key (the API server's rule: not ``.``, ``..*``)."""
    return (
        isinstance(key, str)
        and SECRET_KEY_PATTERN.fullmatch(key) is not None
        and key != "."
        and not key.startswith("..")
    )


ENV_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Env variables JupyterHub fills with the API token; in a lab they come from the Secret.
API_TOKEN_ENV = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")
#: Secret values shorter than this are not searched for in the Pod (too many false matches).
_MIN_SEARCHED_LENGTH = 8


@dataclass(frozen=True)
class SecretRef:
    """A key of an existing Secret in the lab's namespace, read by the kubelet, never the hub."""

    name: str
    key: str


@dataclass(frozen=True)
class ExtraSecret:
    """A site secret of each lab: a file named ``key``, and an env variable if ``env``.

    Its value is copied from the hub's environment into the lab's Secret, or,
    with ``ref``, read by the kubelet from that Secret key.
    """

    key: str
    env: str | None = None
    ref: SecretRef | None = None


@dataclass(frozen=True)
class SecretSettings:
    """Where secrets appear in the lab and which extra secrets it gets."""

    directory: str = "/etc/lab/secrets"
    git_credential_hosts: tuple[str, ...] = ("github.com",)
    extra: tuple[ExtraSecret, ...] = ()


def build_git_credentials(identity: Identity, hosts: tuple[str, ...]) -> str | None:
    """Return a git credential-store file for the user's git token, or None without one."""
    if not identity.git_token:
        return None
    user = quote(identity.username, safe="")
    token = quote(identity.git_token, safe="")
    return "".join(f"https://{user}:{token}@{host}\n" for host in hosts)


def encode_data(data: Mapping[str, str]) -> dict[str, str]:
    """Secret ``data``: each value base64-encoded."""
    return {key: base64.b64encode(value.encode()).decode("ascii") for key, value in data.items()}


def build_lab_secret(
    *,
    name: str,
    labels: Mapping[str, str],
    identity: Identity,
    api_token: str,
    extra_values: Mapping[str, str],
    nss_files: Mapping[str, str],
    settings: SecretSettings,
    files: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return the lab's Secret: API token, git credentials, extra secrets, NSS and static files.

    ``files`` are the static files' keys and contents
    (:func:`lsst_spawner.lab.files.file_data`).

    ``extra_values`` maps each :class:`ExtraSecret` key without a ``ref`` to its
    value; a missing one is an error (the lab would start without it and fail later, obscurely).
    ``nss_files`` holds ``passwd`` and ``group``.
    """
    if not api_token:
        raise LabSpecError("the hub API token for the lab is empty")
    if set(nss_files) != set(NSS_KEYS):
        raise LabSpecError(f"the NSS files must be exactly {', '.join(NSS_KEYS)}")
    data = {API_TOKEN_KEY: api_token}
    credentials = build_git_credentials(identity, settings.git_credential_hosts)
    if credentials is not None:
        data[GIT_CREDENTIALS_KEY] = credentials
    for extra in settings.extra:
        if extra.key in RESERVED_SECRET_KEYS or extra.key.startswith(RESERVED_KEY_PREFIXES):
            raise LabSpecError(f"LSSTSpawner.lab_extra_secrets: key {extra.key!r} is reserved")
        if extra.ref is not None:
            continue  # the kubelet reads it from the site's Secret
        value = extra_values.get(extra.key)
        if not value:
            raise LabSpecError(
                f"LSSTSpawner.lab_extra_secrets: no value for secret {extra.key!r} "
                "(is its hub environment variable set?)"
            )
        data[extra.key] = value
    data.update(nss_files)
    data.update(files or {})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": dict(labels)},
        "type": "Opaque",
        "immutable": True,
        "data": encode_data(data),
    }


def _from_secret(env: str, secret_name: str, key: str) -> dict[str, Any]:
    return {"name": env, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}


def build_secret_env(
    secret_name: str, *, has_git_token: bool, settings: SecretSettings
) -> list[dict[str, Any]]:
    """Return env entries that read secrets from the Secret, never the values themselves.

    The API token comes by ``secretKeyRef``; git is pointed at the mounted
    credential-store file through ``GIT_CONFIG_COUNT`` / ``GIT_CONFIG_KEY_0`` /
    ``GIT_CONFIG_VALUE_0`` (``credential.helper=store --file=...``).
    """
    env = [_from_secret(name, secret_name, API_TOKEN_KEY) for name in API_TOKEN_ENV]
    if has_git_token:
        path = f"{settings.directory}/{GIT_CREDENTIALS_KEY}"
        env += [
            {"name": "GIT_CONFIG_COUNT", "value": "1"},
            {"name": "GIT_CONFIG_KEY_0", "value": "credential.helper"},
            {"name": "GIT_CONFIG_VALUE_0", "value": f"store --file={path}"},
        ]
    for extra in settings.extra:
        if extra.env and extra.ref is not None:
            env.append(_from_secret(extra.env, extra.ref.name, extra.ref.key))
        elif extra.env:
            env.append(_from_secret(extra.env, secret_name, extra.key))
    return env


def _items(keys: Iterable[str]) -> list[dict[str, str]]:
    return [{"key": key, "path": key} for key in keys]


def build_secret_volume(
    secret_name: str, keys: Iterable[str], extra: Iterable[ExtraSecret] = ()
) -> dict[str, Any]:
    """Return the ``lab-secrets`` volume: the secret files, readable by the user.

    The lab Secret's ``keys`` that are secret files (not the NSS files, the
    static files or env values: ``items`` lists them), and the site secrets
    given by reference, named by their ``key``. With references it is a
    projected volume of the lab's Secret and the site's Secrets.
    """
    # 0444: the lab runs as the user, not root, and the pod is the user's alone.
    files = [
        key for key in keys if key not in NSS_KEYS and not key.startswith(RESERVED_KEY_PREFIXES)
    ]
    refs: dict[str, list[dict[str, str]]] = {}
    for secret in extra:
        if secret.ref is not None:
            refs.setdefault(secret.ref.name, []).append({"key": secret.ref.key, "path": secret.key})
    if not refs:
        return {
            "name": "lab-secrets",
            "secret": {"secretName": secret_name, "defaultMode": 0o444, "items": _items(files)},
        }
    sources = [{"secret": {"name": secret_name, "items": _items(files)}}]
    sources += [{"secret": {"name": name, "items": items}} for name, items in refs.items()]
    return {"name": "lab-secrets", "projected": {"defaultMode": 0o444, "sources": sources}}


def build_nss_volume(secret_name: str) -> dict[str, Any]:
    """Return the ``lab-nss`` volume: ``passwd`` and ``group`` from the Secret, world-readable."""
    return {
        "name": "lab-nss",
        "secret": {"secretName": secret_name, "defaultMode": 0o444, "items": _items(NSS_KEYS)},
    }


def _strings(obj: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(obj, str):
        yield path, obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from _strings(value, f"{path}.{key}")
    elif isinstance(obj, list | tuple):
        for index, value in enumerate(obj):
            yield from _strings(value, f"{path}[{index}]")


def find_literal_secrets(
    obj: Any, secrets: Mapping[str, str], *, as_json: str | None = None
) -> list[str]:
    """Return ``"<path>: <secret name>"`` for each string in ``obj`` containing a secret value.

    ``as_json`` is ``json.dumps(obj)`` when the caller has it. The search runs on
    that text first (JSON escapes each character on its own, so a value inside a
    string is inside its escaped form too); only when it finds something are the
    strings walked one by one, to name where, and to drop matches that are not
    in a string value (a key, or text across two values).
    """
    searched = {k: v for k, v in secrets.items() if v and len(v) >= _MIN_SEARCHED_LENGTH}
    if not searched:
        return []
    if as_json is None:
        try:
            as_json = json.dumps(obj, default=_plain)
        except (TypeError, ValueError):
            as_json = None
    if as_json is not None and not any(
        json.dumps(value)[1:-1] in as_json for value in searched.values()
    ):
        return []
    found = []
    for path, text in _strings(obj, "$"):
        for name, value in searched.items():
            if value in text:
                found.append(f"{path}: {name}")
    return found


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"not JSON: {type(obj).__name__}")
