"""Kubernetes ``Status`` bodies and the exception that carries them.

Every error the emulator returns is a ``Status`` object shaped like the real
API server's, so client code that reads ``reason``, ``details.causes`` or
``retryAfterSeconds`` behaves as it would against a cluster.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "status_body"]

_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "AlreadyExists",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_body(
    code: int,
    message: str,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a ``Status`` object (``kind: Status``) for an error response."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class ApiError(Exception):
    """An error response: HTTP code plus a Kubernetes ``Status`` body."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.body = status_body(code, message, reason, details)
        self.headers = headers or {}

    @classmethod
    def not_found(cls, resource: str, name: str) -> ApiError:
        return cls(404, f'{resource} "{name}" not found', details={"name": name, "kind": resource})

    @classmethod
    def already_exists(cls, resource: str, name: str) -> ApiError:
        return cls(
            409,
            f'{resource} "{name}" already exists',
            "AlreadyExists",
            {"name": name, "kind": resource},
        )

    @classmethod
    def conflict(cls, resource: str, name: str) -> ApiError:
        return cls(
            409,
            f'Operation cannot be fulfilled on {resource} "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again",
            "Conflict",
            {"name": name, "kind": resource},
        )

    @classmethod
    def invalid(cls, kind: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
        """422 Invalid; ``causes`` are ``(reason, field, message)`` triples."""
        summary = ", ".join(f"{field}: {message}" for _, field, message in causes)
        if len(causes) > 1:
            summary = f"[{summary}]"
        return cls(
            422,
            f'{kind} "{name}" is invalid: {summary}',
            "Invalid",
            {
                "name": name,
                "kind": kind,
                "causes": [
                    {"reason": reason, "message": message, "field": field}
                    for reason, field, message in causes
                ],
            },
        )

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, message, "BadRequest")
