"""The lab menu document: one revision of what users may pick (pydantic models, no I/O).

A :class:`MenuDocument` holds the image policy (counts per kind, pins,
aliases), curated image entries, profiles and their visibility. Node groups
(:class:`NodeGroup`) are not part of the document: infrastructure admins
define them in configuration, and a document is validated against them
(:func:`lsst_spawner.menu.validate.validate_menu`).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from ..images.menu import MenuPolicy
from ..images.tags import is_valid_tag
from ..lab.sizes import parse_cpu, parse_memory

__all__ = [
    "SCHEMA_VERSION",
    "CuratedImage",
    "ImagePolicy",
    "ImageState",
    "MenuDocument",
    "NodeGroup",
    "Profile",
]

#: The document format's version, stored with every revision.
SCHEMA_VERSION = 1

_Name = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
_Group = Annotated[str, Field(min_length=1, max_length=255)]
_Count = Annotated[int, Field(ge=0, le=1000)]
#: Fields ``ImagePolicy`` and ``MenuPolicy`` share under the same name and type.
_SHARED_POLICY_FIELDS = (
    "alias_tags",
    "releases",
    "weeklies",
    "dailies",
    "candidates",
    "experimentals",
    "pinned_tags",
    "dropdown_max_count",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _check_tag(value: str) -> str:
    if not is_valid_tag(value):
        raise ValueError(f"{value!r} is not a Docker tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})")
    return value


def _check_cpu(value: Any) -> str:
    parse_cpu(value)  # raises ValueError with the reason
    return str(value)


def _check_memory(value: Any) -> str:
    parse_memory(value)
    return str(value)


_Tag = Annotated[str, AfterValidator(_check_tag)]
_Cpu = Annotated[str, BeforeValidator(_check_cpu)]
_Memory = Annotated[str, BeforeValidator(_check_memory)]


class ImageState(StrEnum):
    """Whether users see a curated image."""

    SHOWN = "shown"
    HIDDEN = "hidden"
    #: Not offered; saved options naming it go to ``redirect_to``.
    DEPRECATED = "deprecated"


class ImagePolicy(_Strict):
    """Which registry tags the menu shows; the fields of ``ImageMenuTraits``.

    The recommended tag is not here: it is the default curated image.
    """

    alias_tags: tuple[_Tag, ...] = ()
    releases: _Count = 1
    weeklies: _Count = 2
    dailies: _Count = 3
    candidates: _Count = 0
    experimentals: _Count = 0
    pinned_tags: tuple[_Tag, ...] = ()
    dropdown_max_count: _Count = 0
    dropdown_max_age_seconds: Annotated[float, Field(ge=0)] = 0

    @field_validator("alias_tags", "pinned_tags")
    @classmethod
    def _unique(cls, tags: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(tags)) != len(tags):
            duplicate = next(t for t in tags if tags.count(t) > 1)
            raise ValueError(f"{duplicate!r} is listed twice")
        return tags

    @classmethod
    def from_menu_policy(cls, policy: MenuPolicy) -> ImagePolicy:
        """The image policy of a traitlets menu (its recommended tag aside)."""
        return cls(
            dropdown_max_age_seconds=policy.dropdown_max_age.total_seconds(),
            **{name: getattr(policy, name) for name in _SHARED_POLICY_FIELDS},
        )


class CuratedImage(_Strict):
    """An image an admin described: shown, hidden or deprecated, for everyone or some groups."""

    tag: _Tag
    #: Empty: the name the image menu computes, such as "Recommended (Weekly 2024_10)".
    display_name: Annotated[str, Field(max_length=200)] = ""
    description: Annotated[str, Field(max_length=2000)] = ""
    #: Groups that see it; empty for everyone.
    groups: tuple[_Group, ...] = ()
    state: ImageState = ImageState.SHOWN
    #: For a deprecated image: the curated image saved options go to instead.
    redirect_to: _Tag | None = None
    default: bool = False


class Profile(_Strict):
    """A machine type users may pick: limits, guarantees and the node group it runs on."""

    name: _Name
    display_name: Annotated[str, Field(max_length=200)] = ""
    description: Annotated[str, Field(max_length=2000)] = ""
    cpu_limit: _Cpu
    cpu_guarantee: _Cpu
    memory_limit: _Memory
    memory_guarantee: _Memory
    #: The node group (from configuration) the lab is scheduled on; None for no constraint.
    node_group: str | None = None
    groups: tuple[_Group, ...] = ()
    default: bool = False

    @property
    def cpu_limit_cores(self) -> float:
        return parse_cpu(self.cpu_limit)

    @property
    def cpu_guarantee_cores(self) -> float:
        return parse_cpu(self.cpu_guarantee)

    @property
    def memory_limit_bytes(self) -> int:
        return parse_memory(self.memory_limit)

    @property
    def memory_guarantee_bytes(self) -> int:
        return parse_memory(self.memory_guarantee)


class NodeGroup(_Strict):
    """Where labs of a profile run, and the most such a profile may ask; set by infra admins."""

    name: _Name
    description: str = ""
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    affinity: dict[str, Any] = Field(default_factory=dict)
    #: Extended resources each lab gets, such as {"nvidia.com/gpu": 1}.
    extended_resources: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    max_cpu: _Cpu | None = None
    max_memory: _Memory | None = None

    @field_validator("extended_resources")
    @classmethod
    def _resource_names(cls, resources: dict[str, int]) -> dict[str, int]:
        for name in resources:
            domain, _, short = name.rpartition("/")
            if not domain or "." not in domain or not short or " " in name:
                raise ValueError(
                    f"{name!r} is not an extended resource name (domain/name, "
                    "such as 'nvidia.com/gpu')"
                )
            if domain == "kubernetes.io" or domain.endswith(".kubernetes.io"):
                raise ValueError(f"{name!r}: the kubernetes.io domain is reserved")
        return resources


class MenuDocument(_Strict):
    """One revision of the menu; stored whole, as JSON, with every save."""

    schema_version: Annotated[int, Field(ge=SCHEMA_VERSION, le=SCHEMA_VERSION)] = SCHEMA_VERSION
    image_policy: ImagePolicy = ImagePolicy()
    images: tuple[CuratedImage, ...] = ()
    profiles: tuple[Profile, ...] = ()

    def default_image(self) -> CuratedImage | None:
        return next((image for image in self.images if image.default), None)

    def default_profile(self) -> Profile | None:
        return next((profile for profile in self.profiles if profile.default), None)

    def menu_policy(self) -> MenuPolicy:
        """The image menu's policy: ``ImagePolicy`` plus the default image as recommended tag."""
        default = self.default_image()
        policy = self.image_policy
        return MenuPolicy(
            recommended_tag=default.tag if default else "recommended",
            dropdown_max_age=timedelta(seconds=policy.dropdown_max_age_seconds),
            **{name: getattr(policy, name) for name in _SHARED_POLICY_FIELDS},
        )

    def to_json_data(self) -> dict[str, Any]:
        """The document as JSON-ready data (what storage and export write)."""
        return self.model_dump(mode="json")
