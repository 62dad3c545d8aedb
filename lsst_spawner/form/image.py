"""The chosen image as the lab receives it: a pinned reference and its environment."""

from __future__ import annotations

from dataclasses import dataclass

from ..images.model import MenuImage

__all__ = ["LabImage", "lab_image"]


@dataclass(frozen=True)
class LabImage:
    """What the pod is given for the chosen image."""

    #: The container's ``image``: ``{image_base}:{tag}@{digest}`` when the digest is
    #: known, so every node runs the same bits even if the tag moves; else ``{image_base}:{tag}``.
    reference: str
    env: dict[str, str]


def lab_image(image: MenuImage) -> LabImage:
    """Return the pod's image reference and the image environment variables.

    ``JUPYTER_IMAGE_SPEC``: the reference with digest (the same as the pod's image);
    ``JUPYTER_IMAGE``: ``{image_base}:{tag}``; ``IMAGE_DESCRIPTION``: the display
    name; ``IMAGE_DIGEST``: ``sha256:...``, or empty when the digest is not known.
    """
    reference = image.pinned_reference
    return LabImage(
        reference=reference,
        env={
            "JUPYTER_IMAGE_SPEC": reference,
            "JUPYTER_IMAGE": image.reference,
            "IMAGE_DESCRIPTION": image.display_name,
            "IMAGE_DIGEST": image.digest or "",
        },
    )
