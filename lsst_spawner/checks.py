"""Check a whole JupyterHub configuration offline: the rules behind ``check-config``.

Nothing here instantiates KubeSpawner (whose constructor loads a kubeconfig and
creates API clients) or contacts any service. Instead, the lsst_spawner mixins
of the configured classes are instantiated alone, under the configured class's
name so that ``c.LSSTSpawner.*`` applies, and every configured value is set one
by one so that each bad value is reported, not only the first.
"""

from __future__ import annotations

import copy
import difflib
import logging
import re
from collections.abc import Iterable
from typing import Any

from traitlets import HasTraits, TraitError, TraitType
from traitlets.config import Config, Configurable
from traitlets.config.loader import LazyConfigValue

from .problems import ConfigChecks, ConfigError, ConfigProblem

_LOG = logging.getLogger("lsst_spawner")

__all__ = [
    "check_config",
    "offline_settings",
    "resolve_class",
    "spawner_settings",
    "validate_config_or_exit",
]

_ENTRY_POINT_GROUPS = {
    "spawner_class": "jupyterhub.spawners",
    "authenticator_class": "jupyterhub.authenticators",
}


def resolve_class(value: object, trait: str) -> type | None:
    """Resolve ``JupyterHub.<trait>`` as JupyterHub does: a class, an entry point or a dotted path.

    Returns ``None`` when the value is unset. Raises :class:`ConfigError` when
    it names nothing that can be imported.
    """
    if value is None or value == "":
        return None
    if isinstance(value, type):
        return value
    if not isinstance(value, str):
        raise ConfigError(f"JupyterHub.{trait}: expected a class or a name, not {value!r}")
    from importlib.metadata import entry_points

    for entry_point in entry_points(group=_ENTRY_POINT_GROUPS[trait]):
        if entry_point.name == value:
            loaded = entry_point.load()
            assert isinstance(loaded, type)
            return loaded
    module_name, _, class_name = value.rpartition(".")
    if not module_name:
        raise ConfigError(f"JupyterHub.{trait}: no installed entry point is named {value!r}")
    import importlib

    try:
        module = importlib.import_module(module_name)
        loaded = getattr(module, class_name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"JupyterHub.{trait}: cannot import {value!r}: {error}") from None
    if not isinstance(loaded, type):
        raise ConfigError(f"JupyterHub.{trait}: {value!r} is not a class")
    return loaded


def _checked_bases(cls: type) -> tuple[type, ...]:
    """The ConfigChecks classes in ``cls``'s bases, in MRO order."""
    return tuple(
        base
        for base in cls.__mro__[1:]
        if issubclass(base, ConfigChecks) and base is not ConfigChecks
    ) or (ConfigChecks,)


def _needs_shadow(cls: type) -> bool:
    """Spawners are checked through their mixins: KubeSpawner's constructor does I/O."""
    from jupyterhub.spawner import Spawner

    return issubclass(cls, Spawner)


def _foreign_traits(cls: type, bases: tuple[type, ...]) -> dict[str, TraitType[Any, Any]]:
    """Copies of the traits of ``cls`` that its checked mixins read but do not declare.

    A mixin lists them in ``foreign_checked_traits`` (the lab checks KubeSpawner's
    ``volumes`` against its own). Copies, so that declaring them on the stand-in
    class changes nothing on the real one.
    """
    names = {
        name
        for base in bases
        for kind in ("foreign_checked_traits", "foreign_warned_traits")
        for name in getattr(base, kind, ())
    }
    traits: dict[str, TraitType[Any, Any]] = (
        cls.class_traits() if issubclass(cls, HasTraits) else {}
    )
    return {name: copy.copy(traits[name]) for name in sorted(names) if name in traits}


def _section_names(cls: type) -> list[str]:
    return [
        base.__name__
        for base in reversed(cls.__mro__)
        if isinstance(base, type) and issubclass(base, Configurable)
    ]


def _resolve_value(obj: HasTraits, key: str, value: Any) -> Any:
    if isinstance(value, LazyConfigValue):
        return value.get_value(getattr(obj, key))
    return value


