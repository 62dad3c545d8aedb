"""Names and labels of a lab's Kubernetes objects."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from kubespawner.slugs import is_valid_label, multi_slug, safe_slug

from .errors import LabSpecError

__all__ = [
    "DNS_LABEL_PATTERN",
    "LAB_PART_OF",
    "MAX_SERVER_NAME_LENGTH",
    "SERVER_LABEL",
    "SERVER_NAME_RULE",
    "build_lab_labels",
    "build_object_names",
    "expand_template",
    "label_value",
    "names_for_pod",
    "names_server",
    "server_fields",
    "server_name_problem",
    "template_fields",
]

#: An RFC 1123 DNS label, the strictest name rule among the objects we create.
DNS_LABEL_PATTERN = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

#: Longest username slug in names; the same limit KubeSpawner uses for ``{username}``.
_SLUG_MAX_LENGTH = 48

#: Longest server name a lab may have (a DNS label's length; JupyterHub 6 allows 30).
MAX_SERVER_NAME_LENGTH = 63
_SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: The rule :func:`server_name_problem` applies, as operators and users read it.
SERVER_NAME_RULE = (
    f"1 to {MAX_SERVER_NAME_LENGTH} ASCII letters, digits, '.', '_' or '-', starting with a "
    "letter or digit, without '..'"
)
#: Label holding a named server's name (slugged) on its objects; absent for the default server.
SERVER_LABEL = "lsst-spawner/server"


def server_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a lab's server name, or ``None``; ``""`` is the default server.

    JupyterHub 6 refuses new server names that are not lowercase slugs of at most 30
    characters, but JupyterHub 5 takes any name, and JupyterHub 6 still starts servers
    created before it (``allow_invalid_named_server_start``). Labs take this rule in
    both, so ``/``, ``..``, control characters, Unicode and very long names never reach
    an object name, a label or a log line unchecked.
    """
    if name == "":
        return None
    shown = name if len(name) <= 40 else name[:37] + "..."
    if len(name) > MAX_SERVER_NAME_LENGTH:
        return f"{len(name)} characters is too long: use {SERVER_NAME_RULE}"
    if not _SERVER_NAME.fullmatch(name) or ".." in name:
        return f"{shown!r} is not a valid server name: use {SERVER_NAME_RULE}"
    return None


def template_fields(
    username: str, uid: int | None = None, gid: int | None = None
) -> dict[str, str]:
    """Return the fields templates may use, escaped the way KubeSpawner does it.

    ``{username}`` is KubeSpawner's ``safe`` slug (the name itself when it is
    already a DNS label, otherwise a stripped form plus a hash, so names
    differing only in case or punctuation never collide);
    ``{unescaped_username}`` is the raw name, which the identity rules keep free
    of ``/`` and leading dots; ``{uid}`` and ``{gid}`` are numbers.
    """
    fields = {
        "username": safe_slug(username, max_length=_SLUG_MAX_LENGTH),
        "unescaped_username": username,
    }
    if uid is not None:
        fields["uid"] = str(uid)
    if gid is not None:
        fields["gid"] = str(gid)
    return fields


def server_fields(username: str, servername: str) -> dict[str, str]:
    """The server fields of the pod name template, as KubeSpawner 7's ``safe`` slug scheme.

    ``{servername}`` is the server's safe slug (``""`` for the default server);
    ``{user_server}`` is ``{username}`` for the default server, otherwise
    ``{username}--{servername}``, or one slug of both with a hash when that is
    longer than 48 characters. A safe slug never holds ``--`` except in the
    ``---<hash>`` it ends with, so ``--`` tells the user from the server and
    no two (user, server) pairs share a ``{user_server}`` (a property test
    checks it, and a contract test checks these equal KubeSpawner's own fields).
    """
    user = safe_slug(username, max_length=_SLUG_MAX_LENGTH)
    server = safe_slug(servername, max_length=_SLUG_MAX_LENGTH) if servername else ""
    if not servername:
        user_server = user
    elif len(user) + len(server) + 2 > _SLUG_MAX_LENGTH:
        user_server = multi_slug([username, servername], max_length=_SLUG_MAX_LENGTH)
    else:
        user_server = f"{user}--{server}"
    return {"servername": server, "unescaped_servername": servername, "user_server": user_server}


def expand_template(template: str, fields: Mapping[str, str], *, where: str) -> str:
    """Expand ``{field}`` placeholders, naming ``where`` if a field is unknown or malformed."""
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if name not in fields or spec or conversion:
            known = ", ".join("{" + key + "}" for key in sorted(fields))
            raise LabSpecError(
                f"{where}: unknown placeholder {{{name}}} in {template!r}; use {known}"
            )
    try:
        return template.format_map(dict(fields))
    except (ValueError, IndexError) as error:
        raise LabSpecError(f"{where}: cannot expand {template!r}: {error}") from None


