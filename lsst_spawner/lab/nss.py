"""The lab's ``/etc/passwd`` and ``/etc/group``, built from data, one checked field at a time.

Every line is produced from parsed, validated fields and joined here, so no
value can add a line or a field: names, homes, shells and members containing
``:``, ``,``, a newline or another control character are rejected; the free
text GECOS field (the user's display name) is neutralized instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..identity import MAX_ID, Identity
from .errors import LabSpecError
from .names import expand_template, template_fields

__all__ = [
    "DEFAULT_BASE_GROUP",
    "DEFAULT_BASE_PASSWD",
    "NssGroup",
    "NssSettings",
    "NssUser",
    "build_nss_files",
    "neutralize_gecos",
    "nss_group_from_dict",
    "nss_user_from_dict",
    "parse_group",
    "parse_passwd",
]

#: Minimal base ``/etc/passwd``: root and nobody, as in Debian-derived images.
DEFAULT_BASE_PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"  # noqa: S105 - not a password
)
#: Minimal base ``/etc/group``.
DEFAULT_BASE_GROUP = "root:x:0:\nnogroup:x:65534:\n"

# System accounts in images use a wider alphabet than lab users (``Debian-exim``).
_NSS_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_GECOS_MAX = 256


@dataclass(frozen=True)
class NssUser:
    """One ``/etc/passwd`` entry."""

    name: str
    uid: int
    gid: int
    gecos: str = ""
    home: str = "/nonexistent"
    shell: str = "/usr/sbin/nologin"

    def line(self) -> str:
        fields = (self.name, "x", str(self.uid), str(self.gid), self.gecos, self.home, self.shell)
        return ":".join(fields)


@dataclass(frozen=True)
class NssGroup:
    """One ``/etc/group`` entry."""

    name: str
    gid: int
    members: tuple[str, ...] = ()

    def line(self) -> str:
        return f"{self.name}:x:{self.gid}:{','.join(self.members)}"


@dataclass(frozen=True)
class NssSettings:
    """What the site configures about the NSS files."""

    base_passwd: tuple[NssUser, ...] = field(
        default_factory=lambda: parse_passwd(DEFAULT_BASE_PASSWD)
    )
    base_group: tuple[NssGroup, ...] = field(
        default_factory=lambda: parse_group(DEFAULT_BASE_GROUP)
    )
    extra_users: tuple[NssUser, ...] = ()
    extra_groups: tuple[NssGroup, ...] = ()
    home_template: str = "/home/{unescaped_username}"
    shell: str = "/bin/bash"


def neutralize_gecos(value: str | None) -> str:
    """Return ``value`` safe for the GECOS field: no ``:``, ``,`` or control characters.

    Each such character becomes a space, runs of spaces collapse, and the
    result is cut at 256 characters.
    """
    if not value:
        return ""
    cleaned = "".join(" " if c in ":," or not c.isprintable() else c for c in value)
    return " ".join(cleaned.split())[:_GECOS_MAX]


def _check_name(where: str, value: object) -> str:
    if not isinstance(value, str) or not _NSS_NAME.fullmatch(value):
        raise LabSpecError(
            f"{where}: {value!r} is not a valid user or group name "
            "(1 to 64 of A-Z a-z 0-9 _ . -, not starting with '.' or '-')"
        )
    return value


def _check_id(where: str, value: object) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise LabSpecError(f"{where}: {value!r} is not an id in 0..{MAX_ID}")
    return value


def _check_path(where: str, value: object) -> str:
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or ":" in value
        or any(not c.isprintable() for c in value)
    ):
        raise LabSpecError(
            f"{where}: {value!r} must be an absolute path without ':' or control characters"
        )
    return value


def _check_text(where: str, value: object) -> str:
    # Site-provided GECOS may use ',' (its own sub-field separator); ':' and
    # control characters would add fields or lines.
    if not isinstance(value, str) or any(c == ":" or not c.isprintable() for c in value):
        raise LabSpecError(f"{where}: {value!r} must be text without ':' or control characters")
    return value


def _records(text: str, where: str, fields: int) -> Iterator[tuple[str, list[str]]]:
    """``(where line N, fields)`` of each line, skipping blank lines and ``#`` comments."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        here = f"{where} line {number}"
        parts = line.split(":")
        if len(parts) != fields:
            raise LabSpecError(
                f"{here}: expected {fields} ':'-separated fields, found {len(parts)}"
            )
        yield here, parts


def parse_passwd(text: str, where: str = "base passwd") -> tuple[NssUser, ...]:
    """Parse a passwd file (blank lines and ``#`` comments are dropped), checking every field."""
    users = []
    for here, (name, _, uid, gid, gecos, home, shell) in _records(text, where, 7):
        users.append(
            NssUser(
                name=_check_name(here, name),
                uid=_check_id(f"{here} uid", uid),
                gid=_check_id(f"{here} gid", gid),
                gecos=_check_text(f"{here} gecos", gecos),
                home=_check_path(f"{here} home", home),
                shell=_check_path(f"{here} shell", shell),
            )
        )
    return tuple(users)


def parse_group(text: str, where: str = "base group") -> tuple[NssGroup, ...]:
    """Parse a group file (blank lines and ``#`` comments are dropped), checking every field."""
    groups = []
    for here, (name, _, gid, members) in _records(text, where, 4):
        groups.append(
            NssGroup(
                name=_check_name(here, name),
                gid=_check_id(f"{here} gid", gid),
                members=tuple(_check_name(f"{here} member", m) for m in members.split(",") if m),
            )
        )
    return tuple(groups)


