"""The chosen image as the lab receives it: a pinned reference and its environment."""

from __future__ import annotations

from dataclasses import dataclass

from ..images.model import MenuImage
from ..lab.spec import LabRequest
from .options import LabOptions

__all__ = ["LabImage", "lab_image", "lab_options_env", "lab_request"]


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


def lab_options_env(options: LabOptions) -> dict[str, str]:
    """The lab's environment for validated options: the image variables and the checkboxes.

    Adds ``DEBUG=TRUE`` when debug logs were asked for and ``RESET_USER_ENV=TRUE``
    when the user asked to reset their environment (the lab's start-up script
    acts on both); absent otherwise.
    """
    env = dict(lab_image(options.image).env)
    if options.enable_debug:
        env["DEBUG"] = "TRUE"
    if options.reset_user_env:
        env["RESET_USER_ENV"] = "TRUE"
    return env


def lab_request(options: LabOptions, *, server_name: str = "") -> LabRequest:
    """What the lab builders are given for validated options of a server (in-hub and
    operator modes); ``server_name`` is JupyterHub's, "" for the default server."""
    image = lab_image(options.image)
    return LabRequest(
        image=image.reference,
        size=options.size,
        debug=options.enable_debug,
        reset_user_env=options.reset_user_env,
        image_env=tuple(sorted(image.env.items())),
        profile=options.profile,
        server_name=server_name,
    )
