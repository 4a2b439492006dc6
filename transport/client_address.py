"""The client's address stays out of the logs.

uvicorn resolves the client's address (X-Forwarded-For only from
FORWARDED_ALLOW_IPS) and the service uses it as a signal only: hashed with a daily
salt (domain/identity.py), never stored, logged or shown. uvicorn's own access lines
('%s - "POST /graphql HTTP/1.1" 200') and WebSocket lines ('%s - "WebSocket /graphql"
[accepted]') start with it; this filter writes "-" in its place.
"""

from __future__ import annotations

import logging

# uvicorn's loggers whose lines start with the client's address.
LOGGERS = ("uvicorn.access", "uvicorn.error")
_PREFIX = '%s - "'


class HideClientAddress(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(record.msg, str)
            and record.msg.startswith(_PREFIX)
            and isinstance(args, tuple)
            and args
        ):
            record.args = ("-", *args[1:])
        return True


def hide_client_addresses() -> None:
    """Once, before uvicorn starts (``main.py serve``)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, HideClientAddress) for f in logger.filters):
            logger.addFilter(HideClientAddress())
