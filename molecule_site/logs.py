"""Logging pieces of the platform's configuration (settings.LOGGING)."""

from __future__ import annotations

import logging


class DropMessages(logging.Filter):
    """Drops records whose message starts with one of ``prefixes``.

    For routine lines a logger mixes with ones worth keeping: Celery beat logs "Scheduler:
    Sending due task …" for every sweep (every few seconds) on the same logger as its start.
    """

    def __init__(self, prefixes=()):
        super().__init__()
        self.prefixes = tuple(prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)
