"""Errors the services raise. Each carries the API error code of DESIGN section 6."""


class GatekeeperError(Exception):
    code = "invalid_state"
    status = 409

    def __init__(self, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ValidationFailed(GatekeeperError):
    code = "validation_error"
    status = 400

    @classmethod
    def of(cls, errors: list[dict]) -> "ValidationFailed":
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return cls(f"{first['field']}: {first['message']}{more}", details={"errors": errors})


class NotFound(GatekeeperError):
    """Also what a caller gets for what it may not see: existence never leaks."""

    code = "not_found"
    status = 404


class IdempotencyConflict(GatekeeperError):
    code = "idempotency_conflict"
    status = 409


DATABASE_UNREACHABLE = "Gatekeeper cannot reach its database; try again shortly"


class Unavailable(GatekeeperError):
    code = "unavailable"
    status = 503


class Busy(Unavailable):
    """Too many requests wait on this process already: come back after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class AlreadyDecided(GatekeeperError):
    code = "already_decided"
    status = 409


class InvalidState(GatekeeperError):
    code = "invalid_state"
    status = 409


class Expired(GatekeeperError):
    code = "expired"
    status = 410


class ActionRefused(InvalidState):
    """A reviewer may not do this (four-eyes, no resume authority, already voted, no edits)."""
