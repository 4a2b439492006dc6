"""Time helpers. The clock itself is a port (``domain.ports.Clock``)."""

from __future__ import annotations

from datetime import datetime


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, as events and counters carry time."""
    return int(moment.timestamp() * 1000)
