"""Configuration helpers: ordered config snippets, durations and config checks.

Everything here works offline: nothing contacts Kubernetes, a registry or an
identity provider, so the same code serves hub start-up, ``lsst-spawner
check-config`` and tests.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from traitlets import TraitError, TraitType
from traitlets.config import Config

from .problems import ConfigChecks, ConfigError, ConfigProblem, problems_as_lines

__all__ = [
    "CONFIG_DIR_ENV",
    "MAX_DURATION",
    "CheckedConfigurable",
    "ConfigChecks",
    "ConfigError",
    "ConfigProblem",
    "Duration",
    "MissingEnvironmentVariable",
    "env_bool",
    "env_str",
    "load_config_dir",
    "parse_duration",
    "problems_as_lines",
    "require_env",
    "validation_on_load",
]

#: Environment variable naming the ``jupyterhub_config.d`` directory.
CONFIG_DIR_ENV = "LSST_SPAWNER_CONFIG_DIR"


class MissingEnvironmentVariable(ConfigError):
    """A config snippet needs an environment variable that is not set."""

    def __init__(self, name: str, purpose: str = "") -> None:
        self.name = name
        self.purpose = purpose
        detail = f" ({purpose})" if purpose else ""
        super().__init__(f"required environment variable {name} is not set{detail}")


class CheckedConfigurable(ConfigChecks):
    """:class:`~lsst_spawner.problems.ConfigChecks` with the per-configuration fingerprint."""

    def config_fingerprint(self) -> Hashable | None:
        """What :meth:`config_problems` reads: the class and its checked traits' values.

        Checked traits are those declared by :class:`CheckedConfigurable` classes
        (lsst_spawner's mixins and a site's subclasses), not KubeSpawner's or
        JupyterHub's. Objects with equal fingerprints have equal problems and
        settings, and share one :class:`~lsst_spawner.site.SiteContext`. Traits
        never set are left out: their defaults are fixed per class. Computed at
        each call: :func:`lsst_spawner.site.site_context` takes it once per
        object, when the object is built, so that defaults read later do not
        change it. ``None`` when this object's values cannot be read that way.
        """
        values = getattr(self, "_trait_values", None)
        if not isinstance(values, dict):
            return None
        names = _checked_trait_names(type(self))
        return (type(self), repr([(name, values[name]) for name in names if name in values]))


@functools.cache
def _checked_trait_names(cls: type) -> tuple[str, ...]:
    traits: dict[str, TraitType[Any, Any]] = cls.class_traits()  # type: ignore[attr-defined]
    return tuple(
        sorted(
            name
            for name, trait in traits.items()
            if (
                isinstance(trait.this_class, type)
                and issubclass(trait.this_class, CheckedConfigurable)
            )
            # KubeSpawner's traits the checks read too (LabTraits' volumes and mounts).
            or name in getattr(cls, "foreign_checked_traits", ())
        )
    )


# --- durations ---------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

#: Longest duration accepted: 100 years (36500d). Every duration a site sets (timeouts,
#: intervals, ages) is far shorter; the bound keeps ``timedelta``, ``math.ceil`` and
#: timestamps from overflowing on values such as ``"1e300"``.
MAX_DURATION = 36500 * 86400.0


def parse_duration(value: object) -> float:
    """Parse a duration into seconds.

    Accepts a number of seconds (``90``, ``2.5``) or a string made of
    number-unit parts with units ``ms``, ``s``, ``m``, ``h`` and ``d``
    (``"90s"``, ``"15m"``, ``"1h30m"``). A bare number in a string is seconds.
    Negative, empty, boolean and malformed values, and durations over 100 years
    (:data:`MAX_DURATION`), raise :class:`ValueError`.
    """
    if isinstance(value, bool):
        raise ValueError(f"a duration must be seconds or a string like '90s', not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if not text:
            raise ValueError("a duration must not be empty")
        try:
            seconds = float(text)
        except ValueError:
            position = 0
            seconds = 0.0
            for match in _DURATION_PART.finditer(text):
                if match.start() != position:
                    break
                seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
                position = match.end()
            if position != len(text) or position == 0:
                raise ValueError(
                    f"cannot parse duration {value!r}: use seconds or number-unit parts "
                    "with units ms, s, m, h, d (for example '90s', '15m', '1h30m')"
                ) from None
    else:
        raise ValueError(f"a duration must be seconds or a string like '90s', not {value!r}")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError(f"a duration must be finite, not {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration must not be negative, not {value!r}")
    if seconds > MAX_DURATION:
        raise ValueError(f"a duration must be at most 36500d (100 years), not {value!r}")
    return seconds


class Duration(TraitType[float, float | int | str]):
    """A trait holding a duration in seconds, set from a number or ``"1h30m"``."""

    default_value = 0.0
    info_text = "a duration: seconds, or a string such as '90s', '15m' or '1h30m'"

    def __init__(self, default_value: Any = 0.0, *, minimum: float = 0.0, **kwargs: Any) -> None:
        self.minimum = minimum
        super().__init__(default_value=parse_duration(default_value), **kwargs)

    def validate(self, obj: Any, value: Any) -> float:
        where = (
            obj.trait_where(str(self.name))
            if isinstance(obj, ConfigChecks)
            else f"{type(obj).__name__}.{self.name}"
        )
        try:
            seconds = parse_duration(value)
        except ValueError as error:
            raise TraitError(f"{where}: {error}") from None
        if seconds < self.minimum:
            raise TraitError(f"{where}: must be at least {self.minimum:g}s, not {value!r}")
        return seconds

    def from_string(self, s: str) -> float:
        return parse_duration(s)


# --- environment variables for config snippets ------------------------------


def require_env(name: str, purpose: str = "") -> str:
    """Return the non-empty value of environment variable ``name``.

    Raises :class:`MissingEnvironmentVariable`, which :func:`load_config_dir`
    turns into a one-line start-up error naming the variable.
    """
    value = os.environ.get(name, "").strip()
    if not value:
        missing = _MISSING_ENV.get()
        if missing is None:
            raise MissingEnvironmentVariable(name, purpose)
        # Inside load_config_dir: note it and go on, so one run names every missing variable.
        missing.append(MissingEnvironmentVariable(name, purpose))
    return value


def env_str(name: str, default: str) -> str:
    """Return environment variable ``name``, or ``default`` when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or default


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool) -> bool:
    """Return environment variable ``name`` as a boolean (``true/false``, ``1/0``, ...)."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"environment variable {name} must be true or false, not {value!r}")


# --- ordered config snippets -------------------------------------------------


def config_snippets(path: str | os.PathLike[str]) -> list[Path]:
    """Return the ``*.py`` files of a config directory in lexical order."""
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise ConfigError(
            f"config directory {str(directory)!r} does not exist or is not a directory"
        )
    return sorted(p for p in directory.glob("*.py") if p.is_file())


_VALIDATE_ON_LOAD: ContextVar[bool] = ContextVar("lsst_spawner_validate_on_load", default=True)
#: While load_config_dir runs: the missing variables require_env found (it then returns "").
_MISSING_ENV: ContextVar[list[MissingEnvironmentVariable] | None] = ContextVar(
    "lsst_spawner_missing_env", default=None
)


@contextmanager
def validation_on_load(enabled: bool) -> Iterator[None]:
    """Turn :func:`load_config_dir`'s final validation on or off (``check-config`` turns it off)."""
    token = _VALIDATE_ON_LOAD.set(enabled)
    try:
        yield
    finally:
        _VALIDATE_ON_LOAD.reset(token)


