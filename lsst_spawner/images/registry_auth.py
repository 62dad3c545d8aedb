"""Authentication pieces of the registry client: credentials, challenges, realms, tokens.

Nothing here does network I/O. :mod:`lsst_spawner.images.registry` combines these
into the anonymous / Basic / Bearer flows. The rules that keep credentials safe
live here so they can be read (and tested) in one place:

* credentials come from a Docker config JSON file and are looked up by registry host;
* a token realm named by a ``WWW-Authenticate`` challenge is contacted only when its
  host is the registry's own host, a known pair (Docker Hub's ``auth.docker.io``),
  or a host the operator allow-listed, and only over https unless the operator listed
  the host as insecure;
* ``repr`` of every object holding a secret hides the secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .registry_links import UnsafeURLError, checked_url
from .sources import ImageSourceError

__all__ = [
    "DOCKER_HUB_API_HOST",
    "BearerToken",
    "Challenge",
    "ChallengeParseError",
    "CredentialsFileError",
    "RealmPolicy",
    "RegistryAuthError",
    "RegistryCredentials",
    "TokenCache",
    "credentials_for_host",
    "load_docker_config",
    "normalize_registry_host",
    "parse_www_authenticate",
]

#: The API host of Docker Hub (``docker.io`` images are served from here).
DOCKER_HUB_API_HOST = "registry-1.docker.io"

#: Host names that all mean Docker Hub, in registry references and Docker config keys.
_DOCKER_HUB_ALIASES = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)

#: Known registry → token realm pairs beyond "the registry's own host".
#: ``*`` in a registry pattern matches one or more DNS labels.
_KNOWN_REALMS: tuple[tuple[str, str], ...] = ((DOCKER_HUB_API_HOST, "auth.docker.io"),)


class RegistryAuthError(ImageSourceError):
    """Authentication with the registry failed or was refused for safety."""


class CredentialsFileError(RegistryAuthError):
    """The Docker config JSON file cannot be used; the message never quotes secrets."""


class ChallengeParseError(RegistryAuthError):
    """A ``WWW-Authenticate`` header does not follow RFC 7235."""


# --- credentials -------------------------------------------------------------


@dataclass(frozen=True)
class RegistryCredentials:
    """A user name and password (or access token) for one registry."""

    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"RegistryCredentials(username={self.username!r}, password=<hidden>)"

    def basic_header(self) -> str:
        """The ``Authorization`` header value for HTTP Basic."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def normalize_registry_host(value: str) -> str:
    """Reduce a registry reference or Docker config key to ``host[:port]``, lower case.

    ``https://index.docker.io/v1/``, ``docker.io`` and ``registry-1.docker.io`` all
    become ``docker.io``; a scheme and path are dropped.
    """
    text = value.strip()
    if "://" in text:
        text = urlsplit(text).netloc
    text = text.split("/", 1)[0].lower().rstrip(".")
    host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    if host in _DOCKER_HUB_ALIASES and port in ("", "443"):
        return "docker.io"
    return text


def _decode_entry(key: str, entry: object) -> RegistryCredentials | None:
    if not isinstance(entry, Mapping):
        raise CredentialsFileError(f"entry for {key!r} is not an object")
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsFileError(
                f"'auth' of {key!r} is not base64 of 'user:password'"
            ) from None
        username, sep, password = decoded.partition(":")
        if not sep or not username:
            raise CredentialsFileError(f"'auth' of {key!r} does not decode to 'user:password'")
        return RegistryCredentials(username, password)
    user = entry.get("username")
    secret = entry.get("password")
    if isinstance(user, str) and user and isinstance(secret, str):
        return RegistryCredentials(user, secret)
    if user is not None or secret is not None:
        raise CredentialsFileError(f"entry for {key!r} needs both 'username' and 'password'")
    # identitytoken / registrytoken only entries: not supported, treated as absent.
    return None


