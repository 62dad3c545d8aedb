"""The image menu: tag rules, image sources, the background cache."""

from .model import ImageMenu, MenuImage, TagKind
from .tags import ParsedTag, is_valid_tag, parse_tag

__all__ = ["ImageMenu", "MenuImage", "ParsedTag", "TagKind", "is_valid_tag", "parse_tag"]
