"""Retroactive exclusion and restoration (domain/enforcement.py), below the API:
exact counts after each step, the recount agreeing, the audit log, verdicts."""

from __future__ import annotations

import pytest

from domain import enforcement, reads
from domain.counters import LIKES, VIEWS
from domain.errors import BadUserInput, Forbidden
from domain.identity import Actor
from domain.integrity import Tier, Verdict
from domain.integrity_rules import ActorAssessment as Assessment
from domain.likes import set_reaction
from domain.ports import IntegrityPorts
from domain.reactions import ReactionType as R
from domain.reads import recount
from domain.reconcile import reconcile
from domain.view_recording import record_views
from storage.mongo_integrity import MongoActors, MongoRetiering
from storage.mongo_reactions import MongoReactions
from storage.mongo_view_sessions import MongoViewSessions
from storage.redis_tiers import RedisTierMirror

ADMIN = Actor("ops", frozenset({"admin"}))
CONTENTS = ["v1", "p1"]


@pytest.fixture
def ports(runtime) -> IntegrityPorts:
    db = runtime.db
    mirror = RedisTierMirror(runtime.redis, runtime.services.keys)
    runtime.deps.tiers = mirror
    return IntegrityPorts(
        MongoActors(db),
        mirror,
        MongoRetiering(MongoReactions(db), MongoViewSessions(db)),
        settle_s=0.0,
    )


async def drain(workers) -> None:
    await workers["aggregator"].run_once()


async def public(deps) -> dict[str, tuple[int, int, int, int, int]]:
    """Per content: (likes, views, suspect likes, suspect views, unique viewers)."""
    out = {}
    for s in await reads.summaries(deps, None, CONTENTS):
        i = s.integrity
        out[s.content_id] = (s.likes, s.views, i.suspect_likes, i.suspect_views, s.unique_viewers)
    return out


async def agrees_with_recount(deps) -> None:
    repairs, skipped = await reconcile(deps, CONTENTS, settle_ms=0)
    assert (repairs, skipped) == ([], [])


async def engage(deps, clock, user: str) -> None:
    actor = Actor(user)
    await set_reaction(deps, actor, "v1", R.LIKE)
    await set_reaction(deps, actor, "p1", R.LOVE)
    clock.advance(seconds=1)
    await record_views(
        deps,
        actor,
        [
            {
                "content_id": "p1",
                "session_id": f"{user}-s1",
                "watched_ms": 2_000,
                "visible_fraction": 0.9,
            }
        ],
    )


