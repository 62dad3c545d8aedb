"""URLs the registry client follows or reports: ``Link`` pagination and origins.

A registry paginates tag lists with ``Link: <url>; rel="next"`` headers
(RFC 8288). :func:`next_link` finds that URL; :func:`same_origin` tells
whether it stays on the registry (same scheme, host and port, no user info),
which is what makes it safe to send the registry's credentials to it.
:func:`safe_url` writes a URL for messages and logs without its user info or
query.

Everything here takes what a registry sent, so it is built not to be slow or
to raise anything but :class:`UnsafeURLError`: the ``Link`` scanner is linear in
the header's length (it never rescans: an unclosed ``<`` ends the scan), reads
at most :data:`MAX_LINK_VALUES` link-values and :data:`MAX_LINK_BYTES` of
headers, and :func:`checked_url` refuses URLs that are not printable ASCII
(such as a fullwidth solidus, U+FF0F, in a host, which makes ``urlsplit`` raise) with a
message instead of a bare ``ValueError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import SplitResult, urljoin, urlsplit

__all__ = [
    "MAX_LINK_BYTES",
    "MAX_LINK_VALUES",
    "UnsafeURLError",
    "checked_url",
    "next_link",
    "safe_url",
    "same_origin",
]

#: The most link-values read from a reply's Link headers (a registry sends one).
MAX_LINK_VALUES = 64
#: The most bytes of Link headers read from one reply.
MAX_LINK_BYTES = 64 * 1024
#: The longest URL accepted from a registry.
MAX_URL_LENGTH = 8192

# One link-param after a ";": a token name, optionally "=" and a token or quoted string.
# Anchored at a position and free of nested repetition, so a failed match costs at most
# the length of the text it looked at, which the scanner then skips.
_PARAM = re.compile(
    r'[ \t]*;[ \t]*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)[ \t]*(?:=[ \t]*("(?:[^"\\]|\\.)*"|[^;,\s"]*))?'
)
_SEPARATOR = re.compile(r"[ \t]*(,|$)")
_URL_CHARS = re.compile(r"[\x21-\x7e]+")


class UnsafeURLError(ValueError):
    """A URL from a registry that is malformed or not printable ASCII; says which."""


def checked_url(url: str, what: str = "URL") -> SplitResult:
    """Split ``url``, or raise :class:`UnsafeURLError` if it is not a usable URL.

    Refused: anything but printable ASCII (spaces, controls, fullwidth or other
    non-ASCII characters), URLs over :data:`MAX_URL_LENGTH`, and what
    ``urlsplit`` rejects or cannot give a port for.
    """
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURLError(f"the {what} is longer than {MAX_URL_LENGTH} characters")
    if not _URL_CHARS.fullmatch(url):
        raise UnsafeURLError(f"the {what} is not a URL of printable ASCII characters")
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise UnsafeURLError(f"the {what} is malformed ({error})") from None
    try:
        _ = parts.port
    except ValueError:
        raise UnsafeURLError(f"the {what} has an invalid port") from None
    return parts


def _link_values(header: str) -> Iterable[tuple[str, dict[str, str]]]:
    """The ``(target, params)`` of each link-value, in order; stops at the first malformed one."""
    position = 0
    length = len(header)
    while position < length:
        start = header.find("<", position)
        if start < 0:
            return
        end = header.find(">", start + 1)
        if end < 0:
            return  # an unclosed "<": nothing after it can be a complete link-value
        target = header[start + 1 : end]
        params: dict[str, str] = {}
        position = end + 1
        while match := _PARAM.match(header, position):
            name, value = match.group(1).lower(), match.group(2) or ""
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params.setdefault(name, value)
            position = match.end()
        separator = _SEPARATOR.match(header, position)
        if separator is None:
            return  # malformed: stop rather than guess where the next value starts
        yield target, params
        position = separator.end()


def next_link(headers: Iterable[str], current: str) -> str | None:
    """The first ``rel="next"`` target in the ``Link`` header values, resolved against ``current``.

    ``rel`` may list several space-separated relation types; parameter names and
    relation types are compared case-insensitively. Raises
    :class:`UnsafeURLError` when the headers are over the limits or the target
    is not a usable URL.
    """
    total = 0
    seen = 0
    for header in headers:
        total += len(header)
        if total > MAX_LINK_BYTES:
            raise UnsafeURLError(f"the Link headers are longer than {MAX_LINK_BYTES} bytes")
        for target, params in _link_values(header):
            seen += 1
            if seen > MAX_LINK_VALUES:
                raise UnsafeURLError(f"the Link headers hold more than {MAX_LINK_VALUES} links")
            if "next" in params.get("rel", "").lower().split():
                checked_url(target.strip(), "pagination link")
                resolved = urljoin(current, target.strip())
                checked_url(resolved, "pagination link")
                return resolved
    return None


def _port(scheme: str, port: int | None) -> int:
    return port or (443 if scheme == "https" else 80)


def same_origin(url: str, base_url: str) -> bool:
    """Whether ``url`` has the scheme, host and port of ``base_url``, and no user info."""
    try:
        parts = checked_url(url)
        base = checked_url(base_url)
    except UnsafeURLError:
        return False
    return (
        parts.scheme == base.scheme
        and (parts.hostname or "") == (base.hostname or "")
        and _port(parts.scheme, parts.port) == _port(base.scheme, base.port)
        and parts.username is None
        and parts.password is None
    )


def safe_url(url: str) -> str:
    """``scheme://host[:port]/path`` without user info or query; never raises."""
    try:
        parts = checked_url(url)
    except UnsafeURLError:
        return "<a malformed URL>"
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
