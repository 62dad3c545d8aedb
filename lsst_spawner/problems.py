"""What every configuration check returns: problems attributed to a trait, and their base class.

This module is the bottom of the check machinery: :mod:`lsst_spawner.checks`
(``check-config``) and :mod:`lsst_spawner.config` (hub start) both build on it,
and it imports neither. :mod:`lsst_spawner.config` re-exports everything here.

A problem names its trait one way everywhere: ``<Class>.<trait>``, with the
class as operators configure it (``LSSTSpawner.lab_sizes``,
``LSSTGitHubOAuthenticator.min_uid``, ``KubeSpawner.volume_mounts[0]``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from traitlets.config import LoggingConfigurable

__all__ = ["ConfigChecks", "ConfigError", "ConfigProblem", "problems_as_lines"]


class ConfigError(Exception):
    """The site configuration is wrong; the message says what and where."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem found in the configuration, attributed to a trait.

    ``where`` is the trait as an operator writes it, for example
    ``LSSTSpawner.lab_sizes`` or ``LSSTSpawner.volume_mounts[2].mount_path``.
    """

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class ConfigChecks(LoggingConfigurable):
    """Base of every lsst_spawner class whose traits are checked as a whole.

    Per-trait type checks happen when traitlets assigns a value. Rules that
    look at several values at once (a mount names a defined volume, the
    default size is in the list of sizes) live in :meth:`config_problems`, so
    that ``lsst-spawner check-config`` can report *every* problem instead of
    stopping at the first. Mixins extend it cooperatively::

        def config_problems(self) -> list[ConfigProblem]:
            problems = super().config_problems()
            ...
            return problems
    """

    #: The class named in problem messages; empty means the object's own class name.
    #: The spawner's mixins say ``LSSTSpawner``, whatever the site's subclass is called.
    trait_owner: ClassVar[str] = ""
    #: Traits of the class this mixin is part of (KubeSpawner's) that :meth:`config_problems`
    #: reads; ``check-config``, which never builds a KubeSpawner, gives its stand-in copies.
    foreign_checked_traits: ClassVar[tuple[str, ...]] = ()

    def trait_where(self, trait: str) -> str:
        """The trait as operators write it in problem messages: ``<Class>.<trait>``."""
        return f"{self.trait_owner or type(self).__name__}.{trait}"

    def config_problems(self) -> list[ConfigProblem]:
        """Return every problem in this object's configuration (empty if none)."""
        return []

    def raise_for_config_problems(self) -> None:
        """Raise :class:`ConfigError` listing every problem, if there is any."""
        problems = self.config_problems()
        if problems:
            lines = "\n".join(f"  - {problem}" for problem in problems)
            raise ConfigError(f"{len(problems)} configuration problem(s):\n{lines}")


def problems_as_lines(problems: Iterable[ConfigProblem]) -> list[str]:
    """Format problems one per line, in a stable order."""
    return [str(p) for p in sorted(problems, key=lambda p: (p.where, p.message))]
