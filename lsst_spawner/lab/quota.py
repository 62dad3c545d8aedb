"""Size quotas: which lab sizes a user may pick, by group table or by a site hook.

The decision (:func:`allowed_sizes`) is pure: the table, the user's group names and
the configured sizes in, the allowed size names out. :class:`SizeQuotaTraits`
declares the traits and applies the decision to the options catalog, the one object
both the form and the validation of user options read, so the form shows exactly
the sizes the API accepts.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
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
    table: Mapping[Any, Any], sizes: Collection[str], where: str
) -> list[ConfigProblem]:
    """Problems of a quota table: keys are group names or ``"*"``, values lists of sizes."""
    problems = []
    for key, value in table.items():
        here = f"{where}[{key!r}]"
        if key != EVERYONE and (why := group_name_problem(key)):
            problems.append(ConfigProblem(here, why))
        if not isinstance(value, list | tuple) or not value:
            problems.append(ConfigProblem(here, "must be a non-empty list of lab size names"))
            continue
        for name in value:
            if name not in sizes:
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
        help="Sizes each group may pick: {group: [size names]}, '*' for everyone; a user gets "
        "the sizes of all their groups. Empty (the default) allows every size to everyone.",
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
            self.lab_size_quota, sizes, self.trait_where("lab_size_quota")
        )
        return problems

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

    async def apply_size_quota(self, catalog: CatalogT) -> CatalogT:
        """``catalog`` with only the sizes this spawner's user may pick.

        No quota configured: the catalog as it is, without reading auth_state.
        The default size becomes the first allowed one when the site default is
        not allowed. A user allowed no size is refused (403) with the reason.
        """
        if not self.lab_size_quota and self.lab_size_quota_hook is None:
            return catalog
        from tornado.web import HTTPError

        user: Any = getattr(self, "user", None)
        name = getattr(user, "name", "?")
        try:
            identity = Identity.from_auth_state(await user.get_auth_state())
        except IdentityError as error:
            raise HTTPError(403, f"Cannot start a lab for {name}: {error}") from None
        options: Any = catalog  # a form.options.OptionsCatalog; lab does not import form
        names = [size.name for size in options.sizes]
        allowed = await self.quota_sizes(identity, names)
        if not allowed:
            raise HTTPError(
                403, f"Cannot start a lab for {name}: your groups allow none of the lab sizes"
            )
        default = options.default_size if options.default_size in allowed else allowed[0]
        restricted = replace(
            options,
            sizes=tuple(size for size in options.sizes if size.name in allowed),
            default_size=default,
            over_quota=tuple(size for size in names if size not in allowed),
        )
        return cast(CatalogT, restricted)
