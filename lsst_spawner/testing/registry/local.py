"""A real registry for tests and sites: Debian's ``docker-registry`` on loopback.

:class:`LocalRegistry` starts ``/usr/bin/docker-registry serve CONFIG`` (CNCF
distribution 2.8) on 127.0.0.1 with a free port and a storage directory,
optionally with Bearer token auth backed by :class:`TokenServer`, which issues
RS256 JWTs whose ``x5c`` header carries a self-signed certificate listed in the
registry's ``auth.token.rootcertbundle``. :func:`push_tags` pushes tiny images
over the HTTP API: a config blob, one layer and a Docker v2 manifest per tag.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp

from ..loopback import LoopbackServer
from ..recording_server import LocalHTTPServer, RecordedRequest, Reply

__all__ = [
    "REGISTRY_BINARY_ENV",
    "LocalRegistry",
    "RegistryUnavailableError",
    "TokenServer",
    "find_registry_binary",
    "push_alias",
    "push_tags",
]

#: Environment variable overriding the registry binary's path.
REGISTRY_BINARY_ENV = "LSST_SPAWNER_REGISTRY_BINARY"
_DEFAULT_BINARY = "/usr/bin/docker-registry"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


class RegistryUnavailableError(RuntimeError):
    """The registry binary is missing or the registry did not start."""


def find_registry_binary() -> str:
    """Path of the ``docker-registry`` binary; raise with install advice if missing."""
    candidate = os.environ.get(REGISTRY_BINARY_ENV) or _DEFAULT_BINARY
    if Path(candidate).is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("docker-registry")
    if found:
        return found
    raise RegistryUnavailableError(
        f"the registry binary {candidate} is missing: install it with "
        f"'apt-get install -y docker-registry' or set {REGISTRY_BINARY_ENV}"
    )


# --- token server ------------------------------------------------------------


class TokenServer:
    """A Docker token server on loopback issuing RS256 JWTs for a registry.

    ``users`` maps user names to passwords; a request with valid Basic
    credentials gets the ``pull`` actions it asks for, an anonymous request gets
    them only when ``allow_anonymous``. Every request is recorded in
    :attr:`requests`. :meth:`mint` makes a token directly (used to push).
    """

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        allow_anonymous: bool = False,
        service: str = "test-registry",
        issuer: str = "test-token-server",
        expires_in: int = 300,
    ) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.users = dict(users or {})
        self.allow_anonymous = allow_anonymous
        self.service = service
        self.issuer = issuer
        self.expires_in = expires_in
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
        der = certificate.public_bytes(serialization.Encoding.DER)
        self._x5c = [base64.b64encode(der).decode("ascii")]
        self._key_pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.server = LocalHTTPServer(self._handle)

    @property
    def realm(self) -> str:
        return f"{self.server.url}/token"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.server.requests

    def mint(self, access: Iterable[tuple[str, str, Iterable[str]]], subject: str = "") -> str:
        """A signed token granting ``access`` as ``(type, name, actions)`` triples."""
        import jwt

        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": [
                {"type": kind, "name": name, "actions": list(actions)}
                for kind, name, actions in access
            ],
        }
        return jwt.encode(claims, self._key_pem, algorithm="RS256", headers={"x5c": self._x5c})

    def _user(self, request: RecordedRequest) -> str | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if self.users.get(user) == password and user else None

    def _handle(self, request: RecordedRequest) -> Reply:
        if request.path != "/token":
            return Reply(404)
        user = self._user(request)
        if user is None and (not self.allow_anonymous or "authorization" in request.headers):
            return Reply(401, {"Content-Type": "application/json"}, b'{"details":"denied"}')
        access = []
        for scope in request.query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = [a for a in actions.split(",") if a == "pull"]
            access.append((kind, name, granted))
        token = self.mint(access, subject=user or "")
        body = json.dumps(
            {
                "token": token,
                "access_token": token,
                "expires_in": self.expires_in,
                "issued_at": datetime.datetime.now(datetime.UTC).isoformat(),
            }
        ).encode()
        return Reply(200, {"Content-Type": "application/json"}, body)

    def close(self) -> None:
        self.server.close()


# --- the registry ------------------------------------------------------------


class LocalRegistry(LoopbackServer):
    """``docker-registry serve`` on 127.0.0.1 with a free port.

    ``storage`` is reused when given (to keep a big fixture between runs),
    otherwise a temporary directory is made and removed on :meth:`stop`.
    ``token_server`` turns on Bearer auth; ``realm`` overrides the realm URL the
    registry names in its challenges (to point it at a hostile server).
    """

    def __init__(
        self,
        storage: str | Path | None = None,
        *,
        token_server: TokenServer | None = None,
        realm: str | None = None,
        start_timeout: float = 15.0,
    ) -> None:
        super().__init__()
        self.binary = find_registry_binary()
        self._workdir = Path(tempfile.mkdtemp(prefix="lsst-registry-"))
        self.storage = Path(storage) if storage else self._workdir / "storage"
        self.storage.mkdir(parents=True, exist_ok=True)
        self.token_server = token_server
        self.realm = realm
        self.start_timeout = start_timeout
        self.reserve_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self._workdir / "registry.log"

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
            },
            "http": {"addr": self.host_port, "secret": secrets.token_hex(16)},
        }
        if self.token_server is not None:
            bundle = self._workdir / "rootcerts.pem"
            bundle.write_bytes(self.token_server.certificate_pem)
            config["auth"] = {
                "token": {
                    "realm": self.realm or self.token_server.realm,
                    "service": self.token_server.service,
                    "issuer": self.token_server.issuer,
                    "rootcertbundle": str(bundle),
                }
            }
        return config

    def _serve(self) -> None:
        config_path = self._workdir / "config.yml"
        config_path.write_text(json.dumps(self._config()), encoding="utf-8")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [self.binary, "serve", str(config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RegistryUnavailableError(
                    f"docker-registry exited with {self.process.returncode}: {self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=1):  # noqa: S310 - http URL we built
                    return
            except urllib.error.HTTPError as error:
                if error.code == 401:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self._close()
        raise RegistryUnavailableError(
            f"docker-registry did not answer within {self.start_timeout}s: {self._log_tail()}"
        )

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def push_authorization(self, repository: str) -> str | None:
        """An ``Authorization`` value allowed to push to ``repository``, if auth is on."""
        if self.token_server is None:
            return None
        token = self.token_server.mint([("repository", repository, ["pull", "push"])])
        return f"Bearer {token}"

    def push(self, repository: str, tags: Iterable[str], **kwargs: Any) -> dict[str, str]:
        """Push ``tags`` (see :func:`push_tags`); return ``{tag: digest}``."""
        return asyncio.run(
            push_tags(
                self.url,
                repository,
                list(tags),
                authorization=self.push_authorization(repository),
                **kwargs,
            )
        )

    def alias(self, repository: str, alias: str, target: str) -> str:
        """Point tag ``alias`` at the manifest of ``target``; return its digest."""
        return asyncio.run(
            push_alias(self.url, repository, alias, target, self.push_authorization(repository))
        )

    def _close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self._workdir, ignore_errors=True)


# --- pushing over the HTTP API -------------------------------------------------


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _put_blob(
    session: aiohttp.ClientSession, url: str, repository: str, data: bytes, headers: dict[str, str]
) -> None:
    digest = _digest(data)
    async with session.post(f"{url}/v2/{repository}/blobs/uploads/", headers=headers) as response:
        if response.status != 202:
            raise RuntimeError(f"starting upload: HTTP {response.status}")
        location = response.headers["Location"]
    location = location if "://" in location else url + location
    separator = "&" if "?" in location else "?"
    put_headers = {**headers, "Content-Type": "application/octet-stream"}
    async with session.put(
        f"{location}{separator}digest={digest}", data=data, headers=put_headers
    ) as response:
        if response.status != 201:
            raise RuntimeError(f"finishing upload: HTTP {response.status}")


async def _put_manifest(
    session: aiohttp.ClientSession,
    url: str,
    repository: str,
    tag: str,
    *,
    config: bytes,
    layer: bytes,
    layer_type: str,
    headers: dict[str, str],
) -> str:
    """Push a Docker v2 manifest of ``config`` and one ``layer`` (both pushed already) as
    ``tag``; return the manifest's digest."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": _digest(config),
            },
            "layers": [{"mediaType": layer_type, "size": len(layer), "digest": _digest(layer)}],
        }
    ).encode()
    async with session.put(
        f"{url}/v2/{repository}/manifests/{tag}",
        data=manifest,
        headers={**headers, "Content-Type": DOCKER_MANIFEST},
    ) as response:
        if response.status != 201:
            raise RuntimeError(f"pushing {repository}:{tag}: HTTP {response.status}")
    return _digest(manifest)