def nss_user_from_dict(data: Mapping[str, Any], where: str) -> NssUser:
    """Build an extra user from ``{name, uid, gid, gecos?, home?, shell?}``."""
    if not isinstance(data, Mapping):
        raise LabSpecError(f"{where}: must be a dict with name, uid and gid")
    unknown = set(data) - {"name", "uid", "gid", "gecos", "home", "shell"}
    if unknown:
        raise LabSpecError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("name", "uid", "gid"):
        if key not in data:
            raise LabSpecError(f"{where}: missing {key}")
    return NssUser(
        name=_check_name(f"{where}.name", data["name"]),
        uid=_check_id(f"{where}.uid", data["uid"]),
        gid=_check_id(f"{where}.gid", data["gid"]),
        gecos=_check_text(f"{where}.gecos", data.get("gecos", "")),
        home=_check_path(f"{where}.home", data.get("home", "/nonexistent")),
        shell=_check_path(f"{where}.shell", data.get("shell", "/usr/sbin/nologin")),
    )


def nss_group_from_dict(data: Mapping[str, Any], where: str) -> NssGroup:
    """Build an extra group from ``{name, gid, members?}``."""
    if not isinstance(data, Mapping):
        raise LabSpecError(f"{where}: must be a dict with name and gid")
    unknown = set(data) - {"name", "gid", "members"}
    if unknown:
        raise LabSpecError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("name", "gid"):
        if key not in data:
            raise LabSpecError(f"{where}: missing {key}")
    members = data.get("members", [])
    if isinstance(members, str) or not isinstance(members, Iterable):
        raise LabSpecError(f"{where}.members: must be a list of names")
    return NssGroup(
        name=_check_name(f"{where}.name", data["name"]),
        gid=_check_id(f"{where}.gid", data["gid"]),
        members=tuple(
            _check_name(f"{where}.members[{i}]", member) for i, member in enumerate(members)
        ),
    )


def check_unique(users: Iterable[NssUser], groups: Iterable[NssGroup]) -> list[str]:
    """Return messages for duplicate user names, user ids and group names."""
    messages = []
    seen_users: dict[str, NssUser] = {}
    seen_uids: dict[int, NssUser] = {}
    for user in users:
        if user.name in seen_users:
            messages.append(f"user {user.name!r} is defined twice")
        elif user.uid in seen_uids:
            messages.append(
                f"uid {user.uid} is used by {seen_uids[user.uid].name!r} and {user.name!r}"
            )
        seen_users.setdefault(user.name, user)
        seen_uids.setdefault(user.uid, user)
    seen_groups: set[str] = set()
    for group in groups:
        if group.name in seen_groups:
            messages.append(f"group {group.name!r} is defined twice")
        seen_groups.add(group.name)
    return messages


def build_nss_files(identity: Identity, settings: NssSettings) -> dict[str, str]:
    """Return ``{"passwd": ..., "group": ...}`` for the lab of ``identity``.

    The base entries come first, then the site's extra users and groups, then
    the user. The user is a member of each of their groups; a group of the
    identity that already exists with the same gid gains the user as a
    member, one with a different gid is an error; a group whose gid is already
    listed under another name adds the user to that line (one line per gid).
    If none of the groups has the user's primary gid, a group named after the
    user is added for it.
    """
    fields = template_fields(identity.username, identity.uid, identity.gid)
    home = _check_path(
        "LSSTSpawner.lab_home_directory",
        expand_template(settings.home_template, fields, where="LSSTSpawner.lab_home_directory"),
    )
    user = NssUser(
        name=identity.username,
        uid=identity.uid,
        gid=identity.gid,
        gecos=neutralize_gecos(identity.name),
        home=home,
        shell=settings.shell,
    )
    others = (*settings.base_passwd, *settings.extra_users)
    for other in others:
        if other.name == user.name or other.uid == user.uid:
            raise LabSpecError(
                f"username {user.name!r} or uid {user.uid} collides with the system user "
                f"{other.name!r} (uid {other.uid}) of LSSTSpawner.lab_base_passwd or "
                "LSSTSpawner.lab_extra_users"
            )
    groups: dict[str, NssGroup] = {}
    for system_group in (*settings.base_group, *settings.extra_groups):
        groups[system_group.name] = system_group
    # One line per gid: a second name for a gid already listed makes the user a member
    # of that line, not a second line with the same gid (getgrgid would see only one).
    by_gid = {g.gid: g.name for g in reversed(groups.values())}
    for index, group in enumerate(identity.groups):
        existing = groups.get(group.name)
        if existing is None and group.gid in by_gid:
            existing = groups[by_gid[group.gid]]
        if existing is None:
            groups[group.name] = NssGroup(group.name, group.gid, (identity.username,))
            by_gid[group.gid] = group.name
        elif existing.gid != group.gid:
            raise LabSpecError(
                f"groups[{index}] {group.name!r} (gid {group.gid}) collides with the system group "
                f"{existing.name!r} (gid {existing.gid})"
            )
        elif identity.username not in existing.members:
            groups[existing.name] = NssGroup(
                existing.name, existing.gid, (*existing.members, identity.username)
            )
    if all(g.gid != identity.gid for g in groups.values()) and identity.username not in groups:
        groups[identity.username] = NssGroup(identity.username, identity.gid)
    passwd = "".join(u.line() + "\n" for u in (*others, user))
    group_text = "".join(g.line() + "\n" for g in groups.values())
    return {"passwd": passwd, "group": group_text}
