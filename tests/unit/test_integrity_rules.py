"""Integrity rules: the shipped file, the trust arithmetic (expectations worked out by
hand from docs/INTEGRITY.md), honest traffic, every attack category, config errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import domain.integrity_rules as integrity_rules
from domain.integrity_rules import (
    ADDRESS,
    DEFAULT_RULES_FILE,
    DOUBTFUL,
    EXCLUDED,
    TRUSTED,
    Features,
    IntegrityRules,
    Rule,
    Windows,
    assess,
    parse_integrity_rules,
    trust_of,
)

SHIPPED = Path(integrity_rules.__file__).with_name(DEFAULT_RULES_FILE)


def shipped() -> IntegrityRules:
    return parse_integrity_rules(SHIPPED.read_text(encoding="utf-8"))


RULES = shipped()


def test_shipped_file_defaults() -> None:
    assert RULES.exclude_below == 0.3
    assert RULES.confident_at == 0.8
    assert (RULES.scale, RULES.exponent) == (2.0, 3.0)
    assert RULES.windows == Windows(
        bucket_minutes=1, peak_minutes=5, actor_minutes=60, group_hours=24
    )
    assert {r.name for r in RULES.rules} == {
        "like_velocity",
        "like_volume",
        "blind_likes",
        "blind_like_volume",
        "glance_likes",
        "blind_crowd",
        "one_off_crowd",
        "view_velocity",
        "watch_overlap",
        "impossible_timing",
        "no_progress_views",
        "play_pause_cycling",
        "identical_playback",
        "identical_crowd",
        "repeat_sessions",
        "reloads",
        "replayed_session",
        "shared_device_accounts",
        "account_switching",
        "switching_crowd",
        "shared_address_accounts",
        "address_device_churn",
    }


RAMP = Rule("r", "likes_peak", "behaviour", at=30, points=1.0, full=90, full_points=2.0)


@pytest.mark.parametrize(
    ("value", "points"),
    [(0, 0.0), (29, 0.0), (30, 1.0), (45, 1.25), (60, 1.5), (90, 2.0), (500, 2.0)],
)
def test_points_ramp_from_at_to_full(value: float, points: float) -> None:
    assert RAMP.score(value) == pytest.approx(points)


def test_a_step_rule_has_its_points_from_at() -> None:
    step = Rule("s", "likes", "behaviour", at=5, points=0.7, full=5, full_points=0.7)
    assert (step.score(4), step.score(5), step.score(50)) == (0.0, 0.7, 0.7)


@pytest.mark.parametrize(
    ("points", "trust"),
    [
        (0.0, 1.0),
        (0.5, 0.984375),  # 1 - 0.25^3
        (1.0, 0.875),  # 1 - 0.5^3
        (1.5, 0.578125),  # 1 - 0.75^3
        (1.8, 0.271),  # 1 - 0.9^3
        (2.0, 0.0),
        (3.5, 0.0),
    ],
)
def test_trust_curve(points: float, trust: float) -> None:
    assert trust_of(points, RULES) == pytest.approx(trust)


@pytest.mark.parametrize(
    ("trust", "tier"),
    [(1.0, TRUSTED), (0.8, TRUSTED), (0.7999, DOUBTFUL), (0.3, DOUBTFUL), (0.2999, EXCLUDED)],
)
def test_tiers_by_the_bars(trust: float, tier: str) -> None:
    assert RULES.tier(trust) == tier


# A heavy but honest signed-in user over one hour: a like every half minute or so
# (after watching), 150 counted views, some pauses and seeks, one device.
HEAVY = Features(
    actor="u:heavy",
    likes=120,
    likes_peak=15,
    blind_likes=10,
    views=150,
    views_peak=20,
    watch_ms_peak=330_000,  # 1.1 screens: a second tab now and then
    raw_events=2_000,
    visibility_events=400,
    invisible_events=12,
    positioned_events=1_500,
    stalled_events=40,
    segments=1_800,
    short_segments=25,
    sessions=190,
    max_content_sessions=4,
    max_signature_repeats=2,
    signature_crowd=1,
    device_accounts=2,
    address_accounts=3,
    address_devices=2,
)
# A student behind the campus NAT: ordinary use, hundreds of others on the address.
CAMPUS = Features(
    actor="u:student",
    likes=6,
    likes_peak=3,
    views=25,
    views_peak=6,
    watch_ms_peak=290_000,
    raw_events=300,
    positioned_events=260,
    stalled_events=5,
    segments=270,
    short_segments=3,
    sessions=26,
    max_content_sessions=2,
    max_signature_repeats=1,
    device_accounts=1,
    address_accounts=900,
    address_devices=700,
)
CAMPUS_ANONYMOUS = replace(CAMPUS, actor="d:laptop-17", likes=0, likes_peak=0, device_accounts=0)


@pytest.mark.parametrize(
    ("features", "trust", "reasons"),
    [
        (Features("u:new"), 1.0, ()),
        (HEAVY, 1.0, ()),
        # Right at one behavioural threshold (30 likes in 5 minutes): 1 point.
        (replace(HEAVY, likes_peak=30), 0.875, ("like_velocity",)),
        (CAMPUS, 1.0, ()),
        (CAMPUS_ANONYMOUS, 1.0, ()),
        # The biggest address of all, alone, still lowers nothing.
        (replace(CAMPUS, address_accounts=100_000, address_devices=100_000), 1.0, ()),
        # A family of five signed in on one tablet: 1 point, still trusted.
        (replace(HEAVY, device_accounts=5), 0.875, ("shared_device_accounts",)),
        # Two screens all the time (2.0): below the overlap rule.
        (replace(HEAVY, watch_ms_peak=600_000), 1.0, ()),
        # A clock glitch or two: below impossible_timing.
        (replace(HEAVY, impossible_events=2), 1.0, ()),
        # Nine blind likes are below the gate of ten, whatever the share.
        (replace(CAMPUS, likes=9, blind_likes=9), 1.0, ()),
        # A stalled video reloaded mid-playback seven times: below reloads.
        (replace(HEAVY, max_content_sessions=8, max_content_reloads=7), 1.0, ()),
        # A session resent from its own address (a lost answer): one address, nothing.
        (replace(HEAVY, max_session_replays=1), 1.0, ()),
        # ... and again after a handover to another network: 1 point, still trusted.
        (replace(HEAVY, max_session_replays=2), 0.875, ("replayed_session",)),
    ],
    ids=[
        "fresh",
        "heavy-honest",
        "heavy-at-threshold",
        "campus-nat",
        "campus-nat-anonymous",
        "address-alone",
        "family-tablet",
        "two-screens",
        "clock-glitch",
        "blind-below-gate",
        "reloads-below",
        "resent-once",
        "resent-after-handover",
    ],
)
def test_organic_traffic_stays_trusted(features: Features, trust: float, reasons: tuple) -> None:
    result = assess(features, RULES)
    assert result.trust == pytest.approx(trust)
    assert result.reasons == reasons
    assert RULES.tier(result.trust) == TRUSTED


@pytest.mark.parametrize(
    ("features", "trust", "reasons"),
    [
        # Blind likes at share 0.9 of 10: 1 + 0.5 * (0.1 / 0.2) = 1.25 -> 1 - 0.625^3.
        (Features("u:x", likes=10, blind_likes=9), 0.755859375, ("blind_likes",)),
        # 14 blind likes of 14 (a client that sends no view events): 1.5 -> 0.578125,
        # counted; blind_like_volume starts at 15.
        (Features("u:x", likes=14, blind_likes=14), 0.578125, ("blind_likes",)),
        # A session resent from three addresses: 1.5 points, counted.
        (replace(HEAVY, max_session_replays=3), 0.578125, ("replayed_session",)),
        # Six accounts on a device: 1 + (6 - 5) / 3 points -> 1 - (2/3)^3 = 19/27.
        (replace(HEAVY, device_accounts=6), 19 / 27, ("shared_device_accounts",)),
        # 45 likes in 5 minutes: 1.25 points (as above).
        (replace(HEAVY, likes_peak=45), 0.755859375, ("like_velocity",)),
    ],
    ids=[
        "blind-likes-0.9",
        "blind-likes-14-of-14",
        "resent-from-three-addresses",
        "six-accounts-on-a-device",
        "like-velocity-45",
    ],
)
def test_doubtful_in_between(features: Features, trust: float, reasons: tuple) -> None:
    result = assess(features, RULES)
    assert result.trust == pytest.approx(trust)
    assert result.reasons == reasons
    assert RULES.tier(result.trust) == DOUBTFUL


def test_address_adds_only_to_a_behavioural_signal() -> None:
    # Blind likes 0.9 (1.25) + 900 accounts: 0.5 + 0.5 * 800/900 = 0.9444 -> 2.1944 points.
    behaving = replace(CAMPUS, likes=10, blind_likes=9)
    result = assess(behaving, RULES)
    assert result.reasons == ("blind_likes", "shared_address_accounts")
    assert result.trust == 0.0
    assert result.evidence == {
        "blind_like_share": 0.9,
        "address_accounts": 900,
        "points": pytest.approx(2.1944, abs=1e-4),
    }
    # A device signal is not behaviour: the address still adds nothing to it.
    farm_free = assess(replace(CAMPUS, device_accounts=6), RULES)
    assert farm_free.reasons == ("shared_device_accounts",)
    assert farm_free.trust == pytest.approx(19 / 27)


ATTACKS = {
    # Scripted accounts liking without ever watching, four accounts... ten per device.
    "bot-likes": Features("u:bot", likes=12, likes_peak=12, blind_likes=12, device_accounts=10),
    # Paid humans on shared phones: nothing scripted, but nine accounts per device.
    "click-farm": replace(CAMPUS, actor="u:farmhand", device_accounts=9),
    # Parallel sessions: ten screens' worth of watch time in five minutes.
    "view-bot-parallel": Features(
        "d:bot", views=40, watch_ms_peak=3_000_000, raw_events=400, sessions=80
    ),
    # One script, one way of playing, session after session.
    "view-bot-replayed": Features("u:bot", views=20, sessions=25, max_signature_repeats=20),
    # A hidden autoplaying tab: impressions nobody sees, positions that never move.
    "scripted-autoplay": Features(
        "d:tab",
        raw_events=120,
        visibility_events=60,
        invisible_events=58,
        positioned_events=50,
        stalled_events=48,
    ),
    # Play/pause toggled to mint events.
    "play-pause-cycling": Features("d:cycler", raw_events=110, segments=100, short_segments=95),
    # Watch time the wall clock cannot hold.
    "impossible-timing": Features("d:fast", raw_events=30, impossible_events=12),
    # Reloading one content again and again from one device.
    "refresh-spam": Features("d:reload", raw_events=80, sessions=80, max_content_sessions=80),
    # Replays of captured sessions (same shape) across accounts.
    "replays": Features("u:replayer", sessions=12, max_signature_repeats=12, signature_crowd=25),
    # Fresh accounts on shared phones with a handful of blind likes each.
    "fake-accounts": Features("u:fake", likes=10, likes_peak=10, blind_likes=10, device_accounts=6),
    # Device ids rotated behind one address, all playing the target the same way.
    "rotating-devices": Features(
        "d:rot-123", raw_events=4, sessions=1, signature_crowd=45, address_devices=800
    ),
    # Account farm on shared devices.
    "account-farm": Features("u:farm-7", likes=3, likes_peak=3, views=3, device_accounts=20),
    # A like spree with the views to go with it.
    "like-spree": Features("u:spree", likes=400, likes_peak=60, views=400),
    # A like spree, blind.
    "blind-like-spree": Features("u:spree", likes=400, likes_peak=60, blind_likes=400),
    # Scripted identical playback, each bot on its own address and device.
    "identical-crowd": Features("u:bot-9", views=1, sessions=1, signature_crowd=40),
    # Headless accounts opening each content and liking it a second later.
    "glance-bot": Features("u:bot", likes=48, likes_peak=48, glance_likes=48, raw_events=48),
    # Fresh accounts, one blind like each, on one post from one address.
    "fake-accounts-one-like": Features(
        "u:fresh", likes=1, likes_peak=1, blind_likes=1, blind_crowd=9
    ),
    # A click farm: phones switching accounts every minute, fifteen behind one address.
    "click-farm-switching": replace(
        CAMPUS,
        actor="u:farmhand",
        device_accounts=3,
        device_recent_accounts=3,
        switching_devices=15,
    ),
    # Rotating device ids with human timing, each stopping right after the count.
    "rotating-one-offs": Features(
        "d:rot-7", views=1, raw_events=5, sessions=1, one_off_crowd=15, one_off_hugging=15
    ),
    # A reload script, too short-lived for repeat_sessions: 18 sessions on one short,
    # each started as the one before had just passed the count.
    "reload-script": Features(
        "d:reload",
        views=1,
        raw_events=36,
        sessions=18,
        max_content_sessions=18,
        max_content_reloads=17,
    ),
    # A captured session sent again verbatim from four addresses: its one view.
    "replayed-capture": Features(
        "d:captured", views=1, raw_events=1, sessions=1, max_session_replays=4
    ),
    # A blind like spree cut short: 15 likes, none on a content it opened.
    "short-blind-spree": Features("u:spree", likes=15, likes_peak=15, blind_likes=15),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_category_is_excluded(name: str) -> None:
    result = assess(ATTACKS[name], RULES)
    assert result.trust < RULES.exclude_below, (name, result)
    assert result.reasons
    assert RULES.tier(result.trust) == EXCLUDED


@pytest.mark.parametrize(
    ("name", "reasons", "points"),
    [
        ("bot-likes", ("shared_device_accounts", "blind_likes"), 3.5),
        ("click-farm", ("shared_device_accounts",), 2.0),
        ("view-bot-parallel", ("watch_overlap",), 2.0),
        ("scripted-autoplay", ("no_progress_views",), 2.0),  # 106 / 110 = 0.9636 >= 0.95
        ("play-pause-cycling", ("play_pause_cycling",), 2.0),
        ("refresh-spam", ("repeat_sessions",), 2.0),
        # Crowd 25 (past full: 2); 12 repeats: 1 + 7/10.
        ("replays", ("identical_crowd", "identical_playback"), 3.7),
        # Crowd 45 (2) and, behind behaviour, 800 devices: 0.5 + 0.5 * 700/900.
        ("rotating-devices", ("identical_crowd", "address_device_churn"), 2.8889),
        # 60 in 5 minutes: 1.5; 400 in the hour: 1 + 200/400 = 1.5; 400 views:
        # 1 + 100/900.
        ("like-spree", ("like_velocity", "like_volume", "view_velocity"), 4.1111),
        # 17 reloads, past full (15); 18 sessions, below repeat_sessions (20).
        ("reload-script", ("reloads",), 2.0),
        ("replayed-capture", ("replayed_session",), 2.0),
        # Share 1.0: 1.5; 15 blind likes: 0.5.
        ("short-blind-spree", ("blind_likes", "blind_like_volume"), 2.0),
        # 400 blind of 400: 1.5 + 1.0, with 60 in 5 minutes (1.5) and 400 in the hour
        # (1.5).
        (
            "blind-like-spree",
            ("blind_likes", "like_velocity", "like_volume", "blind_like_volume"),
            5.5,
        ),
    ],
)
def test_attack_reasons_and_points(name: str, reasons: tuple, points: float) -> None:
    result = assess(ATTACKS[name], RULES)
    assert result.reasons == reasons
    assert result.evidence["points"] == pytest.approx(points, abs=1e-4)


def test_each_address_rule_alone_lowers_nothing() -> None:
    for rule in RULES.rules:
        if rule.signal != ADDRESS:
            continue
        actor = "d:x" if rule.applies_to == "anonymous" else "u:x"
        huge: dict[str, Any] = {rule.feature: int(rule.full * 10)}
        features = replace(Features(actor), **huge)
        assert assess(features, RULES).trust == 1.0, rule.name


# --------------------------------------------------------------------------- config

MINIMAL = """
[rules.like_velocity]
feature = "likes_peak"
signal = "behaviour"
at = 10
points = 2.5
"""


def test_a_minimal_file_takes_the_defaults() -> None:
    rules = parse_integrity_rules(MINIMAL)
    assert (rules.exclude_below, rules.confident_at) == (0.3, 0.8)
    assert rules.windows == Windows()
    [rule] = rules.rules
    assert (rule.full, rule.full_points, rule.applies_to, dict(rule.when)) == (
        10.0,
        2.5,
        "all",
        {},
    )
    assert assess(Features("u:a", likes_peak=10), rules).trust == 0.0


def test_bars_and_windows_can_be_overridden() -> None:
    rules = parse_integrity_rules(
        "[trust]\nexclude_below = 0.2\nconfident_at = 0.9\nscale = 3\nexponent = 2\n"
        "[windows]\nbucket_minutes = 10\npeak_minutes = 20\nactor_minutes = 120\n"
        "group_hours = 48\n" + MINIMAL
    )
    assert (rules.exclude_below, rules.confident_at, rules.scale, rules.exponent) == (
        0.2,
        0.9,
        3.0,
        2.0,
    )
    assert rules.windows.bucket_ms == 600_000
    assert rules.windows.peak_ms == 1_200_000
    assert rules.windows.actor_ms == 7_200_000
    assert rules.windows.group_ms == 172_800_000
    # 1.5 points on scale 3, exponent 2: 1 - 0.25.
    assert trust_of(1.5, rules) == 0.75


RULE = '[rules.r]\nfeature = "likes"\nsignal = "behaviour"\nat = 5\npoints = 1\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[rules\n", "invalid TOML"),
        ("[rule.x]\n", "unknown table 'rule'"),
        ("", "at least one rule"),
        ("[trust]\nexclude = 0.2\n" + RULE, "unknown key trust.'exclude'"),
        ("[trust]\nexclude_below = 0.9\nconfident_at = 0.8\n" + RULE, "must be below"),
        ("[trust]\nconfident_at = 1.5\n" + RULE, "trust.confident_at must be a number between"),
        ("[trust]\nscale = 0\n" + RULE, "must be > 0"),
        ("[windows]\nbucket_minutes = 2\n" + RULE, "multiple of windows.bucket_minutes"),
        ("[windows]\npeak_minutes = 7\n" + RULE, "multiple of windows.peak_minutes"),
        ("[windows]\ngroup_hours = 0\n" + RULE, "windows.group_hours must be an integer >= 1"),
        (RULE.replace('"likes"', '"lieks"'), "rules.r.feature must name a feature"),
        (RULE.replace('"behaviour"', '"ip"'), "rules.r.signal must be one of"),
        (RULE + "colour = 1\n", "unknown key rules.r.'colour'"),
        (RULE + "full = 4\n", "rules.r.full (4) must be >= at (5)"),
        (RULE + "full_points = 0.5\n", "full_points (0.5) must be >= points (1)"),
        (RULE.replace("at = 5", "at = 0"), "rules.r.at must be > 0"),
        (RULE.replace("at = 5", "at = -1"), "rules.r.at must be a number >= 0"),
        (RULE.replace("at = 5", 'at = "5"'), "rules.r.at must be a number"),
        (RULE.replace("points = 1\n", ""), "rules.r needs 'points'"),
        (RULE + 'applies_to = "bots"\n', "rules.r.applies_to must be one of"),
        (RULE + "when = { nothing = 3 }\n", "rules.r.when key must name a feature"),
        (RULE + "when = 3\n", "rules.r.when must be a table"),
        (RULE.replace("rules.r]", "rules.Bad-Name]"), "must be lower_snake_case"),
        ("[rules]\nr = 3\n", "rules.r must be a table"),
    ],
)
def test_config_errors_name_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^integrity rules: ") as caught:
        parse_integrity_rules(text)
    assert message in str(caught.value)


def test_applies_to_and_when_gates() -> None:
    rules = parse_integrity_rules(RULE + 'applies_to = "anonymous"\nwhen = { sessions = 2 }\n')
    assert assess(Features("u:a", likes=9, sessions=5), rules).trust == 1.0  # a user
    assert assess(Features("d:a", likes=9, sessions=1), rules).trust == 1.0  # gate
    assert assess(Features("d:a", likes=9, sessions=2), rules).trust == 0.875


# --------------------------------------------------------------------------- new signals

# One content liked blind, from one address, by a crowd (the actor's own like blind).
BLIND_FAN = Features("u:fan", likes=1, likes_peak=1, blind_likes=1)
# An anonymous device whose only session stopped at the count.
ONE_OFF = Features("d:one-off", views=1, raw_events=5, sessions=1)


@pytest.mark.parametrize(
    ("features", "points", "reasons"),
    [
        # Glance likes: opened, liked, left before the view counted.
        (Features("u:g", likes=9, glance_likes=9), 0.0, ()),  # under the gate of 10
        (Features("u:g", likes=10, glance_likes=10), 1.0, ("glance_likes",)),
        (Features("u:g", likes=12, glance_likes=12), 1.4, ("glance_likes",)),
        (Features("u:g", likes=15, glance_likes=15), 2.0, ("glance_likes",)),
        (Features("u:g", likes=48, glance_likes=48), 2.0, ("glance_likes",)),
        # 20 glances among 40 likes on opened contents (0.5): a person who likes
        # early now and then, not a script.
        (Features("u:g", likes=40, glance_likes=20), 0.0, ()),
        # Blind likes do not count as opened: 10 glances of 12 opened (0.83).
        (Features("u:g", likes=30, blind_likes=18, glance_likes=10), 1.0, ("glance_likes",)),
        # A crowd liking one content blind from one address.
        (replace(BLIND_FAN, blind_crowd=2), 0.0, ()),
        (replace(BLIND_FAN, blind_crowd=3), 1.0, ("blind_crowd",)),
        (replace(BLIND_FAN, blind_crowd=6), 2.0, ("blind_crowd",)),
        # ... but not an account whose own like was supported by its view.
        (replace(BLIND_FAN, blind_likes=0, blind_crowd=50), 0.0, ()),
        # Accounts switching on one device within minutes.
        (Features("u:s", device_recent_accounts=2), 0.0, ()),
        (Features("u:s", device_recent_accounts=3), 1.0, ("account_switching",)),
        (Features("u:s", device_recent_accounts=6), 2.0, ("account_switching",)),
        # Many devices behind one address doing it, its own one of them.
        (Features("u:s", device_recent_accounts=2, switching_devices=4), 1.0, ("switching_crowd",)),
        (
            Features("u:s", device_recent_accounts=2, switching_devices=10),
            2.0,
            ("switching_crowd",),
        ),
        # ... an account whose own device did not switch is not held to them.
        (Features("u:s", device_recent_accounts=1, switching_devices=40), 0.0, ()),
        # One-off devices on one content and address that stop at the count.
        (replace(ONE_OFF, one_off_crowd=4, one_off_hugging=4), 0.0, ()),
        (replace(ONE_OFF, one_off_crowd=6, one_off_hugging=5), 1.0, ("one_off_crowd",)),
        (replace(ONE_OFF, one_off_crowd=7, one_off_hugging=5), 0.0, ()),  # share 0.71
        (replace(ONE_OFF, one_off_crowd=10, one_off_hugging=10), 2.0, ("one_off_crowd",)),
        # A shared link watched by fifty: a quarter stop near the count.
        (replace(ONE_OFF, one_off_crowd=50, one_off_hugging=13), 0.0, ()),
        # Signed-in viewers are not devices.
        (replace(ONE_OFF, actor="u:x", one_off_crowd=12, one_off_hugging=12), 0.0, ()),
    ],
)
def test_new_signals_points(features: Features, points: float, reasons: tuple) -> None:
    result = assess(features, RULES)
    assert result.reasons == reasons
    assert result.evidence.get("points", 0.0) == pytest.approx(points)


@pytest.mark.parametrize(
    ("features", "glance", "hug"),
    [
        (Features("u:x"), 0.0, 0.0),
        (Features("u:x", likes=10, glance_likes=5), 0.5, 0.0),
        (Features("u:x", likes=10, blind_likes=10), 0.0, 0.0),  # nothing opened
        (Features("u:x", likes=10, blind_likes=6, glance_likes=4), 1.0, 0.0),
        (Features("d:x", one_off_crowd=8, one_off_hugging=6), 0.0, 0.75),
        # Notes written at different times: never above 1.
        (Features("d:x", one_off_crowd=3, one_off_hugging=6), 0.0, 1.0),
    ],
)
def test_derived_shares(features: Features, glance: float, hug: float) -> None:
    assert features.glance_like_share == pytest.approx(glance)
    assert features.one_off_hug_share == pytest.approx(hug)


@pytest.mark.parametrize(
    "features",
    [
        # A family of three on one tablet, two of them within five minutes.
        replace(HEAVY, device_accounts=3, device_recent_accounts=2),
        # A campus: a few phones lent to a friend, no blind likes.
        replace(CAMPUS, device_recent_accounts=2, switching_devices=3),
        # A campus where a viral post was liked from a notification by many.
        replace(CAMPUS, likes=6, blind_likes=1, blind_crowd=2),
        # A heavy user who likes shorts in the first second now and then.
        replace(HEAVY, glance_likes=30),
    ],
    ids=["family-tablet", "campus-lent-phones", "campus-two-blind", "heavy-early-likes"],
)
def test_honest_neighbours_of_the_new_signals_stay_trusted(features: Features) -> None:
    result = assess(features, RULES)
    assert RULES.tier(result.trust) == TRUSTED, result
