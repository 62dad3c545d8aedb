"""The image menu: tag rules, image sources, the background cache."""
