"""The error the lab builders raise when inputs cannot make a safe lab."""

from __future__ import annotations

from ..identity import IdentityError

__all__ = ["LabSpecError"]


class LabSpecError(IdentityError):
    """The identity, options or settings cannot produce a safe lab; nothing is created.

    A subclass of :class:`~lsst_spawner.identity.IdentityError` (and so of
    :class:`ValueError`) because most causes are an identity the lab rules
    reject (uid 0, too many groups, a username that collides with a base
    ``/etc/passwd`` entry); the message names the field and the trait.
    """