async def test_an_excluded_actor_leaves_the_counts_and_a_human_verdict_restores_them(
    deps, clock, workers, video, ports
):
    for user in ("bot", "alice", "bob"):
        await engage(deps, clock, user)
    await drain(workers)
    before = await public(deps)
    assert before == {"v1": (3, 0, 0, 0, 0), "p1": (3, 3, 0, 0, 3)}

    moved = await enforcement.assess(
        deps, ports, [Assessment("u:bot", 0.05, ("like_velocity",), {"likes_1m": 90})], clock.now()
    )
    assert moved == 3  # two reactions and one counted session
    await drain(workers)
    assert await public(deps) == {"v1": (2, 0, 1, 0, 0), "p1": (2, 2, 1, 1, 2)}
    await agrees_with_recount(deps)
    truth = await recount(deps, CONTENTS)
    assert truth["p1"].counters[LIKES] == 2 and truth["p1"].counters[VIEWS] == 2
    assert "u:bot" not in truth["p1"].unique_members

    # A new like of the excluded actor is written in its tier: it does not count.
    clock.advance(seconds=5)
    await set_reaction(deps, Actor("bot"), "v1", R.WOW)  # a switch: still one reaction
    await drain(workers)
    assert (await public(deps))["v1"] == (2, 0, 1, 0, 0)
    await agrees_with_recount(deps)

    record = await enforcement.set_verdict(deps, ports, ADMIN, "u:bot", Verdict.HUMAN, "appeal")
    assert record.tier is Tier.TRUSTED and record.verdict == "HUMAN"
    await drain(workers)
    assert await public(deps) == before
    await agrees_with_recount(deps)

    # AUTO goes back to the score (0.05): excluded again, exactly.
    clock.advance(seconds=1)
    await enforcement.set_verdict(deps, ports, ADMIN, "u:bot", Verdict.AUTO, None)
    await drain(workers)
    assert await public(deps) == {"v1": (2, 0, 1, 0, 0), "p1": (2, 2, 1, 1, 2)}
    await agrees_with_recount(deps)

    cases, more = await enforcement.cases(ports, ADMIN, 10, None)
    assert not more
    assert [(c.rule, c.tier_before, c.tier_after, c.by) for c in cases] == [
        ("verdict", Tier.TRUSTED, Tier.EXCLUDED, "ops"),
        ("verdict", Tier.EXCLUDED, Tier.TRUSTED, "ops"),
        ("like_velocity", Tier.TRUSTED, Tier.EXCLUDED, "integrity"),
    ]
    assert cases[2].evidence == {"likes_1m": 90}
    assert (cases[2].trust_before, cases[2].trust_after) == (1.0, 0.05)
    assert cases[1].note == "appeal"
    assert await enforcement.cases(ports, ADMIN, 1, cases[0].entry_id) == ([cases[1]], True)
    with pytest.raises(BadUserInput, match="cursor"):
        await enforcement.cases(ports, ADMIN, 1, "nope")


async def test_doubtful_actors_count_but_not_as_trusted(deps, clock, workers, video, ports):
    for user in ("carol", "dave"):
        await engage(deps, clock, user)
    await enforcement.assess(deps, ports, [Assessment("u:carol", 0.5, ("x",), {})], clock.now())
    await drain(workers)
    (v1, p1) = await reads.summaries(deps, None, CONTENTS)
    assert (v1.likes, v1.integrity.trusted_share) == (2, 0.5)
    assert (p1.likes, p1.views) == (2, 2)
    assert p1.integrity.trusted_share == pytest.approx(0.5)
    await agrees_with_recount(deps)


async def test_the_mirror_is_set_before_documents_move(deps, clock, workers, video, ports):
    await engage(deps, clock, "eve")
    await enforcement.assess(deps, ports, [Assessment("u:eve", 0.1, ("x",), {})], clock.now())
    assert await ports.mirror.get_many(["u:eve", "u:nobody"]) == {"u:eve": Tier.EXCLUDED}
    clock.advance(minutes=1)
    # A small change of score with no change of tier is neither audited nor re-tiered.
    moved = await enforcement.assess(
        deps, ports, [Assessment("u:eve", 0.105, ("x",), {})], clock.now()
    )
    assert moved == 0
    assert len((await enforcement.cases(ports, ADMIN, 10, None))[0]) == 1


@pytest.mark.parametrize("actor", ["bot", "x:1", "u:", "u:" + "a" * 300])
async def test_actor_names_are_checked(ports, deps, actor):
    with pytest.raises(BadUserInput, match="viewer key"):
        await enforcement.actor_risk(ports, ADMIN, actor)


async def test_admins_only(ports, deps):
    with pytest.raises(Forbidden):
        await enforcement.actor_risk(ports, Actor("someone"), "u:bot")
    with pytest.raises(Forbidden):
        await enforcement.set_verdict(deps, ports, Actor("someone"), "u:bot", Verdict.BOT, None)
    with pytest.raises(Forbidden):
        await enforcement.cases(ports, Actor("someone", frozenset({"service"})), 5, None)


