"""URLs the registry client follows or reports: ``Link`` pagination and origins.

A registry paginates tag lists with ``Link: <url>; rel="next"`` headers
(RFC 8288). :func:`next_link` finds that URL; :func:`same_origin` tells
whether it stays on the registry (same scheme, host and port, no user info),
which is what makes it safe to send the registry's credentials to it.
:func:`safe_url` writes a URL for messages and logs without its user info or
query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

__all__ = ["next_link", "safe_url", "same_origin"]

#: One link-value of a Link header: ``<target>`` and its ``; name=value`` parameters.
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")


def next_link(headers: Iterable[str], current: str) -> str | None:
    """The first ``rel="next"`` target in the ``Link`` header values, resolved against ``current``.

    ``rel`` may list several space-separated relation types; parameter names and
    relation types are compared case-insensitively.
    """
    for header in headers:
        for match in _LINK.finditer(header):
            params = [p.strip() for p in match.group(2).split(";") if p.strip()]
            rels = {
                value.strip().strip('"').lower()
                for p in params
                for name, _, value in [p.partition("=")]
                if name.strip().lower() == "rel"
            }
            if any("next" in rel.split() for rel in rels):
                target: str = match.group(1)
                return urljoin(current, target.strip())
    return None


def _port(scheme: str, port: int | None) -> int:
    return port or (443 if scheme == "https" else 80)


def same_origin(url: str, base_url: str) -> bool:
    """Whether ``url`` has the scheme, host and port of ``base_url``, and no user info."""
    parts = urlsplit(url)
    base = urlsplit(base_url)
    try:
        port = _port(parts.scheme, parts.port)
    except ValueError:  # not a number, or out of range
        port = -1
    return (
        parts.scheme == base.scheme
        and (parts.hostname or "") == (base.hostname or "")
        and port == _port(base.scheme, base.port)
        and parts.username is None
        and parts.password is None
    )


def safe_url(url: str) -> str:
    """``scheme://host[:port]/path`` without user info or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
