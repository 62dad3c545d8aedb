"""Sphinx configuration for the lsst_spawner docs (built with warnings as errors)."""

from lsst_spawner import __version__

project = "lsst_spawner"
author = "The lsst_spawner developers"
copyright = "2026, The lsst_spawner developers"
release = __version__
version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "autodoc_traits",
    "sphinxarg.ext",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
autodoc_typehints = "none"
html_theme = "alabaster"
html_title = f"lsst_spawner {version}"
nitpicky = False
suppress_warnings = ["myst.xref_missing"]


# --- the generated trait reference ------------------------------------------------
# For each public class, document the configurable traits that lsst_spawner itself
# defines (in the class or its mixins); inherited KubeSpawner/OAuthenticator traits are
# excluded by computing :exclude-members:, so nothing here is a hand-kept list.
from pathlib import Path  # noqa: E402

from lsst_spawner.reference import own_config_traits, public_classes  # noqa: E402

_HEADER = """\
# Configuration reference

Generated from the code at build time: every configurable trait that lsst_spawner
defines, with its type, default and help. Set them as `c.<Class>.<trait>`, for example
`c.LSSTSpawner.menu_refresh_interval = "10m"`. Traits inherited from KubeSpawner and
OAuthenticator keep their upstream meaning and are documented upstream.
"""


def _write_trait_reference() -> None:
    parts = [_HEADER]
    for cls in public_classes():
        own = own_config_traits(cls)
        inherited = sorted(set(cls.class_trait_names(config=True)) - set(own))
        parts.append(f"\n## {cls.__name__}\n")
        if not own:
            parts.append("\nNo configurable traits of its own yet.\n")
            continue
        parts.append("\n```{eval-rst}\n")
        parts.append(f".. autoconfigurable:: {cls.__module__}.{cls.__name__}\n")
        parts.append("   :noindex:\n")
        if inherited:
            parts.append(f"   :exclude-members: {', '.join(inherited)}\n")
        parts.append("```\n")
    target = Path(__file__).parent / "reference" / "traits.md"
    text = "".join(parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


_write_trait_reference()
