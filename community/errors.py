"""One kind of error for every broken rule, so views, consumers and tasks can say it kindly."""


class DomainError(Exception):
    """A rule said no. ``message`` is calm, specific, and safe to show to the person who asked.

    ``code`` is machine-readable (WebSocket error frames, tests). Raising it before any write,
    or inside the transaction that would have written, means nothing changed.
    """

    code = "not_allowed"

    def __init__(self, message: str, *, code: str | None = None, **details):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class PermissionDenied(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"
