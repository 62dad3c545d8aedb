"""The per-lab Secret and the env and mounts that reach it, so the Pod holds no secret value.

The Secret also carries the lab's ``passwd`` and ``group`` files (not secret, but
they need an object, and the hub's Role may create Secrets, not ConfigMaps); they
are mounted at ``/etc/passwd`` and ``/etc/group`` only, never in the secret directory.
The plain environment is in a second Secret (:mod:`lsst_spawner.lab.env` says why).
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
    "RESERVED_SECRET_KEYS",
    "SECRET_KEY_PATTERN",
    "ExtraSecret",
    "SecretSettings",
    "build_git_credentials",
    "build_lab_secret",
    "build_nss_volume",
    "build_secret_env",
    "build_secret_volume",
    "find_literal_secrets",
]

API_TOKEN_KEY = "jupyterhub-api-token"  # noqa: S105 - a key name
GIT_CREDENTIALS_KEY = "git-credentials"
#: The NSS files' keys in the Secret (as :func:`lsst_spawner.lab.nss.build_nss_files` names them).
NSS_KEYS = ("passwd", "group")
#: Keys of the lab Secret that ``lab_extra_secrets`` may not use.
RESERVED_SECRET_KEYS = (API_TOKEN_KEY, GIT_CREDENTIALS_KEY, *NSS_KEYS)
#: Valid Secret data keys (they are also file names in the secret directory).
SECRET_KEY_PATTERN = re.compile(r"[-._a-zA-Z0-9]{1,253}")
ENV_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Env variables JupyterHub fills with the API token; in a lab they come from the Secret.
API_TOKEN_ENV = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")
#: Secret values shorter than this are not searched for in the Pod (too many false matches).
_MIN_SEARCHED_LENGTH = 8


@dataclass(frozen=True)
class ExtraSecret:
    """A site secret copied into each lab's Secret: a file, and an env variable if ``env``."""

    key: str
    env: str | None = None


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


def build_lab_secret(
    *,
    name: str,
    labels: Mapping[str, str],
    identity: Identity,
    api_token: str,
    extra_values: Mapping[str, str],
    nss_files: Mapping[str, str],
    settings: SecretSettings,
) -> dict[str, Any]:
    """Return the lab's Secret: hub API token, git credentials, the extra secrets, NSS files.

    ``extra_values`` maps each :class:`ExtraSecret` key to its value; a missing
    one is an error (the lab would start without it and fail later, obscurely).
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
        if extra.key in RESERVED_SECRET_KEYS:
            raise LabSpecError(f"LSSTSpawner.lab_extra_secrets: key {extra.key!r} is reserved")
        value = extra_values.get(extra.key)
        if not value:
            raise LabSpecError(
                f"LSSTSpawner.lab_extra_secrets: no value for secret {extra.key!r} "
                "(is its hub environment variable set?)"
            )
        data[extra.key] = value
    data.update(nss_files)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": dict(labels)},
        "type": "Opaque",
        "immutable": True,
        "data": {
            key: base64.b64encode(value.encode()).decode("ascii") for key, value in data.items()
        },
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
    env += [_from_secret(e.env, secret_name, e.key) for e in settings.extra if e.env]
    return env


def _items(keys: Iterable[str]) -> list[dict[str, str]]:
    return [{"key": key, "path": key} for key in keys]


def build_secret_volume(secret_name: str, keys: Iterable[str]) -> dict[str, Any]:
    """Return the ``lab-secrets`` volume: the Secret's ``keys`` as files, readable by the user.

    ``items`` lists the keys, so the NSS files in the same Secret are not among them.
    """
    # 0444: the lab runs as the user, not root, and the pod is the user's alone.
    files = [key for key in keys if key not in NSS_KEYS]
    return {
        "name": "lab-secrets",
        "secret": {"secretName": secret_name, "defaultMode": 0o444, "items": _items(files)},
    }


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
