"""A trivial kopf operator for ``widgets.example.test``, run by test_kube_kopf.py.

On create it annotates the widget, posts an Event and stores a result in status (and
appends "<$WIDGET_OPERATOR> <name>" to ``$WIDGET_HANDLED_LOG`` when set); on delete it
writes the widget's name to ``$WIDGET_DELETED_LOG``, so a test sees the delete handler ran
before the finalizer went. The marker files are appended, never read here.
"""

from __future__ import annotations

import os
from typing import Any

import kopf


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = 0  # post every Event, down to DEBUG
    # An int: the API server parses timeoutSeconds as an integer and refuses "300.0".
    settings.watching.server_timeout = int(os.environ.get("WIDGET_WATCH_TIMEOUT", "300"))
    settings.watching.inactivity_timeout = float(os.environ.get("WIDGET_INACTIVITY", "70"))


@kopf.on.create("example.test", "v1", "widgets")
def created(
    body: kopf.Body, spec: kopf.Spec, name: str, patch: kopf.Patch, **_: Any
) -> dict[str, Any]:
    if log := os.environ.get("WIDGET_HANDLED_LOG"):  # which replica handled which widget
        with open(log, "a") as handled:
            handled.write(f"{os.environ.get('WIDGET_OPERATOR', 'kopf')} {name}\n")
    patch.metadata.annotations["example.test/seen-size"] = str(spec["size"])
    kopf.info(body, reason="Sized", message=f"widget {name} has size {spec['size']}")
    return {"size": spec["size"], "doubled": spec["size"] * 2}


@kopf.on.update("example.test", "v1", "widgets", field="spec.size")
def resized(new: Any, patch: kopf.Patch, **_: Any) -> None:
    patch.status["resized"] = new


@kopf.on.delete("example.test", "v1", "widgets")
def deleted(name: str, namespace: str, **_: Any) -> None:
    with open(os.environ["WIDGET_DELETED_LOG"], "a") as log:
        log.write(f"{namespace}/{name}\n")