def load_config_dir(
    c: Config,
    path: str | os.PathLike[str],
    *,
    namespace: dict[str, Any] | None = None,
    validate: bool | None = None,
) -> list[Path]:
    """Execute the ``*.py`` snippets of ``path`` in lexical order, sharing one namespace.

    This is what ``jupyterhub_config.py`` does with ``LSST_SPAWNER_CONFIG_DIR``
    and what a Zero to JupyterHub ``hub.extraConfig`` entry calls. Each snippet
    sees ``c`` and ``get_config()`` like a JupyterHub config file, ``__file__``
    set to its own path, and every name that earlier snippets defined. A
    relative ``path`` is taken from the current working directory.

    A snippet that needs a missing environment variable, or raises
    :class:`ConfigError`, stops start-up (``SystemExit``) with one line per
    problem naming the snippet: every snippet runs first, so one start names
    every missing variable (:func:`require_env` returns ``""`` for a missing one
    meanwhile, and whatever else that snippet then raises is not reported). A
    snippet with a syntax error stops start-up with one line giving its file and
    line. Any other exception propagates with its traceback, pointing at the
    snippet's own file and line.

    After the last snippet, the lsst_spawner classes the configuration selects
    are checked (the rules of ``lsst-spawner check-config``) and start-up stops
    with every problem listed if there is any; pass ``validate=False`` to skip
    that, for example when more configuration follows.

    In a starting JupyterHub, the spawner class's background tasks (the leftover
    sweep) are arranged to start once the hub has started
    (:func:`lsst_spawner.hub_start.start_with_hub`), whether or not anybody spawns.

    Returns the snippets executed, in order.
    """
    snippets = config_snippets(path)
    shared: dict[str, Any] = {} if namespace is None else namespace
    shared.setdefault("c", c)
    get_config: Callable[[], Config] = lambda: c  # noqa: E731 - mirrors traitlets
    shared.setdefault("get_config", get_config)
    shared.setdefault("__name__", "lsst_spawner_config_d")
    errors: list[str] = []
    for snippet in snippets:
        try:
            code = compile(snippet.read_bytes(), str(snippet), "exec")
        except SyntaxError as error:
            raise SystemExit(f"lsst_spawner: {syntax_error_line(error)}") from None
        shared["__file__"] = str(snippet)
        missing: list[MissingEnvironmentVariable] = []
        token = _MISSING_ENV.set(missing)
        try:
            exec(code, shared)  # noqa: S102 - executing site config is the point
        except ConfigError as error:
            if not missing:  # else it may follow from a missing variable's "" stand-in
                errors.append(f"lsst_spawner: configuration error in {snippet.name}: {error}")
        except Exception:
            if not missing:
                raise
        finally:
            _MISSING_ENV.reset(token)
        errors += [f"lsst_spawner: configuration error in {snippet.name}: {m}" for m in missing]
    if errors:
        raise SystemExit("\n".join(errors))
    if _VALIDATE_ON_LOAD.get() if validate is None else validate:
        from .checks import validate_config_or_exit

        validate_config_or_exit(c)
    from .hub_start import start_with_hub

    start_with_hub()  # in a starting hub: its background tasks once it has started
    return snippets


def syntax_error_line(error: SyntaxError) -> str:
    """``file:line: syntax error: message`` for a config file that does not parse."""
    return f"{error.filename}:{error.lineno}: syntax error: {error.msg}"
