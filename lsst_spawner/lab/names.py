"""Names and labels of a lab's Kubernetes objects."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from kubespawner.slugs import is_valid_label, safe_slug

from .errors import LabSpecError

__all__ = [
    "DNS_LABEL_PATTERN",
    "LAB_PART_OF",
    "build_lab_labels",
    "build_object_names",
    "expand_template",
    "label_value",
    "names_for_pod",
    "template_fields",
]

#: An RFC 1123 DNS label, the strictest name rule among the objects we create.
DNS_LABEL_PATTERN = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

#: Longest username slug in names; the same limit KubeSpawner uses for ``{username}``.
_SLUG_MAX_LENGTH = 48


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


def build_object_names(pod_name_template: str, username: str) -> dict[str, str]:
    """Return the names of the pod, its env Secret and its Secret for ``username``.

    The template must contain ``{username}`` (otherwise every user would get the
    same pod) and expand to a DNS label of at most 63 characters.
    """
    where = "LSSTSpawner.lab_pod_name_template"
    if "{username}" not in pod_name_template:
        raise LabSpecError(f"{where}: {pod_name_template!r} must contain {{username}}")
    pod = expand_template(pod_name_template, template_fields(username), where=where)
    # 63 minus the longest suffix below, so the Secrets' names are labels too.
    if not DNS_LABEL_PATTERN.fullmatch(pod) or len(pod) > 63 - len("-secret"):
        raise LabSpecError(
            f"{where}: {pod_name_template!r} gives {pod!r} for user {username!r}, which is not a "
            "DNS label of at most 56 characters (lowercase letters, digits, '-')"
        )
    return names_for_pod(pod)


def names_for_pod(pod: str) -> dict[str, str]:
    """The names of a lab's objects, derived from its pod's name.

    The spawner's saved state keeps the pod name, so a lab started before the
    name template changed is still cleaned up completely. The ``-env`` Secret holds
    the lab's plain environment, the ``-secret`` Secret its secrets and NSS files.
    (Before 0.1.0 the environment was a ``-env`` ConfigMap.)
    """
    return {"pod": pod, "env_secret": f"{pod}-env", "secret": f"{pod}-secret"}


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


def build_lab_labels(username: str, image: str, pod_name: str) -> dict[str, str]:
    """Return the labels every lab object gets.

    KubeSpawner's own pod labels (``component``, ``app.kubernetes.io/component``,
    ``app.kubernetes.io/name``, ``app.kubernetes.io/managed-by``) are left to
    it, because its pod reflector selects on them; these are added alongside.
    """
    return {
        "app.kubernetes.io/instance": pod_name,
        "app.kubernetes.io/part-of": LAB_PART_OF,
        "lsst-spawner/user": label_value(username),
        "lsst-spawner/image": _image_label(image),
    }
