"""Latest-value slots with a per-channel push rate limit (pure, clock-driven).

Live counters only need their newest value, so a subscriber never queues:
each channel holds at most one pending message, and a newer one replaces it.
Keeping this free of asyncio lets it be tested with a fake clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
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
    """One channel of one subscriber: newest pending message + last push time.

    A control slot carries messages that are not snapshots (each says what
    changed), so none may be lost: it is never rate limited, and a second
    message arriving before the first was taken turns both into a resync.

    A message offered with a rank (a snapshot's version) replaces the pending
    one only if it is at least as new: publishers may deliver out of order, and
    the pending message must stay the newest snapshot, not the latest arrival.
    """

    min_interval: float
    pending: Pending = EMPTY
    last_push: float | None = None
    control: bool = False
    pending_rank: int | None = None

    def offer(self, message: str | None, rank: int | None = None) -> None:
        if self.control:
            self.pending = None if self.has_pending else message
            return
        if rank is not None:
            if self.pending is None:
                # A pending resync re-reads the state, which covers any snapshot.
                return
            if isinstance(self.pending, str) and (self.pending_rank or 0) > rank:
                return
        # Otherwise newest wins, including over a pending resync: a message
        # published after the reconnect is newer than anything that was missed.
        self.pending = message
        self.pending_rank = rank

    @property
    def has_pending(self) -> bool:
        return not isinstance(self.pending, _Empty)

    def due_at(self) -> float | None:
        """Earliest clock time at which the pending message may be pushed."""
        if not self.has_pending:
            return None
        if self.last_push is None or self.control:
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
    # The version of a snapshot message, for slots that keep the newest one.
    rank: Callable[[str], int] | None = None

    @classmethod
    def for_rate(
        cls,
        channels: Iterable[str],
        max_per_second: float,
        control: Iterable[str] = (),
        rank: Callable[[str], int] | None = None,
    ) -> SlotTable:
        """``control`` channels are served before any other (see LatestSlot)."""
        if max_per_second <= 0:
            raise ValueError("max_per_second must be positive")
        interval = 1.0 / max_per_second
        slots = {c: LatestSlot(interval, control=True) for c in dict.fromkeys(control)}
        for c in dict.fromkeys(channels):
            slots.setdefault(c, LatestSlot(interval))
        return cls(interval, slots, rank)

    def offer(self, channel: str, message: str | None) -> None:
        slot = self.slots[channel]
        rank = None
        if self.rank is not None and message is not None and not slot.control:
            rank = self.rank(message)
        slot.offer(message, rank)

    @property
    def pending_count(self) -> int:
        return sum(1 for slot in self.slots.values() if slot.has_pending)

    def pop_due(self, now: float) -> tuple[str, str | None] | None:
        """The most overdue pending (channel, message), or None if none is due."""
        best: tuple[float, str] | None = None
        for channel, slot in self.slots.items():
            due = slot.due_at()
            if due is None or due > now:
                continue
            if slot.control:
                # What a control message announces must be known before the
                # counts that follow it are shown.
                return channel, slot.take(now)
            if best is None or due < best[0]:
                best = (due, channel)
        if best is None:
            return None
        channel = best[1]
        return channel, self.slots[channel].take(now)

    def next_due(self) -> float | None:
        """When the next pending message becomes due, or None if nothing is pending."""
        dues = [d for d in (s.due_at() for s in self.slots.values()) if d is not None]
        return min(dues, default=None)
