"""The work behind ``lsst-spawner menu`` and ``render-pod``, kept apart from argument parsing."""

from __future__ import annotations

import argparse

from traitlets.config import Config

__all__ = ["print_menu", "render_pod"]


class NotAvailable(Exception):
    pass


def print_menu(config: Config, output_format: str) -> int:
    from .cli import CommandError

    raise CommandError("the image menu is not part of this build yet")


def render_pod(config: Config, args: argparse.Namespace) -> int:
    from .cli import CommandError

    raise CommandError("render-pod is not part of this build yet")
