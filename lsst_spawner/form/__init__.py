"""The spawner's options form and the validation of user options."""

from .image import LabImage, lab_image, lab_options_env
from .options import (
    LabOptions,
    OptionsCatalog,
    OptionsError,
    OptionsOrigin,
    SizeChoice,
    form_data_to_user_options,
    parse_user_options,
    size_choices,
)
from .render import render_options_form

__all__ = [
    "LabImage",
    "LabOptions",
    "OptionsCatalog",
    "OptionsError",
    "OptionsOrigin",
    "SizeChoice",
    "form_data_to_user_options",
    "lab_image",
    "lab_options_env",
    "parse_user_options",
    "render_options_form",
    "size_choices",
]