def names_server(template: str) -> bool:
    """Whether a pod name template tells one user's servers apart."""
    return "{servername}" in template or "{user_server}" in template


def build_object_names(
    pod_name_template: str, username: str, servername: str = ""
) -> dict[str, str]:
    """The names of the pod and its Secret (and a pre-0.1.0 lab's env Secret) of a server.

    The template must contain ``{username}`` or ``{user_server}`` (otherwise every
    user would get the same pod), and ``{servername}`` or ``{user_server}`` for a
    named server (``servername`` not empty), and expand to a DNS label of at most
    56 characters. As in KubeSpawner, a ``-`` the expansion leaves at the end (the
    default server's empty ``{servername}``) is dropped unless the template ends with one.
    The server name itself is checked elsewhere (:func:`server_name_problem`): a
    slug is made of any name, so an unchecked name never breaks building names.
    """
    where = "LSSTSpawner.lab_pod_name_template"
    if "{username}" not in pod_name_template and "{user_server}" not in pod_name_template:
        raise LabSpecError(
            f"{where}: {pod_name_template!r} must contain {{username}} or {{user_server}}"
        )
    if (
        "{servername}" in pod_name_template
        and "{user_server}" not in pod_name_template
        and "{username}--{servername}" not in pod_name_template
    ):
        raise LabSpecError(
            f"{where}: {pod_name_template!r} must join {{username}} and {{servername}} as "
            "{username}--{servername} (or use {user_server}): with another separator two "
            "(user, server) pairs can share a pod"
        )
    if servername and not names_server(pod_name_template):
        raise LabSpecError(
            f"{where}: {pod_name_template!r} must contain {{servername}} or {{user_server}} "
            f"for named servers, or every server of a user gets the same pod "
            f"(server {servername[:40]!r})"
        )
    fields = {**template_fields(username), **server_fields(username, servername)}
    pod = expand_template(pod_name_template, fields, where=where)
    if not pod_name_template.endswith("-"):
        pod = pod.rstrip("-")
    # 63 minus the longest suffix below, so the Secrets' names are labels too.
    if not DNS_LABEL_PATTERN.fullmatch(pod) or len(pod) > 63 - len("-secret"):
        server = f" and server {servername[:40]!r}" if servername else ""
        raise LabSpecError(
            f"{where}: {pod_name_template!r} gives {pod!r} for user {username!r}{server}, which "
            "is not a DNS label of at most 56 characters (lowercase letters, digits, '-'); "
            "{user_server} always fits"
        )
    return names_for_pod(pod)


def names_for_pod(pod: str) -> dict[str, str]:
    """The names of a lab's objects, derived from its pod's name.

    The spawner's saved state keeps the pod name, so a lab started before the
    name template changed is still cleaned up completely. A lab has one Secret,
    ``-secret``: its environment, secrets, NSS and static files. A lab started
    before 0.1.0 also had a ``-env`` Secret (``legacy_env_secret``), deleted with it.
    """
    return {"pod": pod, "secret": f"{pod}-secret", "legacy_env_secret": f"{pod}-env"}


def label_value(value: str) -> str:
    """Return ``value`` if it is a valid label value, else a safe slug of it."""
    if is_valid_label(value):
        return value
    return str(safe_slug(value, is_valid=is_valid_label, max_length=63))


def _image_label(image: str) -> str:
    # The tag (or digest-less name) carries the useful part; '/' and ':' are not allowed.
    reference = image.split("@", 1)[0]
    last = reference.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else last
    return label_value(tag)


#: ``app.kubernetes.io/part-of`` of every lab object (the labs' NetworkPolicy selects on it).
LAB_PART_OF = "lsst-spawner"


def build_lab_labels(
    username: str, image: str, pod_name: str, servername: str = ""
) -> dict[str, str]:
    """Return the labels every lab object gets.

    KubeSpawner's own pod labels (``component``, ``app.kubernetes.io/component``,
    ``app.kubernetes.io/name``, ``app.kubernetes.io/managed-by``) are left to
    it, because its pod reflector selects on them; these are added alongside.
    A named server's objects also carry :data:`SERVER_LABEL`. The leftover sweep
    (:mod:`lsst_spawner.kube.sweep`) finds a lab's objects by ``part-of`` and
    their pod by ``instance``.
    """
    labels = {
        "app.kubernetes.io/instance": pod_name,
        "app.kubernetes.io/part-of": LAB_PART_OF,
        "lsst-spawner/user": label_value(username),
        "lsst-spawner/image": _image_label(image),
    }
    if servername:
        labels[SERVER_LABEL] = label_value(servername)
    return labels
