"""The lab menu editor: a JupyterHub service (HubOAuth, tornado, Jinja2) over the menu database."""

from .app import WRITE_SCOPE, EditorContext, make_editor_app

__all__ = ["WRITE_SCOPE", "EditorContext", "make_editor_app"]