async def push_tags(
    url: str,
    repository: str,
    tags: list[str],
    *,
    authorization: str | None = None,
    distinct: bool = True,
    concurrency: int = 8,
) -> dict[str, str]:
    """Push a tiny image under each of ``tags``; return ``{tag: manifest digest}``.

    With ``distinct`` every tag gets its own config blob (so its own digest);
    otherwise all tags share one manifest, which is much faster for big fixtures.
    """
    headers = {"Authorization": authorization} if authorization else {}
    layer = b"lsst-spawner test layer\n"
    digests: dict[str, str] = {}
    limit = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:
        await _put_blob(session, url, repository, layer, headers)
        shared_config = b'{"architecture":"amd64","os":"linux","config":{}}'
        if not distinct:
            await _put_blob(session, url, repository, shared_config, headers)

        async def one(tag: str) -> None:
            async with limit:
                config = shared_config
                if distinct:
                    config = json.dumps(
                        {"architecture": "amd64", "os": "linux", "config": {"Labels": {"t": tag}}}
                    ).encode()
                    await _put_blob(session, url, repository, config, headers)
                digests[tag] = await _put_manifest(
                    session,
                    url,
                    repository,
                    tag,
                    config=config,
                    layer=layer,
                    layer_type="application/vnd.docker.image.rootfs.diff.tar.gzip",
                    headers=headers,
                )

        await asyncio.gather(*(one(tag) for tag in tags))
    return digests


async def push_alias(
    url: str, repository: str, alias: str, target: str, authorization: str | None = None
) -> str:
    """Tag the manifest of ``target`` as ``alias`` too; return the shared digest."""
    headers = {"Authorization": authorization} if authorization else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{url}/v2/{repository}/manifests/{target}",
            headers={**headers, "Accept": DOCKER_MANIFEST},
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"reading {target}: HTTP {response.status}")
            manifest = await response.read()
        async with session.put(
            f"{url}/v2/{repository}/manifests/{alias}",
            data=manifest,
            headers={**headers, "Content-Type": DOCKER_MANIFEST},
        ) as response:
            if response.status != 201:
                raise RuntimeError(f"pushing alias {alias}: HTTP {response.status}")
    return _digest(manifest)
