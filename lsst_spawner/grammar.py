"""The syntax of image tags, digests, repositories and image references: the only copy.

The menu, the registry client, the configuration checks and the validation of
user options all ask these functions, so a value one of them accepts the others
accept too (a menu image held by a ``sha512:`` digest can be pinned through the
REST API). The grammar follows the OCI distribution specification and Docker's
reference grammar::

    tag         [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest      sha256:[0-9a-f]{64} | sha512:[0-9a-f]{128}
    repository  path components [a-z0-9]+ joined by . _ __ or dashes, separated by /
    host        DNS name or [IPv6] literal, optional :port
    reference   [host/]repository[:tag][@digest]

What a tag *means* (release, weekly, ...) is :mod:`lsst_spawner.images.tags`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DIGEST_ALGORITHMS",
    "MAX_REFERENCE_LENGTH",
    "MAX_REPOSITORY_LENGTH",
    "MAX_TAG_LENGTH",
    "TAG_SYNTAX",
    "ImageReference",
    "ReferenceSyntaxError",
    "is_digest_tag",
    "is_valid_digest",
    "is_valid_host",
    "is_valid_host_pattern",
    "is_valid_image_name",
    "is_valid_repository",
    "is_valid_tag",
    "parse_image_reference",
]

#: The longest tag the distribution specification allows.
MAX_TAG_LENGTH = 128
#: The longest repository name (Docker's limit for the whole name).
MAX_REPOSITORY_LENGTH = 255
#: No image reference is longer than this (a full reference with a sha512 digest fits).
MAX_REFERENCE_LENGTH = 512
#: The digest algorithms accepted, with their number of hex digits.
DIGEST_ALGORITHMS = {"sha256": 64, "sha512": 128}
#: The tag syntax, for messages.
TAG_SYNTAX = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_TAG_CHARS = re.compile(r"[A-Za-z0-9_.-]+")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
#: Tags that are signatures or attestations named after a digest (cosign style).
_DIGEST_TAG = re.compile(r"sha(?:256|512)-[0-9a-f]{32,128}(?:\.[A-Za-z0-9]+)?")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = rf"(?:{_LABEL}\.)*{_LABEL}"
_HOST = re.compile(rf"{_DNS_NAME}(?::\d{{1,5}})?|\[[0-9a-f:.]+\](?::\d{{1,5}})?")
_HOST_PATTERN = re.compile(rf"(?:\*\.)?{_DNS_NAME}(?::\d{{1,5}})?")
_REFERENCE_CHARS = re.compile(r"[A-Za-z0-9_.:/@\[\]-]+")


def is_valid_tag(tag: object) -> bool:
    """Whether ``tag`` is a string with Docker tag syntax (:data:`TAG_SYNTAX`)."""
    return isinstance(tag, str) and _TAG.fullmatch(tag) is not None


def is_valid_digest(digest: object) -> bool:
    """Whether ``digest`` is ``sha256:`` and 64, or ``sha512:`` and 128, lower-case hex digits."""
    return isinstance(digest, str) and _DIGEST.fullmatch(digest) is not None


def is_digest_tag(tag: str) -> bool:
    """Whether ``tag`` names a digest (``sha256-<hex>.sig``): a signature, not an image."""
    return _DIGEST_TAG.fullmatch(tag) is not None


def is_valid_repository(repository: object) -> bool:
    """Whether ``repository`` follows the distribution repository-name grammar."""
    return (
        isinstance(repository, str)
        and len(repository) <= MAX_REPOSITORY_LENGTH
        and _REPOSITORY.fullmatch(repository) is not None
    )


def is_valid_host(host: object) -> bool:
    """Whether ``host`` is a lower-case ``host[:port]`` (a DNS name or ``[IPv6]``)."""
    return isinstance(host, str) and _HOST.fullmatch(host) is not None


def is_valid_image_name(name: object) -> bool:
    """Whether ``name`` is ``[host/]repository`` (no tag, no digest), Docker's way.

    The first component is a host when it has a ``.`` or a ``:`` or is
    ``localhost``, as in Docker's reference grammar.
    """
    if not isinstance(name, str):
        return False
    head, slash, rest = name.partition("/")
    if slash and ("." in head or ":" in head or head == "localhost"):
        return is_valid_host(head) and is_valid_repository(rest)
    return is_valid_repository(name)


def is_valid_host_pattern(pattern: object) -> bool:
    """Whether ``pattern`` is a lower-case DNS ``host[:port]`` or ``*.domain`` (allow-lists)."""
    return isinstance(pattern, str) and _HOST_PATTERN.fullmatch(pattern) is not None


class ReferenceSyntaxError(ValueError):
    """An image reference that does not follow the grammar; the message says which part."""


@dataclass(frozen=True, slots=True)
class ImageReference:
    """An image reference split into its parts; ``name`` is empty for a bare ``tag@digest``."""

    #: ``[host/]repository``, or ``""`` when the reference is a bare tag or digest.
    name: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text = f"{text}:{self.tag}" if text else self.tag
        if self.digest is not None:
            text = f"{text}@{self.digest}"
        return text


def _digest_message(digest: str) -> str:
    return (
        f"the digest {digest[:80]!r} must be sha256: and 64 lowercase hex digits, "
        "or sha512: and 128"
    )


def parse_image_reference(text: str) -> ImageReference:
    """Split ``[name:]tag``, ``name[:tag]@digest`` or ``tag@digest`` into its parts.

    A value without ``/`` and without ``@`` is a bare tag (``w_2024_10``); a
    ``:`` after the last ``/`` separates the tag from the name, a ``:`` before
    it is a port. Raises :class:`ReferenceSyntaxError` naming the part that
    is wrong. The name is only checked for its characters, and a reference
    may name neither tag nor digest: which repository is acceptable, and
    whether a tag is needed, are the caller's questions.
    """
    if not text:
        raise ReferenceSyntaxError("the reference is empty")
    if len(text) > MAX_REFERENCE_LENGTH:
        raise ReferenceSyntaxError(
            f"the reference is {len(text)} characters long; at most {MAX_REFERENCE_LENGTH}"
        )
    if not _REFERENCE_CHARS.fullmatch(text):
        raise ReferenceSyntaxError("the reference contains characters no image reference has")
    body, at, digest = text.partition("@")
    if at and not is_valid_digest(digest):
        raise ReferenceSyntaxError(_digest_message(digest))
    name, tag = body, None
    if "/" in body or ":" in body:
        head, colon, tail = body.rpartition(":")
        if colon and "/" not in tail:
            name, tag = head, tail
    elif body:
        name, tag = "", body
    if tag is not None and not is_valid_tag(tag):
        if len(tag) > MAX_TAG_LENGTH and _TAG.match(tag) and _TAG_CHARS.fullmatch(tag):
            raise ReferenceSyntaxError(
                f"the tag is {len(tag)} characters long; a tag has at most {MAX_TAG_LENGTH}"
            )
        raise ReferenceSyntaxError(f"{tag[:80]!r} is not a tag ({TAG_SYNTAX})")
    return ImageReference(name=name, tag=tag, digest=digest if at else None)
