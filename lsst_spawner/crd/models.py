"""Pydantic models of the custom resources: ``LabServer`` and ``LabTemplate``.

The CRDs (:mod:`lsst_spawner.crd.schema`) are generated from these models and the
operator reads every resource through them, so the schema the API server checks and
the rules the operator applies cannot drift apart. Sites may import them to write
controllers of their own.

A ``LabServer`` holds what the hub knows about one server and nothing secret: the
API token and the git token are in the Secret ``spec.secretRef`` names, which the
hub creates. A ``LabTemplate`` is the site's lab configuration as a Kubernetes
object (see :mod:`lsst_spawner.crd.template`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "API_VERSION",
    "GROUP",
    "MAX_STATUS_EVENTS",
    "VERSION",
    "Condition",
    "HubConnection",
    "IdentitySpec",
    "LabGroup",
    "LabServer",
    "LabServerOptions",
    "LabServerSpec",
    "LabServerStatus",
    "LabTemplate",
    "LabTemplateMenu",
    "LabTemplateSpec",
    "ObjectRef",
    "Phase",
    "ProgressEvent",
    "UserRef",
]

#: The API group the project owns, and the version of its resources.
GROUP = "lab.lsst-spawner.io"
VERSION = "v1alpha1"
API_VERSION: Final = "lab.lsst-spawner.io/v1alpha1"
#: Most progress events kept in a LabServer's status (oldest dropped first).
MAX_STATUS_EVENTS = 50

#: A DNS-1123 subdomain: the names of Secrets, templates and namespaces.
_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"

Phase = Literal["Pending", "Rejected", "Creating", "Starting", "Running", "Failed", "Terminating"]


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ObjectRef(_Model):
    """A reference to an object by name; ``namespace``, when given, must be the resource's own."""

    name: str = Field(pattern=_NAME, max_length=253, description="The object's name.")
    namespace: str | None = Field(
        default=None,
        pattern=_NAME,
        max_length=63,
        description="Must be the referring resource's namespace; the operator rejects others.",
    )


class UserRef(_Model):
    """The JupyterHub user and server name."""

    name: str = Field(min_length=1, max_length=255, description="The JupyterHub user name.")
    server: str = Field(
        default="", max_length=255, description="The named server's name; empty for the default."
    )


class LabGroup(_Model):
    """One POSIX group of the user."""

    name: str = Field(max_length=32)
    gid: int


class IdentitySpec(_Model):
    """The user's non-secret POSIX identity; the operator applies the identity rules to it."""

    username: str = Field(max_length=64, description="The POSIX user name.")
    uid: int
    gid: int | None = Field(default=None, description="The primary gid; required by the rules.")
    groups: list[LabGroup] = Field(default_factory=list, max_length=4096)
    name: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=254)


class LabServerOptions(_Model):
    """The user's choices besides the image and the size."""

    enable_debug: bool = False
    reset_user_env: bool = False


class HubConnection(_Model):
    """How the lab reaches the hub: JupyterHub's ``JUPYTERHUB_*`` variables for this server."""

    env: dict[str, str] = Field(
        default_factory=dict,
        description="JUPYTERHUB_* variables (never the API token, which is in the Secret).",
    )


class LabServerSpec(_Model):
    """What the hub asks for: one server of one user."""

    user: UserRef
    template_ref: ObjectRef = Field(description="The LabTemplate (site configuration) to use.")
    image: str = Field(max_length=512, description="The image, as the menu offers it.")
    size: str = Field(max_length=63, description="A size the template offers.")
    options: LabServerOptions = Field(default_factory=LabServerOptions)
    identity: IdentitySpec
    hub: HubConnection = Field(default_factory=HubConnection)
    secret_ref: ObjectRef = Field(
        description="The Secret the hub created with the API token (and the git token)."
    )


class ProgressEvent(_Model):
    """One step of the spawn, as the hub relays it to the progress page."""

    timestamp: datetime
    severity: Literal["info", "warning", "error"] = "info"
    progress: int = Field(default=0, ge=0, le=100)
    message: str = Field(max_length=1024)


class Condition(_Model):
    """A Kubernetes-style condition (``Accepted``, ``PodReady``)."""

    type: str = Field(max_length=63)
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(default="", max_length=128)
    message: str = Field(default="", max_length=1024)
    last_transition_time: datetime | None = None
    observed_generation: int | None = None


class LabServerStatus(_Model):
    """What the operator found and did; the hub's ``poll`` and ``progress`` read it."""

    phase: Phase = "Pending"
    message: str = Field(default="", max_length=1024)
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    events: list[ProgressEvent] = Field(default_factory=list, max_length=MAX_STATUS_EVENTS)
    pod_name: str | None = None
    pod_address: str | None = Field(default=None, description="The pod's IP address.")
    observed_generation: int | None = None


class LabServer(_Model):
    """One lab server of one user, declared by the hub (or anyone allowed to)."""

    kind_name: ClassVar[str] = "LabServer"
    plural: ClassVar[str] = "labservers"
    short_names: ClassVar[tuple[str, ...]] = ("lab", "labs")

    api_version: Literal["lab.lsst-spawner.io/v1alpha1"] = "lab.lsst-spawner.io/v1alpha1"
    kind: Literal["LabServer"] = "LabServer"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: LabServerSpec
    status: LabServerStatus | None = None


class LabTemplateMenu(_Model):
    """The admin-edited lab menu (``c.LabMenu``) the operator polices with; its database URL,
    which may hold a password, is not here but in the operator's environment (a Secret)."""

    node_groups: list[dict[str, Any]] = Field(
        default_factory=list,
        description="LabMenu.node_groups: the infrastructure admins' node groups, by name.",
    )
    revision_check_interval: float = Field(
        default=1.0,
        ge=0,
        le=5,
        description="LabMenu.revision_check_interval: how often the current revision is read.",
    )


class LabTemplateSpec(_Model):
    """The site's lab configuration (see :mod:`lsst_spawner.crd.template`)."""

    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="LSSTSpawner traits of the lab, image menu and Kubernetes areas, by name.",
    )
    pod_template: dict[str, Any] = Field(
        default_factory=dict,
        description="KubeSpawner's pod with {variables}: the only pod fields a lab gets.",
    )
    lab_menu: LabTemplateMenu | None = Field(
        default=None,
        description="Set when the site offers the admin-edited lab menu (LabMenu.enabled).",
    )


class LabTemplate(_Model):
    """The lab configuration a LabServer refers to; written by the site's administrators."""

    kind_name: ClassVar[str] = "LabTemplate"
    plural: ClassVar[str] = "labtemplates"
    short_names: ClassVar[tuple[str, ...]] = ("labtmpl",)

    api_version: Literal["lab.lsst-spawner.io/v1alpha1"] = "lab.lsst-spawner.io/v1alpha1"
    kind: Literal["LabTemplate"] = "LabTemplate"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: LabTemplateSpec


def now() -> datetime:
    """The current time, in UTC, to the second (as Kubernetes writes times)."""
    return datetime.now(UTC).replace(microsecond=0)
