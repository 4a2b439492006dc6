"""Latest-value slots with a per-channel push rate limit (pure, clock-driven).

Live counters only need their newest value, so a subscriber never queues:
each channel holds at most one pending message, and a newer one replaces it.
Keeping this free of asyncio lets it be tested with a fake clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final


class _Empty:
    def __repr__(self) -> str:
        return "EMPTY"


EMPTY: Final = _Empty()

# ``None`` is a real value here: it is the resync marker.
Pending = str | None | _Empty


@dataclass(slots=True)
class LatestSlot:
    """One channel of one subscriber: newest pending message + last push time."""

    min_interval: float
    pending: Pending = EMPTY
    last_push: float | None = None

    def offer(self, message: str | None) -> None:
        # Newest wins, including over a pending resync: a message published
        # after the reconnect is already newer than anything that was missed.
        self.pending = message

    @property
    def has_pending(self) -> bool:
        return not isinstance(self.pending, _Empty)

    def due_at(self) -> float | None:
        """Earliest clock time at which the pending message may be pushed."""
        if not self.has_pending:
            return None
        if self.last_push is None:
            return -math.inf
        return self.last_push + self.min_interval

    def take(self, now: float) -> str | None:
        """Pop the pending message and record the push; call only when due."""
        message = self.pending
        assert not isinstance(message, _Empty), "take() without a pending message"
        self.pending = EMPTY
        self.last_push = now
        return message


@dataclass(slots=True)
class SlotTable:
    """All channels of one subscriber; channels are rate limited independently."""

    min_interval: float
    slots: dict[str, LatestSlot] = field(default_factory=dict)

    @classmethod
    def for_rate(cls, channels: Iterable[str], max_per_second: float) -> SlotTable:
        if max_per_second <= 0:
            raise ValueError("max_per_second must be positive")
        interval = 1.0 / max_per_second
        return cls(interval, {c: LatestSlot(interval) for c in dict.fromkeys(channels)})

    def offer(self, channel: str, message: str | None) -> None:
        self.slots[channel].offer(message)

    @property
    def pending_count(self) -> int:
        return sum(1 for slot in self.slots.values() if slot.has_pending)

    def pop_due(self, now: float) -> tuple[str, str | None] | None:
        """The most overdue pending (channel, message), or None if none is due."""
        best: tuple[float, str] | None = None
        for channel, slot in self.slots.items():
            due = slot.due_at()
            if due is not None and due <= now and (best is None or due < best[0]):
                best = (due, channel)
        if best is None:
            return None
        channel = best[1]
        return channel, self.slots[channel].take(now)

    def next_due(self) -> float | None:
        """When the next pending message becomes due, or None if nothing is pending."""
        dues = [d for d in (s.due_at() for s in self.slots.values()) if d is not None]
        return min(dues, default=None)
