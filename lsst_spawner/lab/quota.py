"""Size quotas: which lab sizes (or lab menu profiles) a user may pick, by group table or hook.

The decision (:func:`allowed_sizes`) is pure: the table, the user's group names and
the catalog's size names in, the allowed names out. :class:`SizeQuotaTraits`
declares the traits and applies the decision to the options catalog, the one object
both the form and the validation of user options read, so the form shows exactly
the sizes the API accepts. With ``LabMenu.enabled`` the catalog's sizes are the
menu's profiles this user's groups see, and the same table and hook apply to them;
the operator polices a LabServer through the same :meth:`SizeQuotaTraits.quota_catalog`.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from traitlets import Callable, Dict, List, Unicode

from ..auth.groups import group_name_problem
from ..config import CheckedConfigurable, ConfigProblem
from ..identity import Identity, IdentityError

__all__ = ["EVERYONE", "SizeQuotaTraits", "allowed_sizes", "quota_table_problems"]

CatalogT = TypeVar("CatalogT")

#: Key of the quota table whose sizes every user may pick.
EVERYONE = "*"


def allowed_sizes(
    table: Mapping[str, Collection[str]], groups: Collection[str], sizes: Sequence[str]
) -> tuple[str, ...]:
    """The sizes (in configured order) that the user's groups, or ``"*"``, allow.

    An empty table allows every size.
    """
    if not table:
        return tuple(sizes)
    allowed: set[str] = set(table.get(EVERYONE, ()))
    for group in groups:
        allowed.update(table.get(group, ()))
    return tuple(size for size in sizes if size in allowed)


def quota_table_problems(
    table: Mapping[Any, Any], sizes: Collection[str] | None, where: str
) -> list[ConfigProblem]:
    """Problems of a quota table: keys are group names or ``"*"``, values lists of sizes.

    ``sizes`` ``None``: the names are not known at config time (the lab menu's profiles).
    """
    problems = []
    for key, value in table.items():
        here = f"{where}[{key!r}]"
        if key != EVERYONE and (why := group_name_problem(key)):
            problems.append(ConfigProblem(here, why))
        if not isinstance(value, list | tuple) or not value:
            problems.append(ConfigProblem(here, "must be a non-empty list of lab size names"))
            continue
        for name in value:
            if not isinstance(name, str) or not name:
                problems.append(ConfigProblem(here, f"{name!r} is not a size or profile name"))
            elif sizes is not None and name not in sizes:
                problems.append(
                    ConfigProblem(
                        here, f"{name!r} is not one of the lab_sizes ({', '.join(sizes)})"
                    )
                )
    return problems


class SizeQuotaTraits(CheckedConfigurable):
    """The quota traits of ``LSSTSpawner`` and their application to the options catalog."""

    lab_size_quota = Dict(
        value_trait=List(Unicode()),
        config=True,
        help="Sizes (lab_sizes, or the lab menu's profiles with LabMenu.enabled) each group may "
        "pick: {group: [names]}, '*' for everyone; a user gets those of all their groups, and "
        "a name no entry lists is allowed to nobody. Empty (the default) allows everything.",
    )
    lab_size_quota_hook = Callable(
        None,
        allow_none=True,
        config=True,
        help="A callable (spawner, identity, size_names) returning the size names the user may "
        "pick, possibly async; combined with lab_size_quota, a size must pass both.",
    )

    def config_problems(self) -> list[ConfigProblem]:
        problems = super().config_problems()
        raw_sizes = getattr(self, "lab_sizes", None) or []
        sizes = [str(s.get("name")) for s in raw_sizes if isinstance(s, Mapping)]
        problems += quota_table_problems(
            self.lab_size_quota,
            None if self.quota_names_profiles() else sizes,
            self.trait_where("lab_size_quota"),
        )
        return problems

    def quota_names_profiles(self) -> bool:
        """Whether the quota names the lab menu's profiles (``LabMenu.enabled``), which menu
        admins change while the hub runs, rather than ``lab_sizes``."""
        from ..menu.hub import lab_menu_settings

        return bool(lab_menu_settings(self).enabled)

    def quota_group_problems(self, known: Collection[str]) -> list[ConfigProblem]:
        """Quota table keys naming a group outside ``known``, the groups known at config time."""
        return [
            ConfigProblem(
                self.trait_where(f"lab_size_quota[{key!r}]"),
                f"{key!r} is not among the authenticator's known_groups: no user can be in it",
            )
            for key in sorted(self.lab_size_quota)
            if key != EVERYONE and key not in known
        ]

    async def quota_sizes(self, identity: Identity, sizes: Sequence[str]) -> tuple[str, ...]:
        """The size names ``identity`` may pick, by the table and then the hook."""
        allowed = allowed_sizes(self.lab_size_quota, {g.name for g in identity.groups}, sizes)
        hook = self.lab_size_quota_hook
        if hook is not None:
            result = hook(self, identity, allowed)
            if inspect.isawaitable(result):
                result = await result
            if isinstance(result, str) or not isinstance(result, Iterable):
                raise TypeError(
                    f"lab_size_quota_hook must return size names, not {type(result).__name__}"
                )
            chosen = {str(name) for name in result}
            allowed = tuple(size for size in allowed if size in chosen)
        return allowed

    def quota_configured(self) -> bool:
        """Whether a quota table or hook is set (without one, nothing is read or filtered)."""
        return bool(self.lab_size_quota) or self.lab_size_quota_hook is not None

    async def quota_catalog(self, catalog: CatalogT, identity: Identity) -> CatalogT | None:
        """``catalog`` with only the sizes ``identity`` may pick; ``None`` when it may pick none.

        ``catalog`` is an options catalog (lab does not import form) of configured sizes or
        of the lab menu's profiles: the table and the hook name either, and the rule is
        the catalog's own (``OptionsCatalog.within_quota``), so the in-hub form, the
        validation of user options and the operator's policing apply the same one.
        """
        if not self.quota_configured():
            return catalog
        options: Any = catalog
        allowed = await self.quota_sizes(identity, options.size_names())
        if not allowed:
            return None
        return cast(CatalogT, options.within_quota(allowed))

    async def apply_size_quota(self, catalog: CatalogT) -> CatalogT:
        """``catalog`` with only the sizes (or menu profiles) this spawner's user may pick.

        No quota configured: the catalog as it is, without reading auth_state. A
        user allowed no size is refused (403) with the reason.
        """
        if not self.quota_configured():
            return catalog
        from tornado.web import HTTPError

        user: Any = getattr(self, "user", None)
        name = getattr(user, "name", "?")
        try:
            identity = Identity.from_auth_state(await user.get_auth_state())
        except IdentityError as error:
            raise HTTPError(403, f"Cannot start a lab for {name}: {error}") from None
        restricted = await self.quota_catalog(catalog, identity)
        if restricted is None:
            raise HTTPError(
                403, f"Cannot start a lab for {name}: your groups allow none of the lab sizes"
            )
        return restricted