def offline_settings(cls: type, config: Config) -> tuple[ConfigChecks, list[ConfigProblem]]:
    """Build the lsst_spawner settings of ``cls`` from ``config``, one value at a time.

    A spawner class is not instantiated: the settings object is an instance of
    its lsst_spawner mixins, named like the class. Other classes (the
    authenticators) are instantiated with no config and then given each value.
    Returns that object and the problems met while setting each value: values
    of the wrong type and unknown option names in lsst_spawner's own sections.
    """
    if _needs_shadow(cls):
        from jupyterhub.spawner import Spawner

        # A site's subclass of LSSTSpawner: its mixins, not LSSTSpawner (KubeSpawner's constructor).
        bases = tuple(b for b in _checked_bases(cls) if not issubclass(b, Spawner))
        bases = bases or (ConfigChecks,)
        shadow_type = type(
            cls.__name__, bases, {"__module__": cls.__module__, **_foreign_traits(cls, bases)}
        )
        settings = shadow_type()
    else:
        settings = cls()
    assert isinstance(settings, ConfigChecks)
    own_traits = set(settings.trait_names(config=True))
    all_traits = (
        set(cls.class_trait_names(config=True)) if issubclass(cls, HasTraits) else own_traits
    )
    own_sections = {
        name
        for name in _section_names(cls)
        if name == cls.__name__ or name in {base.__name__ for base in _checked_bases(cls)}
    }
    problems: list[ConfigProblem] = []
    for section in _section_names(cls):
        if not config._has_section(section):
            continue
        for key, value in config[section].items():
            where = f"{section}.{key}"
            if key not in own_traits:
                if section in own_sections and key not in all_traits:
                    hint = difflib.get_close_matches(key, sorted(all_traits), n=1)
                    suggestion = f" (did you mean {hint[0]}?)" if hint else ""
                    problems.append(ConfigProblem(where, f"unknown option{suggestion}"))
                continue
            try:
                setattr(settings, key, _resolve_value(settings, key, value))
            except TraitError as error:
                problems.append(ConfigProblem(where, _trait_error_text(error, key)))
    return settings, problems


def _trait_error_text(error: TraitError, key: str) -> str:
    text = " ".join(str(error).split())
    # The problem already names the trait; a message that starts with it again loses it.
    text = re.sub(rf"^[A-Za-z_]\w*\.{re.escape(key)}: ", "", text)
    return text if len(text) <= 400 else text[:397] + "..."


def check_config(config: Config) -> tuple[list[ConfigProblem], list[str]]:
    """Check the lsst_spawner classes a configuration selects.

    Returns ``(problems, checked)``: every problem found, and the names of the
    classes that were checked.
    """
    problems, _, checked = check_config_with_warnings(config)
    return problems, checked


def check_config_with_warnings(
    config: Config,
) -> tuple[list[ConfigProblem], list[ConfigProblem], list[str]]:
    """:func:`check_config`, with the warnings (settings that do not do what they seem to)."""
    problems: list[ConfigProblem] = []
    warnings: list[ConfigProblem] = []
    checked: list[str] = []
    found: dict[str, ConfigChecks] = {}
    hub = config.JupyterHub if config._has_section("JupyterHub") else Config()
    for trait in ("spawner_class", "authenticator_class"):
        try:
            cls = resolve_class(hub.get(trait), trait)
        except ConfigError as error:
            problems.append(ConfigProblem(f"JupyterHub.{trait}", str(error).split(": ", 1)[-1]))
            continue
        if cls is None or not issubclass(cls, ConfigChecks):
            continue
        settings, set_problems = offline_settings(cls, config)
        if config._has_section("LabMenu"):
            # Whether the lab menu is on decides what lab_size_quota names (sizes or profiles);
            # no trait of the settings reads this section.
            settings.config = Config({"LabMenu": config.LabMenu})
        problems.extend(set_problems)
        problems.extend(_safe_config_problems(settings))
        warnings.extend(settings.config_warnings())
        checked.append(cls.__name__)
        found[trait] = settings
    problems.extend(_group_reference_problems(found))
    menu_problems, menu_warnings = _lab_menu_checks(config)
    problems.extend(menu_problems)
    warnings.extend(menu_warnings)
    server_problems, server_warnings = _server_findings(config, found)
    return problems + server_problems, warnings + server_warnings, checked


