"""Operator mode's custom resources: models (:mod:`.models`), CRDs (:mod:`.schema`), templates.

Sites may import these models to write controllers of their own.
"""

from __future__ import annotations

import sys

from .models import (
    API_VERSION,
    GROUP,
    VERSION,
    LabServer,
    LabServerSpec,
    LabServerStatus,
    LabTemplate,
    LabTemplateSpec,
)
from .schema import build_crds

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "LabServer",
    "LabServerSpec",
    "LabServerStatus",
    "LabTemplate",
    "LabTemplateSpec",
    "build_crds",
    "print_crds",
]


def print_crds() -> int:
    """``lsst-spawner crds``: both CRDs as one YAML stream."""
    import yaml

    sys.stdout.write(yaml.safe_dump_all(build_crds(), sort_keys=False))
    return 0
