"""The provider-neutral identity contract between authenticators and the spawner.

An authenticator stores ``auth_state["identity"]`` as a JSON object::

    {
        "username": "rra",
        "uid": 4137,
        "gid": 4137,
        "groups": [{"name": "rra", "gid": 4137}, {"name": "lsst-sqre", "gid": 3010}],
        "name": "Russ Allbery",
        "email": "rra@example.org",
        "git_token": "gho_..."
    }

The spawner reads only this, through :meth:`Identity.from_auth_state`, so any
authenticator that fills it works with :class:`~lsst_spawner.LSSTSpawner`.

Every field is bounded (see ``docs/identity.md``): usernames and group names
have a strict grammar, the name, email and git token a maximum length, and no
field may hold a control character (NUL, ESC, DEL, newlines), a bidi control
(U+202E ...) or an invisible format character (zero-width space, joiner, BOM).
A value that could produce an extra ``/etc/passwd`` line or field, mislead a
reader, or push the lab's environment or Secret over a Kubernetes or kernel
limit is rejected, never passed through.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "AUTH_STATE_KEY",
    "EMAIL_PATTERN",
    "GIT_TOKEN_PATTERN",
    "GROUP_NAME_PATTERN",
    "MAX_EMAIL_LENGTH",
    "MAX_GIT_TOKEN_LENGTH",
    "MAX_ID",
    "MAX_NAME_LENGTH",
    "UNSAFE_CATEGORIES",
    "USERNAME_PATTERN",
    "Group",
    "Identity",
    "IdentityError",
    "IdentityPolicy",
    "clean_display_name",
    "is_valid_email",
    "unsafe_character",
]

#: Key of the identity in JupyterHub's ``auth_state``.
AUTH_STATE_KEY = "identity"

#: Usernames: lowercase letters, digits, ``_``, ``.`` and ``-``; not starting with
#: ``-`` or ``.``; at most 64 characters. Covers GitHub logins (up to 39
#: characters, digits first allowed) and typical LDAP uids.
USERNAME_PATTERN = re.compile(r"[a-z0-9_][a-z0-9_.-]{0,63}")

#: Group names: the POSIX-portable form ``[a-z_][a-z0-9_-]*``, at most 32 characters.
GROUP_NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_-]{0,31}")

#: Largest valid uid or gid: 2**32 - 2 (2**32 - 1 is ``(uid_t) -1``, "no id").
MAX_ID = 2**32 - 2

#: Email addresses accepted in an identity: one ``@``, no whitespace, ``:`` or ``,``, and
#: (checked apart) no control, bidi or invisible character; at most 254 characters.
EMAIL_PATTERN = re.compile(r"[^@\s:,]+@[^@\s:,]+")
_EMAIL_PATTERN = EMAIL_PATTERN

#: Longest email address (RFC 5321's limit on a forward path).
MAX_EMAIL_LENGTH = 254
#: Longest display name (it is cut to this in ``/etc/passwd`` and git's author name anyway).
MAX_NAME_LENGTH = 256
#: Longest git token. Provider tokens are far shorter (GitHub's are at most 255 characters).
MAX_GIT_TOKEN_LENGTH = 4096
#: Git tokens: visible ASCII only (OAuth's token characters and more), one line.
GIT_TOKEN_PATTERN = re.compile(r"[\x21-\x7e]+")

#: Unicode categories no identity field may hold: control (Cc: NUL, ESC, DEL, newlines),
#: format (Cf: bidi controls such as U+202E, zero-width characters, BOM), surrogates, and
#: line and paragraph separators.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def unsafe_character(value: str) -> str | None:
    """The first control, bidi or invisible character of ``value``, or None."""
    for character in value:
        if unicodedata.category(character) in UNSAFE_CATEGORIES:
            return character
    return None


def is_valid_email(value: object) -> bool:
    """Whether ``value`` is an email address an identity may hold (see :data:`EMAIL_PATTERN`)."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_EMAIL_LENGTH
        and unsafe_character(value) is None
        and EMAIL_PATTERN.fullmatch(value) is not None
    )


def clean_display_name(value: object) -> str | None:
    """A provider's display name made acceptable: unsafe characters become spaces, cut to 256.

    Authenticators use it so that a name with, say, a zero-width joiner still
    logs in; :class:`Identity` itself rejects such a name.
    """
    if not isinstance(value, str):
        return None
    cleaned = "".join(" " if unicodedata.category(c) in UNSAFE_CATEGORIES else c for c in value)
    return " ".join(cleaned.split())[:MAX_NAME_LENGTH] or None