def _server_findings(
    config: Config, found: dict[str, ConfigChecks]
) -> tuple[list[ConfigProblem], list[ConfigProblem]]:
    """Named servers with a pod name that ignores them; rules a user namespace needs."""
    from .lab.names import names_server
    from .rbac import Z2JH_HUB_ROLE_RULES, hub_role_for_config, missing_rules

    spawner = found.get("spawner_class")
    if spawner is None:
        return [], []
    problems, warnings = [], []
    hub = config.JupyterHub if config._has_section("JupyterHub") else Config()
    template = getattr(spawner, "lab_pod_name_template", None)
    if hub.get("allow_named_servers") and isinstance(template, str) and not names_server(template):
        problems.append(
            ConfigProblem(
                spawner.trait_where("lab_pod_name_template"),
                f"{template!r} has no {{servername}} or {{user_server}}, but "
                "JupyterHub.allow_named_servers is True: every server of a user would get "
                "the same pod (the default, 'nb-{user_server}', tells them apart)",
            )
        )
    role = hub_role_for_config(config)
    if role["kind"] == "ClusterRole":
        beyond = "; ".join(
            f"{', '.join(rule['resources'])}: {', '.join(rule['verbs'])}"
            for rule in missing_rules(role["rules"], Z2JH_HUB_ROLE_RULES)
        )
        warnings.append(
            ConfigProblem(
                "KubeSpawner.enable_user_namespaces",
                "the hub needs a ClusterRole (`lsst-spawner rbac` prints it), not z2jh's "
                f"namespaced hub Role: it creates namespaces and works in all of them; "
                f"beyond z2jh's rules: {beyond}",
            )
        )
    return problems, warnings


_LAB_MENU_MODULE = "lsst_spawner.menu.traits"


def _lab_menu_checks(config: Config) -> tuple[list[ConfigProblem], list[ConfigProblem]]:
    """``LabMenu``'s own checks (its database URL, node groups, check interval), when set.

    Nothing the spawner sets is replaced without a word: ``lab_size_quota`` applies to the
    menu's profiles as to ``lab_sizes`` (:mod:`lsst_spawner.lab.quota`)."""
    if not config._has_section("LabMenu"):
        return [], []
    import importlib

    # By name, as the configured classes are: the menu's traits import config, which runs
    # these checks when it loads a configuration.
    LabMenu = importlib.import_module(_LAB_MENU_MODULE).LabMenu

    _, problems = offline_settings(LabMenu, config)
    if problems:  # unknown names and wrong types: the object below could not be built
        return problems, []
    menu = LabMenu(config=config)
    return list(_safe_config_problems(menu)), []


def _group_reference_problems(found: dict[str, ConfigChecks]) -> list[ConfigProblem]:
    """Lab mounts and quotas naming a group nobody can be in, when the authenticator knows all."""
    known = getattr(found.get("authenticator_class"), "config_time_groups", lambda: None)()
    check = getattr(found.get("spawner_class"), "lab_group_problems", None)
    if known is None or check is None:
        return []
    problems: list[ConfigProblem] = check(known)
    return problems


def spawner_settings(config: Config) -> ConfigChecks:
    """The offline settings of the configured lsst_spawner spawner, refusing a faulty config.

    Raises :class:`ConfigError` when the spawner is not an lsst_spawner class or
    its configuration has problems (``check-config`` lists them).
    """
    hub = config.JupyterHub if config._has_section("JupyterHub") else Config()
    cls = resolve_class(hub.get("spawner_class") or "lsst", "spawner_class")
    if cls is None or not issubclass(cls, ConfigChecks):
        raise ConfigError(f"JupyterHub.spawner_class is {cls!r}, not an lsst_spawner spawner")
    settings, problems = offline_settings(cls, config)
    problems.extend(_safe_config_problems(settings))
    if problems:
        raise ConfigError(
            f"the configuration has {len(problems)} problem(s); "
            "run `lsst-spawner check-config` to list them"
        )
    return settings


def _safe_config_problems(settings: ConfigChecks) -> Iterable[ConfigProblem]:
    try:
        return settings.config_problems()
    except Exception as error:  # a rule that crashes is itself a problem to report
        return [ConfigProblem(type(settings).__name__, f"configuration check failed: {error!r}")]


def validate_config_or_exit(config: Config) -> None:
    """Stop hub start-up with every problem listed when the configuration is wrong.

    Warnings (settings lsst_spawner ignores) are logged, one line each, and do not stop it.
    """
    problems, warnings, _ = check_config_with_warnings(config)
    for warning in warnings:
        _LOG.warning("lsst_spawner: configuration warning: %s", warning)
    if problems:
        lines = "\n".join(f"  {problem}" for problem in problems)
        raise SystemExit(f"lsst_spawner: {len(problems)} configuration problem(s):\n{lines}")