def load_docker_config(path: str | Path) -> dict[str, RegistryCredentials]:
    """Read a Docker config JSON file into ``{normalized host: credentials}``.

    Accepts the ``.dockerconfigjson`` format of a Kubernetes pull secret
    (``{"auths": {host: {"auth": base64("user:pass")}}}`` or ``username`` and
    ``password`` fields) and the older flat ``.dockercfg`` format. Credential
    helpers (``credsStore``, ``credHelpers``) and identity tokens are ignored.
    """
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise CredentialsFileError(
            f"cannot read registry credentials file {str(file)!r}: {error.strerror}"
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise CredentialsFileError(
            f"registry credentials file {str(file)!r} is not valid JSON"
        ) from None
    if not isinstance(data, dict):
        raise CredentialsFileError(f"registry credentials file {str(file)!r} is not a JSON object")
    auths = data.get("auths", data if "auths" not in data and "credsStore" not in data else {})
    if not isinstance(auths, dict):
        raise CredentialsFileError(f"'auths' in {str(file)!r} is not an object")
    result: dict[str, RegistryCredentials] = {}
    for key, entry in auths.items():
        try:
            credentials = _decode_entry(key, entry)
        except CredentialsFileError as error:
            raise CredentialsFileError(f"{str(file)!r}: {error}") from None
        if credentials is not None:
            result[normalize_registry_host(key)] = credentials
    return result


def credentials_for_host(
    credentials: Mapping[str, RegistryCredentials], registry_host: str
) -> RegistryCredentials | None:
    """The credentials whose key names ``registry_host`` (after normalization)."""
    return credentials.get(normalize_registry_host(registry_host))


# --- WWW-Authenticate ----------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header (scheme and names lower case)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*(?=[ \t]*(?:,|$))")
_WS = " \t"


def _skip(text: str, pos: int, chars: str) -> int:
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """Parse a quoted-string starting at the opening quote; return (value, end)."""
    out: list[str] = []
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            if pos + 1 >= len(text):
                break
            out.append(text[pos + 1])
            pos += 2
        elif char == '"':
            return "".join(out), pos + 1
        else:
            out.append(char)
            pos += 1
    raise ChallengeParseError("unterminated quoted string in WWW-Authenticate")


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value into its challenges (RFC 7235 grammar).

    Quoted values may contain commas and backslash-escaped quotes
    (``scope="repository:a/b:pull,push"``); a header may carry several
    challenges (``Basic realm="x", Bearer realm="y"``). A repeated parameter
    in one challenge is an error, so a hostile header cannot smuggle a second
    ``realm`` past a check.
    """
    challenges: list[Challenge] = []
    pos = 0
    length = len(header)
    while True:
        pos = _skip(header, pos, _WS + ",")
        if pos >= length:
            break
        match = _TOKEN.match(header, pos)
        if not match:
            raise ChallengeParseError(f"expected an auth scheme at offset {pos}")
        scheme = match.group().lower()
        pos = match.end()
        params: dict[str, str] = {}
        token68: str | None = None
        after = _skip(header, pos, _WS)
        if after > pos and after < length and header[after] != ",":
            m68 = _TOKEN68.match(header, after)
            if m68:
                # The lookahead only accepts token68 followed by "," or the end,
                # so "name=value" and 'name="value"' never match here.
                token68 = m68.group()
                pos = m68.end()
            if token68 is None:
                pos = after
                while pos < length:
                    name_match = _TOKEN.match(header, pos)
                    if not name_match:
                        raise ChallengeParseError(f"expected a parameter name at offset {pos}")
                    equals = _skip(header, name_match.end(), _WS)
                    if equals >= length or header[equals] != "=":
                        # Not "name=": the start of the next challenge.
                        pos = name_match.start()
                        break
                    value_pos = _skip(header, equals + 1, _WS)
                    if value_pos < length and header[value_pos] == '"':
                        value, pos = _quoted(header, value_pos)
                    else:
                        value_match = _TOKEN.match(header, value_pos)
                        if not value_match:
                            raise ChallengeParseError(
                                f"expected a parameter value at offset {value_pos}"
                            )
                        value, pos = value_match.group(), value_match.end()
                    name = name_match.group().lower()
                    if name in params:
                        raise ChallengeParseError(f"parameter {name!r} repeated in one challenge")
                    params[name] = value
                    pos = _skip(header, pos, _WS)
                    if pos >= length:
                        break
                    if header[pos] != ",":
                        raise ChallengeParseError(f"expected ',' at offset {pos}")
                    pos = _skip(header, pos, _WS + ",")
        challenges.append(Challenge(scheme, params, token68))
    return challenges


# --- realms ------------------------------------------------------------------


def _host_port(scheme: str, netloc_host: str, port: int | None) -> str:
    host = netloc_host.lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return host if port in (None, default) else f"{host}:{port}"


def _pattern_matches(pattern: str, host_port: str) -> bool:
    pattern = pattern.strip().lower().rstrip(".")
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host_port.endswith(suffix) and len(host_port) > len(suffix) and ":" not in host_port
    return pattern == host_port


@dataclass(frozen=True)
class RealmPolicy:
    """Which hosts may receive credentials and which may be reached over plain http.

    ``registry_host`` is the registry's ``host[:port]``. ``realm_allowlist`` holds
    extra realm hosts: ``host``, ``host:port`` or ``*.domain``. ``insecure_hosts``
    lists ``host[:port]`` values reachable over http (meant for loopback tests).
    """

    registry_host: str
    realm_allowlist: tuple[str, ...] = ()
    insecure_hosts: tuple[str, ...] = ()

    def is_insecure(self, host_port: str) -> bool:
        """Whether ``host_port`` was explicitly listed as reachable over http."""
        return any(h.strip().lower() == host_port for h in self.insecure_hosts)

    def registry_scheme(self) -> str:
        """``http`` for a listed insecure registry, ``https`` otherwise."""
        return "http" if self.is_insecure(self.registry_host.lower()) else "https"

    def realm_host_allowed(self, host_port: str) -> bool:
        """Whether a token realm on ``host_port`` may receive this registry's credentials."""
        registry = self.registry_host.lower()
        if host_port == registry:
            return True
        for registry_pattern, realm in _KNOWN_REALMS:
            if _pattern_matches(registry_pattern, registry) and host_port == realm:
                return True
        return any(_pattern_matches(p, host_port) for p in self.realm_allowlist)

    def check_realm(self, realm: str) -> str:
        """Return the realm URL if it may be contacted; raise :class:`RegistryAuthError` if not.

        The error names the realm's scheme and host only (its query could carry
        anything the registry chose to put there).
        """
        if not realm:
            raise RegistryAuthError(
                f"registry {self.registry_host} named a token realm that is not an http(s) URL; "
                "refusing to contact it"
            )
        try:
            parts = checked_url(realm, "token realm")
        except UnsafeURLError as error:
            raise RegistryAuthError(
                f"registry {self.registry_host}: {error}; refusing to contact it"
            ) from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise RegistryAuthError(
                f"registry {self.registry_host} named a token realm that is not an http(s) URL; "
                "refusing to contact it"
            )
        port = parts.port
        host_port = _host_port(scheme, parts.hostname, port)
        where = f"{scheme}://{host_port}"
        if parts.username is not None or parts.password is not None:
            raise RegistryAuthError(
                f"registry {self.registry_host} named a token realm with user info ({where}); "
                "refusing to contact it"
            )
        if not self.realm_host_allowed(host_port):
            raise RegistryAuthError(
                f"registry {self.registry_host} named token realm {where}, which is not "
                "the registry's own host, a known pair or in the realm allowlist; nothing was "
                "sent to it (add the host to the realm allowlist if it is trusted)"
            )
        if scheme == "http" and not self.is_insecure(host_port):
            raise RegistryAuthError(
                f"registry {self.registry_host} named token realm {where} over plain http; "
                "only https is used unless the host is listed as insecure"
            )
        return realm


# --- tokens ------------------------------------------------------------------

#: Lifetime assumed when a token response has no ``expires_in`` (the spec's default).
DEFAULT_TOKEN_LIFETIME = 60.0
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class BearerToken:
    """A Bearer token and the monotonic time after which it is not used."""

    token: str = field(repr=False)
    expires_at: float

    def __repr__(self) -> str:
        return f"BearerToken(token=<hidden>, expires_at={self.expires_at!r})"

    @classmethod
    def from_response(cls, payload: object, now: float) -> BearerToken:
        """Build a token from a token endpoint's JSON reply (``token`` or ``access_token``)."""
        if not isinstance(payload, dict):
            raise RegistryAuthError("token endpoint reply is not a JSON object")
        token = payload.get("token") or payload.get("access_token")
        if not isinstance(token, str) or not _TOKEN_CHARS.fullmatch(token):
            raise RegistryAuthError("token endpoint reply has no usable token")
        lifetime = payload.get("expires_in", DEFAULT_TOKEN_LIFETIME)
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        lifetime = min(float(lifetime), 86400.0)
        # Renew a little early so a token does not expire between check and use.
        margin = min(10.0, lifetime / 10)
        return cls(token, now + lifetime - margin)


TokenKey = tuple[str, str, str]


class TokenCache:
    """Bearer tokens keyed by (realm, service, scope), dropped once expired."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._tokens: dict[TokenKey, BearerToken] = {}

    def __repr__(self) -> str:
        return f"TokenCache({len(self._tokens)} token(s))"

    def get(self, key: TokenKey) -> BearerToken | None:
        """The cached token for ``key`` if it has not expired."""
        token = self._tokens.get(key)
        if token is not None and token.expires_at <= self.clock():
            del self._tokens[key]
            return None
        return token

    def put(self, key: TokenKey, token: BearerToken) -> None:
        """Remember ``token`` for ``key``."""
        self._tokens[key] = token

    def discard(self, key: TokenKey) -> None:
        """Forget the token for ``key`` (the registry refused it)."""
        self._tokens.pop(key, None)

    def cached_keys(self) -> list[TokenKey]:
        """The keys currently cached (for tests and diagnostics)."""
        return list(self._tokens)