def _describe(character: str) -> str:
    name = unicodedata.name(character, "")
    return f"U+{ord(character):04X}" + (f" ({name})" if name else "")


class IdentityError(ValueError):
    """An identity is missing or breaks the contract; the message names the field."""


@dataclass(frozen=True)
class Group:
    """A POSIX group the user belongs to."""

    name: str
    gid: int


@dataclass(frozen=True)
class Identity:
    """A user's POSIX identity and profile, as the spawner needs it."""

    username: str
    uid: int
    gid: int
    groups: tuple[Group, ...] = ()
    name: str | None = None
    email: str | None = None
    git_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_username(self.username)
        _check_id("uid", self.uid)
        _check_id("gid", self.gid)
        seen_names: set[str] = set()
        for index, group in enumerate(self.groups):
            if not isinstance(group, Group):
                raise IdentityError(f"groups[{index}] must be a Group, not {type(group).__name__}")
            _check_group_name(f"groups[{index}].name", group.name)
            _check_id(f"groups[{index}].gid", group.gid)
            if group.name in seen_names:
                raise IdentityError(f"groups[{index}].name: duplicate group name {group.name!r}")
            seen_names.add(group.name)
        for key in ("name", "email", "git_token"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                raise IdentityError(f"{key} must be a string or null, not {type(value).__name__}")
        _check_text("name", self.name, MAX_NAME_LENGTH)
        _check_text("email", self.email, MAX_EMAIL_LENGTH)
        if self.email is not None and not _EMAIL_PATTERN.fullmatch(self.email):
            raise IdentityError(f"email {_shown(self.email)} is not a valid address")
        if self.git_token is not None:
            # Never shown: it is a credential.
            if len(self.git_token) > MAX_GIT_TOKEN_LENGTH:
                raise IdentityError(
                    f"git_token is {len(self.git_token)} characters, more than the "
                    f"{MAX_GIT_TOKEN_LENGTH} allowed"
                )
            if not GIT_TOKEN_PATTERN.fullmatch(self.git_token):
                raise IdentityError(
                    "git_token must be visible ASCII characters on one line (no spaces)"
                )

    @property
    def supplemental_gids(self) -> list[int]:
        """The gids of the user's groups, without duplicates, in the order given."""
        return list(dict.fromkeys(group.gid for group in self.groups))

    def without_groups_below(
        self, minimum_gid: int, allowed: Collection[int] = ()
    ) -> tuple[Identity, tuple[Group, ...]]:
        """This identity without the supplementary groups whose gid is below ``minimum_gid``.

        Gids in ``allowed`` are kept, and so is the group of the primary gid
        (the primary gid itself is checked by the caller). Returns the identity
        (``self`` when nothing is dropped) and the groups dropped.
        """
        kept: list[Group] = []
        dropped: list[Group] = []
        for group in self.groups:
            low = group.gid < minimum_gid and group.gid not in allowed and group.gid != self.gid
            (dropped if low else kept).append(group)
        if not dropped:
            return self, ()
        return replace(self, groups=tuple(kept)), tuple(dropped)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Identity:
        """Build an identity from the JSON form of the contract.

        Raises :class:`IdentityError` naming the first field that is missing
        or wrong. Unknown keys are ignored so that authenticators may store
        more than the contract needs.
        """
        if not isinstance(data, Mapping):
            raise IdentityError(f"the identity must be a JSON object, not {type(data).__name__}")
        for key in ("username", "uid", "gid"):
            if data.get(key) is None:
                raise IdentityError(f"the identity has no {key}")
        raw_groups = data.get("groups") or []
        if not isinstance(raw_groups, list | tuple):
            raise IdentityError(f"groups must be a list, not {type(raw_groups).__name__}")
        groups = []
        for index, raw in enumerate(raw_groups):
            if not isinstance(raw, Mapping) or "name" not in raw or "gid" not in raw:
                raise IdentityError(f"groups[{index}] must be an object with name and gid")
            groups.append(Group(name=raw["name"], gid=raw["gid"]))
        return cls(
            username=data["username"],
            uid=data["uid"],
            gid=data["gid"],
            groups=tuple(groups),
            name=data.get("name"),
            email=data.get("email"),
            git_token=data.get("git_token"),
        )

    @classmethod
    def from_auth_state(cls, auth_state: object) -> Identity:
        """Read the identity an authenticator stored in ``auth_state``."""
        if auth_state is not None and not isinstance(auth_state, Mapping):
            raise IdentityError(
                f"auth_state must be a JSON object holding {AUTH_STATE_KEY!r}, "
                f"not {type(auth_state).__name__}"
            )
        if not auth_state or auth_state.get(AUTH_STATE_KEY) is None:
            raise IdentityError(
                f"the user has no identity: auth_state[{AUTH_STATE_KEY!r}] is missing; "
                "enable auth state (c.Authenticator.enable_auth_state = True) and use an "
                "authenticator that provides the lsst_spawner identity contract"
            )
        return cls.from_dict(auth_state[AUTH_STATE_KEY])

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form of the contract, as stored in ``auth_state``."""
        return {
            "username": self.username,
            "uid": self.uid,
            "gid": self.gid,
            "groups": [{"name": g.name, "gid": g.gid} for g in self.groups],
            "name": self.name,
            "email": self.email,
            "git_token": self.git_token,
        }


@dataclass(frozen=True)
class IdentityPolicy:
    """Site rules an identity must meet on top of the contract's syntax.

    Authenticators apply it at login and at every refresh; a spawner may apply
    it again before starting a lab. ``min_uid`` and ``min_gid`` keep system
    accounts and groups (root, ``tty``, ``docker``...) out of labs;
    ``require_gid`` says whether a provider that gives no gid is an error
    (the default) or the user gets a user-private group with gid = uid.
    """

    min_uid: int = 1000
    min_gid: int = 1000
    require_gid: bool = True
    #: Supplementary gids below ``min_gid`` that are allowed (a site's ``users`` group, 100).
    allowed_gids: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        for key in ("min_uid", "min_gid"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
                raise IdentityError(f"{key} must be an integer in 1..{MAX_ID}, not {value!r}")

    def primary_gid(self, uid: int, gid: int | None) -> int:
        """Return the primary gid to use, or raise if there is none and one is required."""
        if gid is not None:
            return gid
        if self.require_gid:
            raise IdentityError(
                "the identity provider gave no gid and a gid is required (require_gid)"
            )
        return uid

    def check(self, identity: Identity) -> None:
        """Raise :class:`IdentityError` if ``identity`` breaks this policy.

        Supplementary groups below ``min_gid`` and not in ``allowed_gids`` are an
        error here; authenticators drop them (and log it) before building the identity.
        """
        if identity.uid < self.min_uid:
            raise IdentityError(f"uid {identity.uid} is below the minimum uid {self.min_uid}")
        if identity.gid < self.min_gid:
            raise IdentityError(f"gid {identity.gid} is below the minimum gid {self.min_gid}")
        for group in identity.groups:
            if group.gid < self.min_gid and group.gid not in self.allowed_gids:
                raise IdentityError(
                    f"group {group.name!r} has gid {group.gid}, "
                    f"below the minimum gid {self.min_gid}"
                )


def _check_username(value: object) -> None:
    if not isinstance(value, str) or not USERNAME_PATTERN.fullmatch(value):
        raise IdentityError(
            f"username {value!r} is not allowed: use 1 to 64 lowercase letters, digits, "
            "'_', '.' or '-', not starting with '.' or '-'"
        )


def _check_group_name(where: str, value: object) -> None:
    if not isinstance(value, str) or not GROUP_NAME_PATTERN.fullmatch(value):
        raise IdentityError(
            f"{where} {value!r} is not a POSIX group name: use 1 to 32 characters "
            "[a-z0-9_-], starting with a letter or '_'"
        )


def _check_id(where: str, value: object) -> None:
    # bool is an int subclass; True must not become uid 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise IdentityError(f"{where} must be an integer, not {value!r}")
    if not 0 <= value <= MAX_ID:
        raise IdentityError(f"{where} {value} is out of range 0..{MAX_ID}")


def _shown(value: str) -> str:
    """``value`` for an error message: at most 80 characters, escaped."""
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _check_text(key: str, value: str | None, maximum: int) -> None:
    if value is None:
        return
    if len(value) > maximum:
        raise IdentityError(f"{key} is {len(value)} characters, more than the {maximum} allowed")
    if (bad := unsafe_character(value)) is not None:
        raise IdentityError(
            f"{key} {_shown(value)} contains {_describe(bad)}: control, bidi and invisible "
            "characters are not allowed"
        )
