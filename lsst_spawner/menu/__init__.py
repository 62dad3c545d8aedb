"""The admin-editable lab menu: the document model, its validation, seeding, diffs, storage.

Pure modules (model, validate, seed, diff, visibility) do no I/O; ``storage``
is the database edge (SQLAlchemy, migrated with alembic).
"""

from .diff import diff_menus
from .model import (
    SCHEMA_VERSION,
    CuratedImage,
    ImagePolicy,
    ImageState,
    MenuDocument,
    NodeGroup,
    Profile,
)
from .seed import seed_menu, seed_menu_from_settings
from .validate import (
    MenuInvalidError,
    MenuProblem,
    check_menu,
    node_groups_by_name,
    parse_menu,
    validate_menu,
)
from .visibility import SavedImage, resolve_saved_image, visible_images, visible_profiles

__all__ = [
    "SCHEMA_VERSION",
    "CuratedImage",
    "ImagePolicy",
    "ImageState",
    "MenuDocument",
    "MenuInvalidError",
    "MenuProblem",
    "NodeGroup",
    "Profile",
    "SavedImage",
    "check_menu",
    "diff_menus",
    "node_groups_by_name",
    "parse_menu",
    "resolve_saved_image",
    "seed_menu",
    "seed_menu_from_settings",
    "validate_menu",
    "visible_images",
    "visible_profiles",
]