async def test_the_mirror_comes_back_from_the_actor_store(deps, clock, workers, video, ports):
    for i, trust in enumerate((0.1, 0.5, 0.9)):
        await enforcement.assess(
            deps, ports, [Assessment(f"u:a{i}", trust, ("x",), {})], clock.now()
        )
    await ports.mirror.set_many({"u:a0": Tier.TRUSTED, "u:a1": Tier.TRUSTED})  # lost
    assert await ports.mirror.get_many(["u:a0", "u:a1", "u:a2"]) == {}
    assert await enforcement.restore_mirror(ports) == 2
    assert await ports.mirror.get_many(["u:a0", "u:a1", "u:a2"]) == {
        "u:a0": Tier.EXCLUDED,
        "u:a1": Tier.DOUBTFUL,
    }


async def test_an_excluded_viewers_new_views_are_suspect_not_public(
    deps, clock, workers, video, ports
):
    await enforcement.set_verdict(deps, ports, ADMIN, "u:viewbot", Verdict.BOT, None)
    for i in range(3):
        clock.advance(hours=25)  # past the dedupe window: each would count
        await record_views(
            deps,
            Actor("viewbot"),
            [
                {
                    "content_id": "p1",
                    "session_id": f"vb{i}",
                    "watched_ms": 2_000,
                    "visible_fraction": 1.0,
                }
            ],
        )
    await engage(deps, clock, "human")
    await drain(workers)
    assert (await public(deps))["p1"] == (1, 1, 0, 3, 1)
    await agrees_with_recount(deps)
    await enforcement.set_verdict(deps, ports, ADMIN, "u:viewbot", Verdict.HUMAN, None)
    await drain(workers)
    assert (await public(deps))["p1"][:4] == (1, 4, 0, 0)
    await agrees_with_recount(deps)


async def test_a_write_that_read_the_old_tier_is_moved_by_the_second_sweep(
    deps, clock, workers, video, ports, monkeypatch
):
    """A first like that read the tier just before the mirror changed, and landed
    just after the first sweep listed the actor's documents."""
    await engage(deps, clock, "late")
    real_get = ports.mirror.get_many

    async def stale(actors):  # what the like read before the mirror changed
        return {}

    async def during_settle(_seconds: float) -> None:
        monkeypatch.setattr(ports.mirror, "get_many", stale)
        await set_reaction(deps, Actor("late"), "p9", R.LIKE)
        monkeypatch.setattr(ports.mirror, "get_many", real_get)

    from domain.catalog import register_content
    from domain.contents import ContentKind
    from tests.integration.conftest import SERVICE

    await register_content(deps, SERVICE, "p9", "creator", ContentKind.POST, None)
    monkeypatch.setattr(enforcement.asyncio, "sleep", during_settle)
    await enforcement.assess(deps, ports, [Assessment("u:late", 0.0, ("x",), {})], clock.now())
    await drain(workers)
    (p9,) = await reads.summaries(deps, None, ["p9"])
    assert (p9.likes, p9.integrity.suspect_likes) == (0, 1)
    repairs, skipped = await reconcile(deps, [*CONTENTS, "p9"], settle_ms=0)
    assert (repairs, skipped) == ([], [])


async def test_folded_sessions_keep_their_tier_in_the_tallies(
    deps, clock, workers, video, ports, mongo_db
):
    """The embedded retention folds old counted sessions into per-content tallies: an
    excluded viewer's view stays out of the public count, as its session did."""
    from datetime import timedelta

    from storage.mongo_retention import MongoRetention

    for user, trust in (("fold-bot", 0.05), ("fold-doubt", 0.5), ("fold-human", 1.0)):
        await record_views(
            deps,
            Actor(user),
            [
                {
                    "content_id": "p1",
                    "session_id": f"{user}-s",
                    "watched_ms": 2_000,
                    "visible_fraction": 1.0,
                    "final": True,
                }
            ],
        )
        await enforcement.assess(
            deps, ports, [Assessment(f"u:{user}", trust, ("x",), {})], clock.now()
        )
    await drain(workers)
    before = await recount(deps, ["p1"])
    assert before["p1"].counters == {"views": 2, "d_views": 1, "x_views": 1}
    # As the outbox relay does once the events are archived and its grace is over.
    await mongo_db["view_sessions"].update_many({}, {"$set": {"outbox": []}})
    assert await MongoRetention(mongo_db).fold_sessions(clock.now() + timedelta(hours=1), 10) == 3
    after = await recount(deps, ["p1"])
    assert after["p1"].counters == before["p1"].counters
    assert after["p1"].unique_members == ["u:fold-doubt", "u:fold-human"]
    await agrees_with_recount(deps)


