"""The session closer: view sessions that went quiet end too.

A session ends at its final event (domain/view_recording.py), but many never
send one: an app killed, a tab closed, a phone locked. Once a session has had
no event for ``idle`` (SESSION_IDLE_S), this worker marks it ended and writes
its VIEW_END event (reason "idle", at the time of its last event) in the same
document change, the session's outbox, then appends it to the event log; the
outbox relay repairs a crash in between, as for every other write.

Ending is a versioned write: a session that took an event since it was read is
left to that event (it is not idle any more, or its final event ended it), and
its end has the same id whichever of the two writes it, so no session has two.
Several worker processes may run this at once for the same reason.

A pass drains every session idle at its start, in batches, resting between
batches for a multiple of the time one took (with the embedded store every
batch is synchronous CPU on the request loop; see workers/outbox_relay.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from domain.deps import Deps
from domain.events import EngagementEvent
from domain.ports import StoredSession
from domain.view_recording import end_event
from domain.view_sessions import ViewSession, end_idle
from workers.periodic import periodic

log = logging.getLogger(__name__)


class IdleSessionStore(Protocol):
    """The view sessions, as the closer needs them (storage/mongo_view_sessions.py)."""

    async def ensure_idle_index(self) -> None: ...

    async def idle(self, before: datetime, limit: int) -> list[StoredSession]:
        """Up to ``limit`` sessions not ended whose last event is older than ``before``."""

    async def save_many(
        self, writes: Sequence[tuple[ViewSession, int, list[EngagementEvent]]]
    ) -> set[str]:
        """Versioned writes with outbox events; returns the ids that changed under us."""


class SessionCloser:
    def __init__(
        self,
        deps: Deps,
        sessions: IdleSessionStore,
        *,
        idle: timedelta,
        batch: int = 200,
        interval_s: float = 30.0,
        share: float = 0.25,
    ) -> None:
        if idle <= timedelta(0):
            raise ValueError("idle must be positive")
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        # The deps, not their clock: tests (and a rebuild) swap the clock later.
        self._deps = deps
        self._sessions = sessions
        self._idle = idle
        self._batch = batch
        self._interval = interval_s
        self._rest = (1 - share) / share
        self._indexed = False

    async def run_once(self, stop: asyncio.Event | None = None) -> int:
        """End every session idle now, batch by batch; returns how many this pass ended."""
        if not self._indexed:
            await self._sessions.ensure_idle_index()
            self._indexed = True
        before = self._deps.clock.now() - self._idle
        closed = 0
        while stop is None or not stop.is_set():
            started = time.monotonic()
            found = await self._sessions.idle(before, self._batch)
            if not found:
                break
            ended = await self._close(found)
            closed += ended
            # A short batch was the last; one where every session changed under us
            # (another closer is at work, or events arrived) would only repeat.
            if len(found) < self._batch or not ended:
                break
            await asyncio.sleep((time.monotonic() - started) * self._rest)
        return closed

    async def _close(self, found: list[StoredSession]) -> int:
        deps = self._deps
        contents = await deps.contents.get_many(
            list(dict.fromkeys(s.session.content_id for s in found))
        )
        writes: list[tuple[ViewSession, int, list[EngagementEvent]]] = []
        for stored in found:
            session = end_idle(stored.session)
            content = contents.get(session.content_id)
            duration = content.duration_ms if content is not None else None
            writes.append((session, stored.version, [end_event(session, duration, "idle")]))
        conflicts = await self._sessions.save_many(writes)
        events = [e for s, _, out in writes if s.session_id not in conflicts for e in out]
        try:
            await deps.log.append(events)
        except Exception:
            # The ends are safe in the sessions' outbox; the relay republishes them.
            log.warning("session end append failed; outbox relay will republish", exc_info=True)
        return len(events)

    async def run(self, stop: asyncio.Event) -> None:
        await periodic(
            lambda: self.run_once(stop), stop, self._interval, "session closer", first_at_once=True
        )
