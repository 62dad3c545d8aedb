"""The options catalog: what user options are validated against and the form offers.

One catalog per menu (and, with the lab menu, per set of the user's groups); the
form renders it and :func:`lsst_spawner.form.options.parse_user_options` validates
against it, so a user can be offered only what is accepted, and the reverse.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace

from ..images.model import ImageMenu
from ..lab.sizes import LabProfile

__all__ = ["OptionsCatalog", "RetiredImage", "SizeChoice"]


@dataclass(frozen=True)
class SizeChoice:
    """A lab size as the form shows it; the sizes themselves are configured elsewhere."""

    name: str
    #: Text shown in the form, such as ``"Medium (2 CPU, 8 GiB)"``; the name when empty.
    display: str = ""
    #: A menu profile's limits, guarantees and node group; ``None`` for a configured size.
    profile: LabProfile | None = None

    @property
    def label(self) -> str:
        return self.display or self.name


@dataclass(frozen=True)
class RetiredImage:
    """An image the lab menu no longer offers (hidden or deprecated) and where its users go."""

    #: The image saved options naming it are given instead (a redirect target or the default).
    target: str
    #: ``"deprecated"`` or ``"no longer offered"``, said to the user.
    reason: str


@dataclass(frozen=True)
class OptionsCatalog:
    """Everything user options are validated against: the menu and the sizes."""

    menu: ImageMenu
    sizes: tuple[SizeChoice, ...]
    default_size: str
    #: Sizes (or lab menu profiles) this user's quota does not allow: not offered, and
    #: refused with that reason (:meth:`within_quota`).
    over_quota: tuple[str, ...] = ()
    #: Images of the lab menu that saved options may still name, by tag.
    retired: Mapping[str, RetiredImage] = field(default_factory=dict)
    #: The lab menu revision the catalog was made from; ``None`` for the traitlets menu.
    revision: int | None = None

    def __post_init__(self) -> None:
        names = [size.name for size in self.sizes]
        if not names:
            raise ValueError("at least one lab size must be configured")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate lab size names in {names}")
        if self.default_size not in names:
            raise ValueError(f"default size {self.default_size!r} is not one of {names}")

    def size_names(self) -> tuple[str, ...]:
        return tuple(size.name for size in self.sizes)

    def profile(self, name: str) -> LabProfile | None:
        """The menu profile of size ``name``; ``None`` for a configured size."""
        return next((size.profile for size in self.sizes if size.name == name), None)

    def within_quota(self, allowed: Collection[str]) -> OptionsCatalog:
        """This catalog with only the sizes (configured or lab menu profiles) in ``allowed``.

        The quota rule, in one place for the form, the validation of user options and
        the operator's policing: the others become :attr:`over_quota` (not offered,
        refused naming the quota); the default becomes the first allowed size when it
        is not allowed. ``ValueError`` when no size is allowed.
        """
        names = self.size_names()
        kept = tuple(size for size in self.sizes if size.name in allowed)
        if not kept:
            raise ValueError(f"the quota allows none of the sizes {', '.join(names)}")
        if len(kept) == len(names):
            return self
        default = self.default_size if self.default_size in allowed else kept[0].name
        over = tuple(name for name in names if name not in allowed)
        return replace(self, sizes=kept, default_size=default, over_quota=over)
