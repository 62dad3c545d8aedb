"""Which traits lsst_spawner defines: used by the generated docs reference and its tests."""

from __future__ import annotations

from traitlets import HasTraits

__all__ = ["own_config_traits", "public_classes"]


def public_classes() -> list[type[HasTraits]]:
    """The classes operators configure, in the order the reference lists them."""
    from .auth.cilogon import LSSTCILogonOAuthenticator
    from .auth.github import LSSTGitHubOAuthenticator
    from .menu.traits import LabMenu
    from .spawner import LSSTSpawner

    return [LSSTSpawner, LSSTGitHubOAuthenticator, LSSTCILogonOAuthenticator, LabMenu]


def own_config_traits(cls: type[HasTraits]) -> list[str]:
    """Names of the configurable traits of ``cls`` defined by lsst_spawner code, sorted."""
    return sorted(
        name
        for name, trait in cls.class_traits(config=True).items()
        if trait.this_class is not None and trait.this_class.__module__.startswith("lsst_spawner")
    )
