"""The like/unlike use case: one active reaction per (viewer, content)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.clock import to_ms
from domain.contents import check_id
from domain.counters import add
from domain.deps import Deps
from domain.errors import Conflict, ContentNotFound, IdempotencyKeyReused, RateLimited, Unavailable
from domain.events import REACTION, EngagementEvent, current_traceparent, reaction_event_id
from domain.idempotency import IdempotencyRecord, fingerprint, in_use, replay
from domain.identity import Actor, require_user
from domain.integrity import Tier, difference, reaction_counters
from domain.outages import is_outage
from domain.ports import ReactionRecord
from domain.rate_limits import ALLOWED, Action, RateLimiter, Verdict, subjects
from domain.reactions import ReactionType, transition
from domain.reads import counter_readings, recount
from domain.summary import Summary, summarize
from domain.tier_fallback import tiers_of
from domain.view_sessions import viewer_key
from workers.metrics import IDEMPOTENT_REPLAY, LIKE_NOOP

log = logging.getLogger(__name__)

MAX_REQUEST_ID = 128
# Optimistic concurrency: a viewer racing themselves (two taps) retries a few times.
MAX_ATTEMPTS = 8
# Redis down: the like response's summary is recounted from MongoDB, at most this
# many at a time per process, each waiting at most RECOUNT_WAIT_S for its turn and
# its answer; past that, UNAVAILABLE (the like itself has landed, and a retry with
# the same requestId replays it).
RECOUNT_CONCURRENCY = 4
RECOUNT_WAIT_S = 2.0
_recounts = asyncio.Semaphore(RECOUNT_CONCURRENCY)


@dataclass(frozen=True, slots=True)
class LikeResult:
    content_id: str
    viewer_reaction: ReactionType | None
    changed: bool
    summary: Summary

    def to_dict(self) -> dict[str, Any]:
        return {
            "content_id": self.content_id,
            "viewer_reaction": self.viewer_reaction.value if self.viewer_reaction else None,
            "changed": self.changed,
            "summary": self.summary.to_dict(),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LikeResult:
        vr = raw.get("viewer_reaction")
        return cls(
            content_id=raw["content_id"],
            viewer_reaction=ReactionType(vr) if vr else None,
            changed=bool(raw["changed"]),
            summary=Summary.from_dict(raw["summary"]),
        )


async def set_reaction(
    deps: Deps,
    actor: Actor | None,
    content_id: str,
    wanted: ReactionType | None,
    request_id: str | None = None,
    *,
    region: str = "unknown",
    device_id: str | None = None,
    addr: str | None = None,
    limiter: RateLimiter | None = None,
) -> LikeResult:
    """Like with ``wanted`` (a reaction type) or unlike (``wanted`` None).

    ``region`` (the caller's, for analytics), ``device_id`` (the client's) and
    ``addr`` (the caller's hashed address, domain/identity.py) go into the event
    only: they are not part of the request's identity, so a retry from elsewhere
    still replays.

    With a ``limiter``, the user's, device's and address's limits are checked at the
    same time as the idempotency claim (one more round trip, concurrent with it); over
    one, RateLimited (``retry_after_ms``) and nothing is written: no reaction, no
    event, and a claimed idempotency key is released for the retry.
    """
    user = require_user(actor)
    check_id(content_id, "contentId")
    if request_id is not None:
        check_id(request_id, "requestId")
    if device_id is not None:
        check_id(device_id, "deviceId")
    if content_id not in await deps.contents.get_many([content_id]):
        raise ContentNotFound(f"no content with id {content_id!r} is registered")
    if deps.admission is not None:
        await deps.admission.admit(1)

    signals = {"addr": addr, "device": device_id}
    op = "like" if wanted is not None else "unlike"
    limits = _limits(deps, limiter, Action(op), user, device_id, addr)
    if request_id is None:
        _refuse_over_limit(await limits)
        return await _apply(deps, user, content_id, wanted, region, signals)

    fp = fingerprint(op, {"contentId": content_id, "reaction": wanted})
    verdict, (existing, claimed) = await asyncio.gather(limits, _begin(deps, user, request_id, fp))
    if existing is not None:
        # A retry of a request seen before gets its stored answer, over a limit or not.
        replayed = await _replay(deps, user, request_id, fp, existing)
        IDEMPOTENT_REPLAY[op].inc()
        return replayed
    try:
        _refuse_over_limit(verdict)
        result = await _apply(
            deps, user, content_id, wanted, region, signals, request=(request_id, fp)
        )
    except BaseException:
        # Let a retry with the same key try again rather than wait for expiry.
        if claimed:
            await _quietly(deps.idempotency.release(user.user_id, request_id))
        raise
    if claimed:
        # Lost with Redis: the reaction document still replays it (_apply).
        await _quietly(deps.idempotency.complete(user.user_id, request_id, fp, result.to_dict()))
    return result


async def _begin(
    deps: Deps, user: Actor, request_id: str, fp: str
) -> tuple[IdempotencyRecord | None, bool]:
    """The idempotency claim: (the record seen before, whether this call holds the
    claim). Redis down: no claim, and the reaction document, written with the
    request's id in the same write as the change, is what a retry replays from."""
    try:
        return await deps.idempotency.begin(user.user_id, request_id, fp), True
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("idempotency store unavailable; replaying from the reaction document")
        return None, False


async def _quietly(step: Any) -> None:
    """An idempotency bookkeeping step after the write: its outage must not turn a
    landed like into an error (the retry would then see ``changed: false``)."""
    try:
        await step
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("idempotency store unavailable after the write: %r", exc)


async def _limits(
    deps: Deps,
    limiter: RateLimiter | None,
    action: Action,
    user: Actor,
    device_id: str | None,
    addr: str | None,
) -> Verdict:
    if limiter is None or not limiter.enabled:
        return ALLOWED
    who = subjects(action, user_id=user.user_id, device_id=device_id, addr=addr)
    return await limiter.check_one(deps.clock.now(), who)


def _refuse_over_limit(verdict: Verdict) -> None:
    if not verdict.allowed:
        raise RateLimited(verdict.retry_after_ms)


async def _replay(
    deps: Deps, user: Actor, key: str, fp: str, record: IdempotencyRecord | None
) -> LikeResult:
    deadline = asyncio.get_running_loop().time() + deps.idempotency_wait_s
    while record is not None:
        stored = replay(record, fp)
        if stored is not None:
            return LikeResult.from_dict(dict(stored))
        if asyncio.get_running_loop().time() >= deadline:
            break
        # The first request is in flight; its result lands within milliseconds.
        await asyncio.sleep(0.02)
        record = await deps.idempotency.get(user.user_id, key)
    # Still running after the wait, or the first attempt failed and released the key.
    raise in_use()


async def _apply(
    deps: Deps,
    user: Actor,
    content_id: str,
    wanted: ReactionType | None,
    region: str,
    signals: Mapping[str, str | None] | None = None,
    *,
    request: tuple[str, str] | None = None,
) -> LikeResult:
    for _ in range(MAX_ATTEMPTS):
        # The actor's tier is read on every attempt, after a re-tiering may have
        # moved the document's version: a write either lands before the re-tiering
        # (which then moves it) or sees the new tier (domain/enforcement.py).
        current, tier = await asyncio.gather(
            deps.reactions.get(content_id, user.user_id), _tier(deps, user)
        )
        before = current.reaction if current else None
        step = transition(before, wanted)
        pending = current.pending if current else ()
        if not step.changed:
            replayed = _replayed_by_document(current, request)
            if not replayed:
                LIKE_NOOP["like" if wanted is not None else "unlike"].inc()
            summary = await _summary(deps, content_id, pending)
            return LikeResult(content_id, before, replayed, summary.for_viewer(before))
        now = deps.clock.now()
        version = (current.version if current else 0) + 1
        # What the document counted in its tier, out; what it counts now, in.
        deltas = difference(
            reaction_counters(wanted, tier),
            reaction_counters(before, current.tier if current else tier),
        )
        event = EngagementEvent(
            event_id=reaction_event_id(content_id, user.user_id, version),
            kind=REACTION,
            content_id=content_id,
            actor=user.user_id,
            occurred_at_ms=to_ms(now),
            deltas=deltas,
            data={
                "before": before.value if before else None,
                "after": wanted.value if wanted else None,
                "region": region,
                # For the integrity worker: the hashed address ("addr") and the
                # device ("device"); never the address itself.
                **(signals or {}),
            },
            traceparent=current_traceparent(),
        )
        record = ReactionRecord(
            content_id, user.user_id, wanted, version, now, tier=tier, request=request
        )
        if await deps.reactions.save(record, version - 1, event):
            break
    else:
        raise Conflict("the reaction kept changing under concurrent writes; retry")

    try:
        await deps.log.append([event])
    except Exception:
        # The change is safe in MongoDB's outbox; the relay republishes it.
        log.warning("event log append failed; outbox relay will republish", exc_info=True)
    summary = await _summary(deps, content_id, (*pending, event))
    return LikeResult(content_id, wanted, True, summary.for_viewer(wanted))


def _replayed_by_document(current: ReactionRecord | None, request: tuple[str, str] | None) -> bool:
    """Whether this no-op is a retry of the request that wrote ``current``: then it
    answers as the first did (``changed: true``; the summary is today's). Reached
    when Redis lost the idempotency record (down, restarted empty, or expired)."""
    if current is None or request is None or current.request is None:
        return False
    if current.request[0] != request[0]:
        return False
    if current.request[1] != request[1]:
        raise IdempotencyKeyReused(
            "requestId was already used with different input; use a new requestId"
        )
    return True


async def _tier(deps: Deps, user: Actor) -> Tier:
    if deps.tiers is None:
        return Tier.TRUSTED
    actor = viewer_key(user.user_id, None)
    return (await tiers_of(deps, [actor])).get(actor, Tier.TRUSTED)


async def _summary(deps: Deps, content_id: str, own: tuple[EngagementEvent, ...]) -> Summary:
    """Read-your-writes: the caller's own changes show even before the aggregator
    applied them (every own event still in the outbox is probed)."""
    try:
        reading = (await deps.counters.read([content_id], own)).get(content_id)
    except Exception as exc:
        if not is_outage(exc):
            raise
        return await _recounted(deps, content_id)
    if reading is None:
        # A rebuild recounts MongoDB, which already holds these changes.
        reading = (await counter_readings(deps, [content_id]))[content_id]
        return summarize(content_id, reading.counters, reading.unique_viewers)
    counters = reading.counters
    for event in own:
        if event.event_id not in reading.applied and event.occurred_at_ms > reading.asof_ms:
            counters = add(counters, dict(event.deltas))
    return summarize(content_id, counters, reading.unique_viewers)


async def _recounted(deps: Deps, content_id: str) -> Summary:
    """The summary from MongoDB alone (Redis is down), which holds every landed
    change, the caller's included; bounded by RECOUNT_CONCURRENCY and RECOUNT_WAIT_S."""
    try:
        async with asyncio.timeout(RECOUNT_WAIT_S):
            async with _recounts:
                truth = (await recount(deps, [content_id]))[content_id]
    except TimeoutError as exc:
        raise Unavailable("counters are unavailable; the change was saved, retry to read") from exc
    return summarize(content_id, truth.counters, len(truth.unique_members))