async def test_a_session_that_moved_meanwhile_is_not_retiered_by_a_stale_page(
    deps, clock, workers, video, mongo_db
):
    await record_views(
        deps,
        Actor("racer"),
        [{"content_id": "p1", "session_id": "r1", "watched_ms": 2_000, "visible_fraction": 1.0}],
    )
    sessions = MongoViewSessions(mongo_db)
    (page,) = [await sessions.counted_of_viewer("u:racer", None, 10)]
    stale = page[0]
    # The session moves on (another event of it) after the page was read.
    await mongo_db["view_sessions"].update_one({"_id": "r1"}, {"$inc": {"version": 1}})
    event = enforcement.session_retier_event(stale, Tier.EXCLUDED, clock.now())
    assert await sessions.retier_many([(stale, event)], Tier.EXCLUDED) == {"r1"}
    (fresh,) = await sessions.counted_of_viewer("u:racer", None, 10)
    event = enforcement.session_retier_event(fresh, Tier.EXCLUDED, clock.now())
    assert await sessions.retier_many([(fresh, event)], Tier.EXCLUDED) == set()
    (moved,) = await sessions.counted_of_viewer("u:racer", None, 10)
    assert moved.tier is Tier.EXCLUDED and moved.version == fresh.version + 1


async def test_the_workers_enforcer_sweeps_again_beside_the_worker(
    deps, clock, workers, video, ports, monkeypatch
):
    """The integrity worker's enforcer returns after the first pass: its second sweep
    waits for the settle time in a task of its own, then moves a write that read the
    old tier, into the tier the actor has then."""
    import asyncio
    from dataclasses import replace

    from domain.catalog import register_content
    from domain.contents import ContentKind
    from tests.integration.conftest import SERVICE

    await register_content(deps, SERVICE, "p9", "creator", ContentKind.POST, None)
    await engage(deps, clock, "late")
    settling = replace(ports, settle_s=7.0)
    enforcer = enforcement.Enforcement(deps, settling)
    released = asyncio.Event()
    real_sleep = asyncio.sleep

    async def held(seconds: float) -> None:
        if seconds == settling.settle_s:
            await released.wait()
        else:
            await real_sleep(seconds)

    monkeypatch.setattr(enforcement.asyncio, "sleep", held)
    # Returns although the settle time has not passed.
    await asyncio.wait_for(
        enforcer.assess([Assessment("u:late", 0.0, ("x",), {})], clock.now()), 30
    )
    real_get = ports.mirror.get_many

    async def stale(actors):  # what the like read before the mirror changed
        return {}

    monkeypatch.setattr(ports.mirror, "get_many", stale)
    await set_reaction(deps, Actor("late"), "p9", R.LIKE)
    monkeypatch.setattr(ports.mirror, "get_many", real_get)
    await drain(workers)
    (p9,) = await reads.summaries(deps, None, ["p9"])
    assert (p9.likes, p9.integrity.suspect_likes) == (1, 0)  # the late like, not moved yet

    released.set()
    await enforcer.settled()
    await drain(workers)
    (p9,) = await reads.summaries(deps, None, ["p9"])
    assert (p9.likes, p9.integrity.suspect_likes) == (0, 1)
    repairs, skipped = await reconcile(deps, [*CONTENTS, "p9"], settle_ms=0)
    assert (repairs, skipped) == ([], [])
