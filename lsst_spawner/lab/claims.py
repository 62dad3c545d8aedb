"""A user's home claim and namespace: the traits, their checks and the pure builders.

The home claim is a PersistentVolumeClaim per *user* (shared by the user's
named servers), created on the first spawn from a template (storage class,
size, access modes) and never deleted by lsst_spawner: it holds the user's
files. The site mounts it like any claim, through ``lab_volumes``
(``persistentVolumeClaim.claimName`` with the same template). The namespace
per user is KubeSpawner's (``enable_user_namespaces``,
``user_namespace_template``, ``user_namespace_labels``,
``user_namespace_annotations``), created here before the lab's first object.
The I/O is :mod:`lsst_spawner.kube.claims`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from traitlets import Bool, List, Unicode

from ..config import CheckedConfigurable, ConfigProblem
from .errors import LabSpecError
from .names import DNS_LABEL_PATTERN, LAB_PART_OF, expand_template, label_value, template_fields
from .sizes import parse_memory

__all__ = [
    "ACCESS_MODES",
    "HomeClaimSettings",
    "HomeClaimTraits",
    "build_home_claim",
    "build_user_namespace",
    "home_claim_problems",
]

#: The access modes of a PersistentVolumeClaim (core/v1 PersistentVolumeAccessMode).
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
#: ``app.kubernetes.io/component`` of a home claim (the leftover sweep never selects it).
HOME_COMPONENT = "home"


@dataclass(frozen=True)
class HomeClaimSettings:
    """How the home claim is made; ``enabled`` False means lsst_spawner creates none."""

    enabled: bool = False
    name_template: str = "home-{username}"
    storage_class: str = ""
    size: str = "10Gi"
    access_modes: tuple[str, ...] = ("ReadWriteOnce",)


def home_claim_name(settings: HomeClaimSettings, username: str) -> str:
    """The claim's name for ``username``; :class:`LabSpecError` naming the trait if invalid."""
    where = "LSSTSpawner.lab_home_claim_name_template"
    name = expand_template(settings.name_template, template_fields(username), where=where)
    if not DNS_LABEL_PATTERN.fullmatch(name):
        raise LabSpecError(
            f"{where}: {settings.name_template!r} gives {name!r} for user {username!r}, which is "
            "not a DNS label (at most 63 lowercase letters, digits, '-')"
        )
    return name


def build_home_claim(settings: HomeClaimSettings, username: str) -> dict[str, Any]:
    """The home PersistentVolumeClaim of ``username`` (wire format, no namespace)."""
    spec: dict[str, Any] = {
        "accessModes": list(settings.access_modes),
        "resources": {"requests": {"storage": settings.size}},
    }
    if settings.storage_class:
        spec["storageClassName"] = settings.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": home_claim_name(settings, username),
            "labels": {
                "app.kubernetes.io/part-of": LAB_PART_OF,
                "app.kubernetes.io/component": HOME_COMPONENT,
                "lsst-spawner/user": label_value(username),
            },
            "annotations": {"hub.jupyter.org/username": username},
        },
        "spec": spec,
    }


def build_user_namespace(
    name: str, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> dict[str, Any]:
    """A user's Namespace (wire format), with the site's labels and annotations."""
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {**labels, "app.kubernetes.io/part-of": LAB_PART_OF},
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def home_claim_problems(settings: HomeClaimSettings, where: Any) -> list[ConfigProblem]:
    """Every problem of the home claim traits; ``where(trait)`` names a trait."""
    problems: list[ConfigProblem] = []
    template = settings.name_template
    if "{username}" not in template:
        problems.append(
            ConfigProblem(
                where("lab_home_claim_name_template"),
                f"{template!r} must contain {{username}}: one claim per user",
            )
        )
    else:
        for sample in ("a", "first.last", "x" * 64, "Mixed_Case-User"):
            try:
                home_claim_name(settings, sample)
            except LabSpecError as error:
                message = str(error).split(": ", 1)[1]
                problems.append(ConfigProblem(where("lab_home_claim_name_template"), message))
                break
    storage_class = settings.storage_class
    if storage_class and (
        len(storage_class) > 253
        or not all(DNS_LABEL_PATTERN.fullmatch(part) for part in storage_class.split("."))
    ):
        problems.append(
            ConfigProblem(
                where("lab_home_claim_storage_class"),
                f"{storage_class!r} is not a storage class name (a DNS subdomain)",
            )
        )
    try:
        if parse_memory(settings.size) <= 0:
            raise LabSpecError("must be more than 0")
    except (LabSpecError, ValueError) as error:
        problems.append(
            ConfigProblem(
                where("lab_home_claim_size"),
                f"{settings.size!r} is not a storage size such as '10Gi': {error}",
            )
        )
    if not settings.access_modes:
        problems.append(ConfigProblem(where("lab_home_claim_access_modes"), "must not be empty"))
    for mode in settings.access_modes:
        if mode not in ACCESS_MODES:
            problems.append(
                ConfigProblem(
                    where("lab_home_claim_access_modes"),
                    f"{mode!r} is not one of {', '.join(ACCESS_MODES)}",
                )
            )
    return problems


class HomeClaimTraits(CheckedConfigurable):
    """The home claim traits of ``LSSTSpawner`` (see the module's docstring)."""

    lab_home_claim_enabled = Bool(
        False,
        config=True,
        help="Create each user's home PersistentVolumeClaim on their first spawn (kept on stop, "
        "never deleted by lsst_spawner); mount it through lab_volumes.",
    )
    lab_home_claim_name_template = Unicode(
        "home-{username}",
        config=True,
        help="Name of the home claim; {username} is the escaped username (one claim per user, "
        "shared by the user's named servers).",
    )
    lab_home_claim_storage_class = Unicode(
        "",
        config=True,
        help="storageClassName of the home claim; empty leaves it to the cluster's default class.",
    )
    lab_home_claim_size = Unicode(
        "10Gi", config=True, help="Storage the home claim requests, such as '10Gi'."
    )
    lab_home_claim_access_modes = List(
        Unicode(),
        default_value=["ReadWriteOnce"],
        config=True,
        help="Access modes of the home claim; ReadWriteMany lets several servers of one user "
        "mount it on different nodes.",
    )

    def home_claim_settings(self) -> HomeClaimSettings:
        """The frozen home claim settings (check them with :meth:`config_problems`)."""
        return HomeClaimSettings(
            enabled=self.lab_home_claim_enabled,
            name_template=self.lab_home_claim_name_template,
            storage_class=self.lab_home_claim_storage_class,
            size=self.lab_home_claim_size,
            access_modes=tuple(self.lab_home_claim_access_modes),
        )

    def config_problems(self) -> list[ConfigProblem]:
        problems = super().config_problems()
        return problems + home_claim_problems(self.home_claim_settings(), self.trait_where)
