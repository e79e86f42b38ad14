"""The error services raise when a request cannot be honoured.

It carries the wire contract's exact status and body — ``{"error": …}`` plus any extra keys the
spec lists, or a whole ``body`` for the few answers shaped otherwise — so views stay thin: the
DRF exception handler turns it into the response.
"""


class ApiError(Exception):
    def __init__(self, message: str, status: int = 400, *, body: dict | None = None, **extra):
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else {"error": message, **extra}
