"""The integrity worker on a real Redis: generated streams of every attack category
and of organic users go through it with a fake enforcer; redelivery changes no
feature; a device that turns into a farm re-assesses its earlier accounts."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import fakeredis
import orjson
import pytest

import domain.integrity_rules as integrity_rules
from domain.events import (
    RAW_VIEW,
    REACTION,
    REPLAYED_VIEW,
    VIEW,
    VIEW_END,
    EngagementEvent,
    replayed_view_event_id,
)
from domain.integrity_rules import (
    DEFAULT_RULES_FILE,
    ActorAssessment,
    IntegrityRules,
    parse_integrity_rules,
)
from domain.log import Delivery
from storage.keys import Keys
from storage.redis_integrity import RedisIntegrity
from tests.integration.conftest import RoundTrips
from tests.integration.doubles import T0, FakeClock, FakeConsumer
from workers.integrity import IntegrityWorker, batch_of

RULES = parse_integrity_rules(
    Path(integrity_rules.__file__).with_name(DEFAULT_RULES_FILE).read_text(encoding="utf-8")
)
T0_MS = int(T0.timestamp() * 1000)
MINUTE = 60_000
CONTENTS = [f"c{i}" for i in range(300)]
# (ms since the previous event, watchedMs, positionMs, visibleFraction)
Step = tuple[int, int, int | None, float | None]


class FakeEnforcer:
    def __init__(self) -> None:
        self.calls: list[tuple[list[ActorAssessment], datetime]] = []
        self.trust: dict[str, float] = {}
        self.reasons: dict[str, tuple[str, ...]] = {}

    async def assess(self, assessments: Sequence[ActorAssessment], now: datetime) -> None:
        self.calls.append((list(assessments), now))
        for a in assessments:
            self.trust[a.actor] = a.trust
            self.reasons[a.actor] = a.reasons

    async def settled(self) -> None:
        pass

    def close(self) -> None:
        pass

    def of(self, actor: str) -> float:
        return self.trust.get(actor, 1.0)  # never reported: trusted


class Traffic:
    """Events as the service would log them, with the identity signals."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.items: list[EngagementEvent] = []
        self._n = 0
        self._versions: dict[tuple[str, str], int] = {}

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}-{self._n}"

    def like(self, user: str, content: str, t: int, device: str | None, addr: str | None) -> None:
        version = self._versions.get((user, content), 0) + 1
        self._versions[(user, content)] = version
        self.items.append(
            EngagementEvent(
                event_id=f"r-{user}-{content}-{version}",
                kind=REACTION,
                content_id=content,
                actor=user,
                occurred_at_ms=t,
                deltas={"likes": 1},
                data={"before": None, "after": "LIKE", "device": device, "addr": addr},
            )
        )

    def session(
        self,
        viewer: str,
        content: str,
        t: int,
        steps: Sequence[Step],
        *,
        device: str | None,
        addr: str | None,
        impossible: bool = False,
        counted: bool = True,
        threshold_ms: int | None = None,
        ended: bool = True,
    ) -> int:
        """steps: (ms since the previous event, watchedMs, positionMs, visibleFraction);
        returns the time of the last event. The view counts at the event whose watch
        time reaches ``threshold_ms`` (None: at the last event). ``ended``: the last
        event is final and the session's end is logged (not: a page reloaded)."""
        sid = self._id("s")
        watched_total = 0
        counted_at: int | None = None
        for i, (gap, watched, position, visible) in enumerate(steps):
            t += gap
            watched_total += watched
            if threshold_ms is not None and counted_at is None and watched_total >= threshold_ms:
                counted_at = t
            self.items.append(
                EngagementEvent(
                    event_id=self._id("raw"),
                    kind=RAW_VIEW,
                    content_id=content,
                    actor=viewer,
                    occurred_at_ms=t,
                    deltas={},
                    data={
                        "session_id": sid,
                        "watched_ms": watched,
                        "position_ms": position,
                        "visible_fraction": visible,
                        "final": ended and i == len(steps) - 1,
                        "accepted_ms": 0 if impossible and i else watched,
                        "device": device,
                        "addr": addr,
                    },
                )
            )
        if counted:
            self.items.append(
                EngagementEvent(
                    event_id=f"v-{sid}",
                    kind=VIEW,
                    content_id=content,
                    actor=viewer,
                    occurred_at_ms=t if counted_at is None else counted_at,
                    deltas={"views": 1},
                    unique=viewer,
                    data={"session_id": sid, "device": device, "addr": addr},
                )
            )
        if not ended:
            return t
        self.items.append(
            EngagementEvent(
                event_id=f"e-{sid}",
                kind=VIEW_END,
                content_id=content,
                actor=viewer,
                occurred_at_ms=t,
                deltas={},
                data={"session_id": sid, "watched_ms": watched_total},
            )
        )
        return t

    def human_steps(self, seconds: float) -> list[Step]:
        """A person's playback: a first event near the start, heartbeats about every
        10 s (timer jitter, now and then a pause), stops after ``seconds``."""
        rng = self.rng
        first = rng.randint(150, 1_400)
        steps: list[Step] = [(0, first, first, None)]
        position, left = first, int(seconds * 1000)
        while left > 0:
            gap = rng.randint(9_400, 10_700)
            watched = gap if rng.random() > 0.1 else rng.randint(0, gap // 2)  # paused a while
            watched = min(watched, left)
            position += watched
            left -= max(watched, 1_000)
            steps.append((gap, watched, position, None))
        return steps


def deliveries_of(items: list[EngagementEvent], slice_ms: int = 30_000) -> list[Delivery]:
    """Time slices of the traffic, one log entry each: raw view events in their own
    field, as the stream adapter delivers them."""
    items = sorted(items, key=lambda e: e.occurred_at_ms)
    out: list[Delivery] = []
    i = 0
    while i < len(items):
        end = (items[i].occurred_at_ms // slice_ms + 1) * slice_ms
        chunk = []
        while i < len(items) and items[i].occurred_at_ms < end:
            chunk.append(items[i])
            i += 1
        raw = [e.to_dict() for e in chunk if e.kind == RAW_VIEW]
        out.append(
            Delivery(
                partition=0,
                message_id=f"{end}-0",
                events=tuple(e for e in chunk if e.kind != RAW_VIEW),
                raw_views=orjson.dumps(raw) if raw else None,
                raw_view_count=len(raw),
            )
        )
    return out


def make_worker(redis_client, clock: FakeClock, rules: IntegrityRules = RULES):
    store = RedisIntegrity(redis_client, Keys(), rules.windows, dedupe_horizon_ms=3_600_000)
    enforcer = FakeEnforcer()
    consumer = FakeConsumer()
    worker = IntegrityWorker(consumer, store, rules, enforcer, clock, batch=200)
    return worker, store, enforcer, consumer


async def run(worker: IntegrityWorker, clock: FakeClock, deliveries: list[Delivery]) -> None:
    for d in deliveries:
        clock.at = T0 + timedelta(milliseconds=int(d.message_id.split("-")[0]) - T0_MS)
        await worker.process([d])
    await worker.flush()


# --------------------------------------------------------------------------- traffic


def organic(tr: Traffic) -> dict[str, list[str]]:
    """Ordinary users at home, a campus behind one address (signed in and
    anonymous), and heavy but honest users; actors per group."""
    rng = tr.rng
    groups: dict[str, list[str]] = {"home": [], "campus": [], "heavy": []}

    def browse(viewer: str, device: str, addr: str, sessions: int, like_p: float) -> None:
        t = T0_MS + rng.randint(0, 50 * MINUTE)
        for _ in range(sessions):
            content = rng.choice(CONTENTS)
            end = tr.session(
                viewer,
                content,
                t,
                tr.human_steps(rng.uniform(4, 150)),
                device=device,
                addr=addr,
            )
            if viewer.startswith("u:") and rng.random() < like_p:
                tr.like(viewer[2:], content, end + rng.randint(300, 4_000), device, addr)
            t = end + rng.randint(2_000, 120_000)

    for i in range(40):
        actor = f"u:home-{i}"
        groups["home"].append(actor)
        browse(actor, f"phone-home-{i}", f"addr-home-{i % 25}", rng.randint(3, 15), 0.3)
    for i in range(150):
        actor = f"u:student-{i}"
        groups["campus"].append(actor)
        browse(actor, f"phone-student-{i}", "addr-campus", rng.randint(1, 6), 0.3)
    for i in range(120):
        actor = f"d:campus-laptop-{i}"
        groups["campus"].append(actor)
        browse(actor, f"campus-laptop-{i}", "addr-campus", rng.randint(1, 4), 0.0)
    for i in range(6):
        # Heavy: back-to-back shorts for 50 minutes, liking most of them.
        user = f"heavy-{i}"
        groups["heavy"].append(f"u:{user}")
        device, addr = f"phone-heavy-{i}", "addr-campus" if i % 2 else f"addr-heavy-{i}"
        t = T0_MS + rng.randint(0, 5 * MINUTE)
        while t < T0_MS + 55 * MINUTE:
            content = rng.choice(CONTENTS)
            end = tr.session(
                f"u:{user}",
                content,
                t,
                tr.human_steps(rng.uniform(3, 25)),
                device=device,
                addr=addr,
            )
            if rng.random() < 0.6:
                tr.like(user, content, end + rng.randint(400, 2_500), device, addr)
            t = end + rng.randint(1_500, 6_000)
    return groups


def attacks(tr: Traffic) -> dict[str, list[str]]:
    rng = tr.rng
    out: dict[str, list[str]] = {}
    target = "target"

    def scripted(n: int, every: int, watched: int) -> list[Step]:
        return [(0 if i == 0 else every, watched, watched * (i + 1), None) for i in range(n)]

    # Bot likes: 40 accounts on 4 devices, a dozen blind likes each.
    out["bot_likes"] = []
    for i in range(40):
        user = f"botlike-{i}"
        out["bot_likes"].append(f"u:{user}")
        t = T0_MS + rng.randint(0, 20 * MINUTE)
        for c in [target, *rng.sample(CONTENTS, 11)]:
            t += rng.randint(3_000, 20_000)
            tr.like(user, c, t, f"botlike-dev-{i % 4}", f"addr-dc-{i % 7}")
    # Click farm: people on a few shared phones, watching then liking the target.
    out["click_farm"] = []
    for i in range(30):
        user = f"clicker-{i}"
        out["click_farm"].append(f"u:{user}")
        t = T0_MS + rng.randint(0, 40 * MINUTE)
        device = f"farm-phone-{i % 3}"
        end = tr.session(
            f"u:{user}",
            target,
            t,
            tr.human_steps(rng.uniform(31, 45)),
            device=device,
            addr="addr-farm",
        )
        tr.like(user, target, end + rng.randint(500, 3_000), device, "addr-farm")
    # View bots: anonymous, twenty sessions at once, jittered like a person (no two
    # alike): only the watch time no single screen can hold gives them away.
    out["view_bots"] = []
    for i in range(5):
        actor = f"d:viewbot-{i}"
        out["view_bots"].append(actor)
        for wave in range(3):
            start = T0_MS + wave * 20 * MINUTE + rng.randint(0, MINUTE)
            for j in range(20):
                tr.session(
                    actor,
                    CONTENTS[(wave * 20 + j) % 300],
                    start + rng.randint(0, 10_000),
                    tr.human_steps(rng.uniform(150, 200)),
                    device=actor[2:],
                    addr=f"addr-vps-{i}",
                )
    # Refresh spam: one browser reloading the target every ~40 s.
    out["refresh_spam"] = []
    for i in range(3):
        actor = f"d:reloader-{i}"
        out["refresh_spam"].append(actor)
        t = T0_MS + rng.randint(0, MINUTE)
        for _ in range(75):
            first = rng.randint(2_000, 4_000)
            t = tr.session(
                actor,
                target,
                t,
                [(0, first, first, None)],
                device=actor[2:],
                addr=f"addr-reload-{i}",
            ) + rng.randint(30_000, 45_000)
    # Scripted autoplay: a hidden tab playing the feed, unseen, position stuck.
    out["scripted_autoplay"] = []
    for i in range(4):
        actor = f"d:hidden-tab-{i}"
        out["scripted_autoplay"].append(actor)
        t = T0_MS + rng.randint(0, 5 * MINUTE)
        for j in range(12):
            steps: list[Step] = [
                (0 if k == 0 else rng.randint(4_000, 9_000), rng.randint(1_000, 4_000), 0, 0.0)
                for k in range(6)
            ]
            t = tr.session(
                actor,
                CONTENTS[(i * 12 + j) % 300],
                t,
                steps,
                device=actor[2:],
                addr=f"addr-home-{i}",
            ) + rng.randint(5_000, 60_000)
    # Play/pause cycling: toggling to mint events.
    out["play_pause_cycling"] = []
    for i in range(4):
        actor = f"d:toggler-{i}"
        out["play_pause_cycling"].append(actor)
        t = T0_MS + rng.randint(0, 5 * MINUTE)
        for j in range(5):
            steps = [(0, 1_000, 1_000, None)]
            position = 1_000
            for _ in range(30):
                w = rng.randint(100, 450)
                position += w
                steps.append((rng.randint(600, 1_500), w, position, None))
            t = tr.session(
                actor, CONTENTS[j], t, steps, device=actor[2:], addr=f"addr-home-{i + 4}"
            ) + rng.randint(5_000, 30_000)
    # Replays: captured sessions sent again and again, by several accounts.
    out["replays"] = []
    for i in range(10):
        actor = f"u:replayer-{i}"
        out["replays"].append(actor)
        for j in range(8):
            t = T0_MS + j * 6 * MINUTE + rng.randint(0, 5 * MINUTE)
            tr.session(
                actor,
                target,
                t,
                scripted(7, 5_000, 5_000),
                device=f"replay-dev-{i}",
                addr=f"addr-replay-{i}",
            )
    # Fake accounts: fresh accounts, five per phone, liking blind.
    out["fake_accounts"] = []
    for i in range(20):
        user = f"fake-{i}"
        out["fake_accounts"].append(f"u:{user}")
        t = T0_MS + rng.randint(0, 30 * MINUTE)
        for c in [target, *rng.sample(CONTENTS, 9)]:
            t += rng.randint(20_000, 90_000)
            tr.like(user, c, t, f"fake-phone-{i // 5}", f"addr-carrier-{i % 3}")
    # Rotating device ids behind one address, each new device playing the target
    # the same scripted way.
    out["rotating_devices"] = []
    for i in range(100):
        actor = f"d:rot-{i}"
        out["rotating_devices"].append(actor)
        t = T0_MS + i * 30_000 + rng.randint(0, 5_000)
        tr.session(
            actor, target, t, scripted(4, 10_000, 10_000), device=actor[2:], addr="addr-rotator"
        )
    # Account farm sharing devices: 24 accounts on two phones, views and likes.
    out["account_farm"] = []
    for i in range(24):
        user = f"farmacct-{i}"
        out["account_farm"].append(f"u:{user}")
        device = f"farm-device-{i % 2}"
        t = T0_MS + rng.randint(0, 45 * MINUTE)
        for c in rng.sample(CONTENTS, 3):
            end = tr.session(
                f"u:{user}",
                c,
                t,
                tr.human_steps(rng.uniform(10, 40)),
                device=device,
                addr=f"addr-home-{i % 25}",
            )
            tr.like(user, c, end + 1_000, device, f"addr-home-{i % 25}")
            t = end + rng.randint(10_000, 60_000)
    # Like sprees: hundreds of likes in minutes.
    out["like_spree"] = []
    for i in range(3):
        user = f"spree-{i}"
        out["like_spree"].append(f"u:{user}")
        t = T0_MS + rng.randint(0, 30 * MINUTE)
        for c in rng.sample(CONTENTS, 250):
            t += rng.randint(800, 2_500)
            tr.like(user, c, t, f"spree-phone-{i}", f"addr-home-{i}")
    # Scripted identical playback from many addresses: one account, device and
    # address each, one identical session on the target.
    out["identical_crowd"] = []
    for i in range(60):
        actor = f"u:puppet-{i}"
        out["identical_crowd"].append(actor)
        t = T0_MS + rng.randint(0, 50 * MINUTE)
        tr.session(
            actor,
            target,
            t,
            scripted(5, 7_000, 7_000),
            device=f"puppet-phone-{i}",
            addr=f"addr-proxy-{i}",
        )
    # Impossible timing: watch claimed faster than the wall clock.
    out["impossible_timing"] = []
    for i in range(3):
        actor = f"d:fastforward-{i}"
        out["impossible_timing"].append(actor)
        t = T0_MS + rng.randint(0, 10 * MINUTE)
        for j in range(4):
            fast: list[Step] = [
                (0 if k == 0 else 2_000, 30_000, 30_000 * (k + 1), None) for k in range(4)
            ]
            t = (
                tr.session(
                    actor,
                    CONTENTS[j],
                    t,
                    fast,
                    device=actor[2:],
                    addr=f"addr-home-{i}",
                    impossible=True,
                )
                + 60_000
            )
    return out


async def test_attacks_are_excluded_and_organic_users_stay_trusted(redis_client) -> None:
    clock = FakeClock()
    worker, _, enforcer, consumer = make_worker(redis_client, clock)
    tr = Traffic(seed=13)
    honest = organic(tr)
    bad = attacks(tr)
    deliveries = deliveries_of(tr.items)
    await run(worker, clock, deliveries)
    assert len(consumer.acked) == len(deliveries)

    for category, actors in bad.items():
        kept = {a: enforcer.of(a) for a in actors if enforcer.of(a) >= RULES.exclude_below}
        assert not kept, (category, kept, {a: enforcer.reasons.get(a) for a in kept})
    for group, actors in honest.items():
        doubted = {a: enforcer.of(a) for a in actors if enforcer.of(a) < RULES.confident_at}
        assert not doubted, (group, doubted, {a: enforcer.reasons.get(a) for a in doubted})
    # Reasons name the categories' signals.
    assert "shared_device_accounts" in enforcer.reasons["u:clicker-0"]
    assert "identical_crowd" in enforcer.reasons["d:rot-0"]
    # A blind spree is out at its 15th like, before it reaches 30 in 5 minutes.
    assert "blind_like_volume" in enforcer.reasons["u:spree-0"]
    assert "impossible_timing" in enforcer.reasons["d:fastforward-0"]
    assert "watch_overlap" in enforcer.reasons["d:viewbot-0"]


async def test_redelivery_does_not_change_features(redis_client) -> None:
    clock = FakeClock()
    worker, store, enforcer, _ = make_worker(redis_client, clock)
    tr = Traffic(seed=5)
    for i in range(45):
        tr.like("spree", f"c{i}", T0_MS + i * 1_000, "phone", "addr")
    tr.session("d:x", "c1", T0_MS, tr.human_steps(40), device="x", addr="addr")
    [delivery] = deliveries_of(tr.items, slice_ms=3_600_000)
    clock.at = T0 + timedelta(minutes=1)
    assert await worker.process([delivery]) == len(tr.items)
    await worker.flush()
    now_ms = T0_MS + MINUTE
    before, _, _ = await store.read(["u:spree", "d:x"], {}, {}, now_ms)
    calls = len(enforcer.calls)
    assert enforcer.trust["u:spree"] < RULES.exclude_below

    assert await worker.process([delivery]) == 0  # every token applied before
    await worker.flush()
    after, _, _ = await store.read(["u:spree", "d:x"], {}, {}, now_ms)
    assert after["u:spree"].features == before["u:spree"].features
    assert after["d:x"].features == before["d:x"].features
    assert before["u:spree"].features.likes == 45
    assert before["d:x"].features.sessions == 1
    assert len(enforcer.calls) == calls  # nothing moved: the enforcer is not told again


async def test_a_device_that_turns_into_a_farm_reassesses_its_earlier_accounts(
    redis_client,
) -> None:
    clock = FakeClock()
    worker, _, enforcer, _ = make_worker(redis_client, clock)
    early = Traffic(seed=1)
    # Accounts taking turns slowly (one every 20 minutes): not switching fast.
    for i in range(3):
        early.like(f"acct-{i}", "c1", T0_MS + i * 20 * MINUTE, "tablet", f"addr-{i}")
    await run(worker, clock, deliveries_of(early.items))
    assert enforcer.calls == []  # three accounts on a tablet: nothing to say

    late = Traffic(seed=2)
    for i in range(3, 9):
        late.like(f"acct-{i}", "c2", T0_MS + 60 * MINUTE + i * 1_000, "tablet", f"addr-{i}")
    await run(worker, clock, deliveries_of(late.items))
    for i in range(9):
        actor = f"u:acct-{i}"
        assert enforcer.of(actor) < RULES.exclude_below, actor
        # Nine accounts in a day, six of them within seconds: both device rules.
        assert enforcer.reasons[actor] == ("account_switching", "shared_device_accounts")
    # The earlier accounts were told in the batch that made the device a farm.
    [(told, _)] = enforcer.calls
    assert {a.actor for a in told} == {f"u:acct-{i}" for i in range(9)}
    assert told[0].evidence["device_accounts"] == 9
    assert told[0].evidence["device_recent_accounts"] == 6


async def test_integrity_and_unknown_events_are_ignored(redis_client) -> None:
    clock = FakeClock()
    worker, store, enforcer, consumer = make_worker(redis_client, clock)
    events = (
        EngagementEvent("i-1", "integrity", "c1", "u:a", T0_MS, {"likes": -1}),
        EngagementEvent("x-1", "something_new", "c1", "u:a", T0_MS, {}),
    )
    delivery = Delivery(0, "1-0", events)
    assert await worker.process([delivery]) == 0
    assert consumer.acked == [delivery]
    assert enforcer.calls == []
    states, _, _ = await store.read(["u:a"], {}, {}, T0_MS)
    assert states["u:a"].features.likes == 0


async def test_a_batch_is_one_round_trip_to_record_and_one_to_read(
    redis_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    worker, store, _, _ = make_worker(redis_client, clock)
    await store.load_scripts()
    tr = Traffic(seed=3)
    for i in range(50):
        tr.session(
            f"d:dev-{i}",
            f"c{i}",
            T0_MS,
            tr.human_steps(30),
            device=f"dev-{i}",
            addr=f"addr-{i % 5}",
        )
        tr.like(f"user-{i}", f"c{i}", T0_MS + 40_000, f"dev-{i}", f"addr-{i % 5}")
    [delivery] = deliveries_of(tr.items, slice_ms=3_600_000)
    clock.at = T0 + timedelta(minutes=2)
    trips = RoundTrips(monkeypatch)
    await worker.process([delivery])
    assert trips.count == 2


@pytest.mark.parametrize("offset_s", [0, 150, 200, 240, 299])
@pytest.mark.parametrize(
    ("likes", "every_ms", "peak"),
    [
        (60, 3_000, 60),  # 60 likes in 3 minutes: every one inside some 5 minutes
        (60, 15_000, 20),  # 60 in 15 minutes: 20 in any 5 (a like every 15 s)
    ],
)
async def test_a_peak_is_the_most_in_any_five_minutes_wherever_the_clock_is(
    redis_client, offset_s: int, likes: int, every_ms: int, peak: int
) -> None:
    """A pace that straddles a 5-minute clock boundary peaks as high as one inside it
    (clock-aligned 5-minute buckets split 73 likes over 3 minutes into 45 and 28)."""
    clock = FakeClock()
    worker, store, _, _ = make_worker(redis_client, clock)
    start = (T0_MS // (5 * MINUTE)) * 5 * MINUTE + offset_s * 1000
    tr = Traffic(seed=3)
    for i in range(likes):
        tr.like("pacer", f"c{i}", start + i * every_ms, "phone", "addr")
    await run(worker, clock, deliveries_of(tr.items))
    end = start + (likes - 1) * every_ms + 1
    states, _, _ = await store.read(["u:pacer"], {}, {}, end)
    features = states["u:pacer"].features
    assert features.likes == likes
    assert features.likes_peak == peak


@pytest.mark.parametrize("jitter_ms", [0, 400, 2_500])
async def test_identical_scripted_playback_is_one_crowd_whatever_the_network_did(
    redis_client, jitter_ms: int
) -> None:
    """Thirty fresh devices behind one address play the same script (start, three
    10 s heartbeats, an end at 31.5 s). The network delays each event differently;
    what the clients reported is identical, so they are one crowd. People playing
    the same video report their own clocks, and stay apart."""
    clock = FakeClock()
    worker, _, enforcer, _ = make_worker(redis_client, clock)
    tr = Traffic(seed=8)
    rng = random.Random(jitter_ms)
    script = [(0, 0, 0), (10_000, 10_000, 10_000), (10_000, 10_000, 20_000)]
    script += [(10_000, 10_000, 30_000), (1_500, 1_500, 31_500)]
    for i in range(30):
        steps: list[Step] = [
            (gap + (rng.randint(0, jitter_ms) if gap else 0), watched, position, None)
            for gap, watched, position in script
        ]
        tr.session(f"d:bot-{i}", "c1", T0_MS + i * 2_000, steps, device=f"bot-{i}", addr="nat")
    people = [f"d:person-{i}" for i in range(30)]
    for i, actor in enumerate(people):
        start = T0_MS + i * 2_000
        # People stop where they like. (One who stopped right at the count, among
        # thirty one-off devices that all did, would be held to that crowd.)
        steps = tr.human_steps(rng.uniform(45, 240))
        tr.session(actor, "c1", start, steps, device=actor[2:], addr="nat", threshold_ms=30_000)
    await run(worker, clock, deliveries_of(tr.items))
    for i in range(30):
        assert enforcer.of(f"d:bot-{i}") < RULES.exclude_below
        assert "identical_crowd" in enforcer.reasons[f"d:bot-{i}"]
    for actor in people:
        assert enforcer.of(actor) >= RULES.confident_at, (actor, enforcer.reasons.get(actor))


@pytest.mark.parametrize(
    ("watched_ms", "crowd"),
    [
        (412, False),  # a scroll past a post: one report, under a second
        (999, False),
        (1_000, True),
        (35_000, True),  # one report of a whole play, sent by a script from many places
    ],
)
async def test_only_a_report_that_says_enough_joins_an_identical_crowd(
    redis_client, watched_ms: int, crowd: bool
) -> None:
    """Thirty devices behind one address, each sending one final event with the same
    watch time. Under a second, that agreement is chance on a popular post (hundreds
    scroll past in 150-700 ms) and no view counted for it; a longer one is a script's."""
    clock = FakeClock()
    worker, _, enforcer, _ = make_worker(redis_client, clock)
    tr = Traffic(seed=12)
    for i in range(30):
        tr.session(
            f"d:glance-{i}",
            "p1",
            T0_MS + i * 2_000,
            [(0, watched_ms, 0, None)],
            device=f"glance-{i}",
            addr=f"home-{i}",
            counted=watched_ms >= 1_000,
        )
    await run(worker, clock, deliveries_of(tr.items))
    flagged = [
        i for i in range(30) if "identical_crowd" in enforcer.reasons.get(f"d:glance-{i}", ())
    ]
    assert (len(flagged) == 30) if crowd else not flagged


async def test_the_embedded_redis_runs_the_same_scripts() -> None:
    """fakeredis (the embedded mode's Redis) lacks parts of Redis's Lua API, such as
    redis.sha1hex: the worker's scripts must run there too, with the same verdicts."""
    fake = fakeredis.FakeAsyncRedis(decode_responses=True)
    clock = FakeClock()
    worker, _, enforcer, _ = make_worker(fake, clock)
    tr = Traffic(seed=8)
    script: list[Step] = [(0, 0, 0, None), (10_000, 10_000, 10_000, None)]
    script += [(10_000, 10_000, 20_000, None), (1_500, 1_500, 21_500, None)]
    for i in range(25):
        tr.session(f"d:bot-{i}", "c1", T0_MS + i * 2_000, script, device=f"bot-{i}", addr="nat")
    await run(worker, clock, deliveries_of(tr.items))
    for i in range(25):
        assert enforcer.of(f"d:bot-{i}") < RULES.exclude_below
        assert "identical_crowd" in enforcer.reasons[f"d:bot-{i}"]
    await fake.aclose()


# --------------------------------------------------------------------------- new categories


async def test_likes_on_contents_opened_but_never_counted_exclude_and_a_later_count_clears(
    redis_client,
) -> None:
    """A bot that opens each content (the player's start event), likes it a second
    later and moves on: every like is a glance. A person who likes a second into a
    playback and watches on until the view counts is supported after all."""
    clock = FakeClock()
    worker, store, enforcer, _ = make_worker(redis_client, clock)
    tr = Traffic(seed=21)
    t = T0_MS
    for i in range(25):
        tr.session(
            "u:glancer", f"c{i}", t, [(0, 0, 0, None)], device="gl", addr="dc", counted=False
        )
        tr.like("glancer", f"c{i}", t + 1_000, "gl", "dc")
        t += 4_000
        # The person: start, like at 1 s, heartbeats until the view counts at 2 s+.
        watched = tr.rng.randint(3_000, 9_000)  # a person's own length each time
        steps: list[Step] = [(0, 0, 0, None), (watched, watched, watched, None)]
        tr.session("u:fan", f"c{i}", t, steps, device="fan", addr="home", threshold_ms=2_000)
        tr.like("fan", f"c{i}", t + 1_000, "fan", "home")
        t += 6_000
    await run(worker, clock, deliveries_of(tr.items, slice_ms=2_000))
    assert enforcer.of("u:glancer") < RULES.exclude_below
    assert "glance_likes" in enforcer.reasons["u:glancer"]
    assert enforcer.of("u:fan") == 1.0, enforcer.reasons.get("u:fan")
    states, _, _ = await store.read(["u:glancer", "u:fan"], {}, {}, t)
    assert (states["u:glancer"].features.glance_likes, states["u:fan"].features.glance_likes) == (
        25,
        0,
    )
    assert states["u:fan"].features.blind_likes == 0


async def test_accounts_liking_one_content_blind_from_one_address_are_a_crowd(
    redis_client,
) -> None:
    """Fresh accounts, one blind like each on one post, from one address. Neighbours
    behind the same address who liked it after seeing it are not in the crowd, and
    an account that opens the post after its like leaves it."""
    clock = FakeClock()
    worker, _, enforcer, _ = make_worker(redis_client, clock)
    tr = Traffic(seed=22)
    for i in range(10):
        tr.like(f"fresh-{i}", "post", T0_MS + i * 3_000, None, "dc-1")
    for i in range(10):
        user = f"neighbour-{i}"
        seen: list[Step] = [(0, tr.rng.randint(1_100, 4_000), None, 0.9)]
        end = tr.session(f"u:{user}", "post", T0_MS + i * 2_000, seen, device=None, addr="dc-1")
        tr.like(user, "post", end + 500, None, "dc-1")
    # A blind like elsewhere, and one that opens the post afterwards.
    tr.like("lone", "post", T0_MS, None, "home")
    tr.like("late-viewer", "post", T0_MS + 1_000, None, "dc-1")
    tr.session(
        "u:late-viewer", "post", T0_MS + 5_000, [(0, 1_500, None, 0.9)], device=None, addr="dc-1"
    )
    await run(worker, clock, deliveries_of(tr.items, slice_ms=5_000))
    for i in range(10):
        assert enforcer.of(f"u:fresh-{i}") < RULES.exclude_below, i  # the first ones too
        assert enforcer.reasons[f"u:fresh-{i}"] == ("blind_crowd",)
    for user in [f"neighbour-{i}" for i in range(10)] + ["lone", "late-viewer"]:
        assert enforcer.of(f"u:{user}") >= RULES.confident_at, (
            user,
            enforcer.reasons.get(f"u:{user}"),
        )


async def test_phones_switching_accounts_behind_one_address_are_a_farm(redis_client) -> None:
    """Twelve phones behind one address, each going through accounts a minute apart:
    each phone alone looks like a family tablet for a while; together they are a
    farm, and the phones' earlier accounts go too. A family tablet (three accounts
    over a day) and a home where two people share a phone stay trusted."""
    clock = FakeClock()
    worker, _, enforcer, _ = make_worker(redis_client, clock)
    tr = Traffic(seed=23)
    farm = []
    for k in range(12):
        for a in range(2):
            user = f"farm-{k}-{a}"
            farm.append(f"u:{user}")
            t = T0_MS + a * 60_000 + k * 5_000
            end = tr.session(
                f"u:{user}", f"t{a}", t, tr.human_steps(5), device=f"phone-{k}", addr="farm"
            )
            tr.like(user, f"t{a}", end + 500, f"phone-{k}", "farm")
    for i in range(3):
        t = T0_MS + i * 4 * 60 * MINUTE
        end = tr.session(f"u:fam-{i}", "c1", t, tr.human_steps(20), device="tablet", addr="home")
        tr.like(f"fam-{i}", "c1", end + 500, "tablet", "home")
    for i in range(2):
        end = tr.session(
            f"u:pair-{i}",
            "c2",
            T0_MS + i * 90_000,
            tr.human_steps(20),
            device="shared",
            addr="flat",
        )
        tr.like(f"pair-{i}", "c2", end + 500, "shared", "flat")
    await run(worker, clock, deliveries_of(tr.items))
    for actor in farm:
        assert enforcer.of(actor) < RULES.exclude_below, (actor, enforcer.reasons.get(actor))
        assert "switching_crowd" in enforcer.reasons[actor]
    for actor in ["u:fam-0", "u:fam-1", "u:fam-2", "u:pair-0", "u:pair-1"]:
        assert enforcer.of(actor) >= RULES.confident_at, (actor, enforcer.reasons.get(actor))


async def test_one_off_devices_that_stop_at_the_count_are_a_crowd(redis_client) -> None:
    """Fresh device ids behind one address, each playing one video once, with human
    timing, each stopping just after its view counted (30 s): the rotating view bot.
    Phones behind the same address that start their day on the same video and go on
    to others are seen again, and leave the crowd; people who watch a clip whole stop
    at one place, its end, and are no crowd."""
    clock = FakeClock()
    worker, _, enforcer, _ = make_worker(redis_client, clock)
    tr = Traffic(seed=24)
    rng = random.Random(24)
    bots = [f"d:rot-{i}" for i in range(16)]
    for i, actor in enumerate(bots):
        steps = tr.human_steps(rng.uniform(31, 38))
        tr.session(
            actor,
            "v1",
            T0_MS + i * 20_000,
            steps,
            device=actor[2:],
            addr="nat",
            threshold_ms=30_000,
        )
    # A 34 s clip shared around the same address: everyone who watches it whole
    # stops at its end, right after the count, at one place.
    clip = [f"d:clip-{i}" for i in range(16)]
    for i, actor in enumerate(clip):
        beats = [rng.randint(9_500, 10_500) for _ in range(3)]  # their own clocks
        steps = [(0, 0, 0, None)]
        for beat in beats:
            steps.append((beat, beat, steps[-1][2] + beat, None))  # type: ignore[operator]
        steps.append((34_000 - sum(beats), 34_000 - sum(beats), 34_000, None))
        tr.session(
            actor,
            "clip",
            T0_MS + i * 20_000,
            steps,
            device=actor[2:],
            addr="nat",
            threshold_ms=30_000,
        )
    phones = [f"d:phone-{i}" for i in range(14)]
    for i, actor in enumerate(phones):
        t = T0_MS + i * 20_000 + 5_000
        for content in ("v1", rng.choice(CONTENTS), rng.choice(CONTENTS)):
            steps = tr.human_steps(rng.uniform(31, 37))
            t = tr.session(
                actor, content, t, steps, device=actor[2:], addr="nat", threshold_ms=30_000
            )
            t += rng.randint(2_000, 10_000)
    await run(worker, clock, deliveries_of(tr.items, slice_ms=10_000))
    for actor in bots:
        assert enforcer.of(actor) < RULES.exclude_below, (actor, enforcer.reasons.get(actor))
        assert enforcer.reasons[actor] == ("one_off_crowd",)
    for actor in phones + clip:
        assert enforcer.of(actor) >= RULES.confident_at, (actor, enforcer.reasons.get(actor))


async def test_a_page_reloaded_mid_playback_again_and_again_is_a_reload_script(
    redis_client,
) -> None:
    """A reload script starts a new session on its short each time the one before has
    just passed the count, without ending it: reloads. A person reloading a stalled
    page a few times, a track on repeat whose sessions end, and sessions left open
    but re-opened minutes later are not."""
    clock = FakeClock()
    worker, store, enforcer, _ = make_worker(redis_client, clock)
    tr = Traffic(seed=31)
    t = T0_MS
    for i in range(18):
        steps: list[Step] = [(0, 0, 0, None), (2_200, 2_200, 2_200, None)]
        t = tr.session(
            "d:reloader",
            "c0",
            t,
            steps,
            device="reloader",
            addr="home-1",
            counted=i == 0,
            ended=False,
        ) + tr.rng.randint(300, 900)
    t = T0_MS
    for _ in range(6):  # a stalled video, reloaded five times
        steps = [(0, 0, 0, None), (4_000, 4_000, 4_000, None)]
        t = (
            tr.session(
                "u:stalled", "c1", t, steps, device="p1", addr="home-2", counted=False, ended=False
            )
            + 2_000
        )
    t = T0_MS
    for i in range(15):  # a track on repeat, each play ended at the end of the media
        t = tr.session(
            "u:looper", "c2", t, tr.human_steps(30), device="p2", addr="home-3", counted=i == 0
        )
    t = T0_MS
    for i in range(12):  # left open (the app killed), opened again minutes later
        steps = [(0, 0, 0, None), (5_000, 5_000, 5_000, None)]
        t = (
            tr.session(
                "u:returner",
                "c3",
                t,
                steps,
                device="p3",
                addr="home-4",
                counted=i == 0,
                ended=False,
            )
            + 4 * MINUTE
        )
    await run(worker, clock, deliveries_of(tr.items, slice_ms=5_000))
    states, _, _ = await store.read(
        ["d:reloader", "u:stalled", "u:looper", "u:returner"], {}, {}, T0_MS + 10 * MINUTE
    )
    reloads = {a: s.features.max_content_reloads for a, s in states.items()}
    assert reloads == {"d:reloader": 17, "u:stalled": 5, "u:looper": 0, "u:returner": 0}
    assert states["d:reloader"].features.max_content_sessions == 18  # below repeat_sessions
    assert enforcer.of("d:reloader") < RULES.exclude_below
    assert "reloads" in enforcer.reasons["d:reloader"]
    for actor in ("u:stalled", "u:looper", "u:returner"):
        assert enforcer.of(actor) == 1.0, (actor, enforcer.reasons.get(actor))


def replayed(content: str, session: str, viewer: str, addr: str, t: int) -> EngagementEvent:
    """What the view path logs when a session's event comes again verbatim."""
    return EngagementEvent(
        event_id=replayed_view_event_id(content, session, viewer, addr),
        kind=REPLAYED_VIEW,
        content_id=content,
        actor=viewer,
        occurred_at_ms=t,
        deltas={},
        data={"session_id": session, "addr": addr, "device": viewer[2:]},
    )


async def test_a_session_sent_again_from_many_addresses_is_a_replayed_capture(
    redis_client,
) -> None:
    """A captured playback sent again verbatim from four addresses: its viewer is
    excluded, with its one counted view. A phone that resends a session whose answer
    it lost, from its own address and once after a handover, is not."""
    clock = FakeClock()
    worker, store, enforcer, _ = make_worker(redis_client, clock)
    tr = Traffic(seed=37)
    steps: list[Step] = [(0, 35_000, 35_000, None)]
    end = tr.session("d:captured", "c0", T0_MS, steps, device="captured", addr="home-1")
    sid = tr.items[0].data["session_id"]
    for r in range(4):
        for _ in range(3):  # the same address again is the same evidence
            tr.items.append(replayed("c0", sid, "d:captured", f"proxy-{r}", end + 5_000 * (r + 1)))
    end = tr.session("d:phone", "c1", T0_MS, steps, device="phone", addr="home-2")
    phone_sid = tr.items[-2].data["session_id"]
    tr.items.append(replayed("c1", phone_sid, "d:phone", "home-2", end + 2_000))
    tr.items.append(replayed("c1", phone_sid, "d:phone", "cell-2", end + 9_000))
    deliveries = deliveries_of(tr.items, slice_ms=5_000)
    # The replaying addresses are not the viewer's: they join none of its groups.
    assert set(batch_of(deliveries).addresses) == {"home-1", "home-2"}
    await run(worker, clock, deliveries)
    states, _, _ = await store.read(["d:captured", "d:phone"], {}, {}, end + MINUTE)
    assert states["d:captured"].features.max_session_replays == 4
    assert states["d:phone"].features.max_session_replays == 2
    assert enforcer.of("d:captured") < RULES.exclude_below
    assert enforcer.reasons["d:captured"] == ("replayed_session",)
    assert enforcer.of("d:phone") >= RULES.confident_at
    # Redelivered: the same addresses, nothing more.
    await run(worker, clock, deliveries)
    again, _, _ = await store.read(["d:captured"], {}, {}, end + MINUTE)
    assert again["d:captured"].features.max_session_replays == 4
