"""The LabTemplate's ``spec.settings``: the LSSTSpawner traits of the areas a lab is built from.

A template's settings are the same traits, by the same names, as ``c.LSSTSpawner.<trait>``
in a hub's configuration: the lab traits (:class:`~lsst_spawner.lab.traits.LabTraits`),
the image menu and registry traits, and the Kubernetes edge's. They are read into
:class:`TemplateSettings`, a configurable with exactly those traits, so both modes go
through the same trait validation, the same ``to_settings`` checks and the same
frozen settings: a setting means the same in both modes by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from traitlets import Bool, Dict, Enum, Float, Int, List, TraitError, TraitType, Unicode

from ..config import ConfigError, ConfigProblem, Duration
from ..images.prepull_traits import PrepullTraits
from ..images.registry_config import RegistrySourceTraits
from ..images.traits import ImageMenuTraits
from ..kube.traits import KubeTraits
from ..lab.traits import LabTraits

__all__ = [
    "TEMPLATE_SETTING_NAMES",
    "TemplateSettings",
    "settings_from_template",
    "settings_schema",
    "trait_schema",
]


class TemplateSettings(LabTraits, ImageMenuTraits, PrepullTraits, RegistrySourceTraits, KubeTraits):
    """The traits a LabTemplate holds, validated and checked as the spawner's are.

    ``image_prepull_*`` tell the operator to prepull the template's images (operator mode's
    prepuller runs in the operator: :mod:`lsst_spawner.operator.prepull`).
    """

    trait_owner: ClassVar[str] = "LSSTSpawner"


def _setting_names() -> tuple[str, ...]:
    traits = TemplateSettings.class_traits(config=True)
    return tuple(sorted(name for name, trait in traits.items() if trait_schema(trait) is not None))


def trait_schema(trait: TraitType[Any, Any]) -> dict[str, Any] | None:
    """A structural OpenAPI schema for one trait's value; ``None`` if it has no JSON form."""
    schema: dict[str, Any]
    if isinstance(trait, Duration):
        schema = {"x-kubernetes-int-or-string": True}
    elif isinstance(trait, Bool):
        schema = {"type": "boolean"}
    elif isinstance(trait, Int):
        schema = {"type": "integer"}
    elif isinstance(trait, Float):
        schema = {"type": "number"}
    elif isinstance(trait, Enum):
        schema = {"type": "string", "enum": [str(value) for value in trait.values or ()]}
    elif isinstance(trait, Unicode):
        schema = {"type": "string"}
    elif isinstance(trait, List):
        inner = trait._trait  # the element trait, or None for any element
        item = trait_schema(inner) if inner is not None else None
        schema = {"type": "array", "items": item or _FREE}
    elif isinstance(trait, Dict):
        value: Any = trait._value_trait
        value_schema = trait_schema(value) if value is not None else None
        schema = (
            {"type": "object", "additionalProperties": value_schema}
            if value_schema is not None and "type" in value_schema
            else dict(_FREE)
        )
    else:
        return None
    if trait.allow_none:
        schema["nullable"] = True
    help_text = (trait.help or "").strip()
    if help_text:
        schema["description"] = " ".join(help_text.split())
    return schema


_FREE: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}

#: The traits a template may set: every configurable trait with a JSON form.
TEMPLATE_SETTING_NAMES = _setting_names()


def settings_schema() -> dict[str, Any]:
    """The structural schema of ``spec.settings``: one property per setting, nothing else."""
    traits = TemplateSettings.class_traits(config=True)
    properties = {name: trait_schema(traits[name]) for name in TEMPLATE_SETTING_NAMES}
    return {
        "type": "object",
        "description": "LSSTSpawner traits, by name, as in a hub's configuration.",
        "properties": properties,
    }


def settings_from_template(
    settings: Mapping[str, Any], where: str = "LabTemplate"
) -> tuple[TemplateSettings | None, list[ConfigProblem]]:
    """The template's settings as :class:`TemplateSettings`, or ``None`` and every problem.

    Unknown names and values a trait refuses are problems named
    ``<where>: spec.settings.<name>``; the rest are the spawner's own checks
    (named ``LSSTSpawner.<trait>``, the same setting in both modes).
    """
    problems: list[ConfigProblem] = []
    values: dict[str, Any] = {}
    for name, value in settings.items():
        if name not in TEMPLATE_SETTING_NAMES:
            problems.append(
                ConfigProblem(f"{where} spec.settings.{name}", "is not a setting a template holds")
            )
            continue
        values[name] = value
    obj = TemplateSettings()
    for name, value in values.items():
        try:
            setattr(obj, name, value)
        except TraitError as error:
            problems.append(ConfigProblem(f"{where} spec.settings.{name}", _first_line(error)))
    if problems:
        return None, problems
    try:
        checked = obj.config_problems()
    except ConfigError as error:
        return None, [ConfigProblem(where, str(error))]
    if checked:
        return None, checked
    return obj, []


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]
