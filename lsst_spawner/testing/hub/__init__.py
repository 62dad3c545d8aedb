"""JupyterHub doubles: a real hub process, the in-process hub fixture, a recording spawner.

The names of :mod:`lsst_spawner.testing.hub.process` are importable from here too.
"""

from .process import ADMIN_SCOPES, HubError, HubProcess, free_port, spawn_body

__all__ = ["ADMIN_SCOPES", "HubError", "HubProcess", "free_port", "spawn_body"]
