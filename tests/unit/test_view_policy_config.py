"""The view policy file: the shipped defaults, specialisations and config errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import domain.view_policy as view_policy
from domain.contents import ContentKind
from domain.view_policy import (
    DEFAULT_POLICY_FILE,
    ClientPlatform,
    DedupeScope,
    PolicyBook,
    ViewPolicy,
    parse_policy_book,
)

SHIPPED = Path(view_policy.__file__).with_name(DEFAULT_POLICY_FILE)

MINIMAL = """
[VIDEO]
min_watch_ms = 30_000
short_content_fraction = 0.9
[SHORT]
min_watch_ms = 2_000
[POST]
min_watch_ms = 1_000
min_visible_fraction = 0.5
[STORY]
count_on_open = true
[LIVE]
min_watch_ms = 10_000
[PRODUCT]
min_watch_ms = 1_000
min_visible_fraction = 0.5
[TRACK]
min_watch_ms = 30_000
[EPISODE]
min_watch_ms = 60_000
"""


def shipped_book() -> PolicyBook:
    return parse_policy_book(SHIPPED.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("kind", "min_watch_ms", "short_fraction", "visible", "on_open"),
    [
        (ContentKind.VIDEO, 30_000, 0.9, None, False),
        (ContentKind.SHORT, 2_000, None, None, False),
        (ContentKind.POST, 1_000, None, 0.5, False),
        (ContentKind.STORY, 0, None, None, True),
        (ContentKind.LIVE, 10_000, None, None, False),
        (ContentKind.PRODUCT, 1_000, None, 0.5, False),
        (ContentKind.TRACK, 30_000, None, None, False),
        (ContentKind.EPISODE, 60_000, None, None, False),
    ],
    ids=lambda v: str(v) if isinstance(v, ContentKind) else None,
)
@pytest.mark.parametrize("text", ["shipped", "minimal"])
def test_defaults(text, kind, min_watch_ms, short_fraction, visible, on_open):
    book = shipped_book() if text == "shipped" else parse_policy_book(MINIMAL)
    policy = book.for_content(kind, None)
    assert policy == ViewPolicy(
        rule=f"{kind}.default",
        min_watch_ms=min_watch_ms,
        short_content_fraction=short_fraction,
        min_visible_fraction=visible,
        count_on_open=on_open,
        dedupe=DedupeScope.VIEWER,
        window=timedelta(hours=24),
        clock_slack_ms=5_000,
        position_tolerance_ms=2_000,
    )
    # no platform specialisation is shipped: every platform gets the default rule
    for platform in ClientPlatform:
        assert book.for_content(kind, platform) == policy


def test_every_kind_has_a_policy_in_the_shipped_file():
    book = shipped_book()
    assert set(book.policies) == set(ContentKind)
    assert book.platform_policies == {}


def test_shipped_file_example_specialisation_parses_when_uncommented():
    text = SHIPPED.read_text(encoding="utf-8")
    example = '\n[VIDEO.platforms.TV]\nmin_watch_ms = 60_000\ndedupe = "device"\n'
    assert example.strip().replace("\n", "\n#   ") in text
    book = parse_policy_book(text + example)
    tv = book.for_content(ContentKind.VIDEO, ClientPlatform.TV)
    assert tv.rule == "VIDEO.TV"
    assert (tv.min_watch_ms, tv.dedupe) == (60_000, DedupeScope.DEVICE)


def test_platform_specialisation_overrides_some_fields():
    book = parse_policy_book(
        MINIMAL
        + """
[VIDEO.platforms.TV]
min_watch_ms = 60_000
window_hours = 6
[POST.platforms.WEB]
min_visible_fraction = 0.8
"""
    )
    tv = book.for_content(ContentKind.VIDEO, ClientPlatform.TV)
    assert tv.rule == "VIDEO.TV"
    assert tv.min_watch_ms == 60_000
    assert tv.window == timedelta(hours=6)
    assert tv.short_content_fraction == 0.9  # inherited from [VIDEO]
    assert book.for_content(ContentKind.VIDEO, ClientPlatform.IOS).rule == "VIDEO.default"
    assert book.for_content(ContentKind.VIDEO, None).rule == "VIDEO.default"
    web = book.for_content(ContentKind.POST, ClientPlatform.WEB)
    assert (web.rule, web.min_watch_ms, web.min_visible_fraction) == ("POST.WEB", 1_000, 0.8)


def test_defaults_table_applies_to_every_kind_and_kinds_override_it():
    book = parse_policy_book(
        MINIMAL.replace("[TRACK]", '[TRACK]\ndedupe = "session"')
        + '\n[defaults]\ndedupe = "device"\nwindow_hours = 1.5\nclock_slack_ms = 0\n'
    )
    video = book.for_content(ContentKind.VIDEO, None)
    assert (video.dedupe, video.window, video.clock_slack_ms) == (
        DedupeScope.DEVICE,
        timedelta(minutes=90),
        0,
    )
    assert book.for_content(ContentKind.TRACK, None).dedupe is DedupeScope.SESSION


@pytest.mark.parametrize(
    ("duration_ms", "threshold"),
    [
        (None, 30_000),
        (0, 30_000),
        (10_000, 9_000),
        (29_999, 27_000),
        (30_000, 30_000),
        (3_600_000, 30_000),
    ],
    ids=["unknown", "zero", "10s", "just-under-30s", "30s", "1h"],
)
def test_video_threshold(duration_ms, threshold):
    assert (
        shipped_book().for_content(ContentKind.VIDEO, None).threshold_ms(duration_ms) == threshold
    )


def test_threshold_without_short_fraction_ignores_duration():
    assert shipped_book().for_content(ContentKind.TRACK, None).threshold_ms(10_000) == 30_000
    assert shipped_book().for_content(ContentKind.STORY, None).threshold_ms(10_000) == 0


def _without(kind: str) -> str:
    head, _, rest = MINIMAL.partition(f"[{kind}]")
    return head + (rest[rest.index("[") :] if "[" in rest else "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_without("EPISODE"), "no policy for content kind(s) EPISODE"),
        (_without("STORY"), "no policy for content kind(s) STORY"),
        (MINIMAL + "[CLIP]\nmin_watch_ms = 1\n", "unknown content kind 'CLIP'"),
        (MINIMAL.replace("[VIDEO]", "[VIDEO]\nmin_watch = 1"), "unknown key 'VIDEO.min_watch'"),
        (MINIMAL + "[defaults]\nplatforms = {}\n", "unknown key 'defaults.platforms'"),
        (
            MINIMAL.replace("min_watch_ms = 2_000", 'min_watch_ms = "2s"'),
            "SHORT.min_watch_ms must be an integer >= 0, got '2s'",
        ),
        (
            MINIMAL.replace("min_watch_ms = 2_000", "min_watch_ms = -1"),
            "SHORT.min_watch_ms must be an integer >= 0, got -1",
        ),
        (
            MINIMAL.replace("min_watch_ms = 2_000", "min_watch_ms = 2.5"),
            "SHORT.min_watch_ms must be an integer",
        ),
        (
            MINIMAL.replace("min_watch_ms = 2_000", "min_watch_ms = true"),
            "SHORT.min_watch_ms must be an integer",
        ),
        (
            MINIMAL.replace("count_on_open = true", 'count_on_open = "yes"'),
            "STORY.count_on_open must be true or false",
        ),
        (
            MINIMAL.replace("short_content_fraction = 0.9", "short_content_fraction = 90"),
            "VIDEO.short_content_fraction must be a number between 0 and 1, got 90",
        ),
        (
            MINIMAL.replace("[TRACK]", '[TRACK]\ndedupe = "user"'),
            "TRACK.dedupe must be one of 'viewer', 'device', 'session', got 'user'",
        ),
        (
            MINIMAL.replace("[TRACK]", "[TRACK]\nwindow_hours = 0"),
            "TRACK.window_hours must be a number > 0, got 0",
        ),
        (
            MINIMAL.replace("count_on_open = true", "count_on_open = false"),
            "STORY needs min_watch_ms (or count_on_open = true)",
        ),
        (
            "LIVE = 3\n" + MINIMAL.replace("[LIVE]\nmin_watch_ms = 10_000", ""),
            "LIVE must be a table, got 3",
        ),
        (
            MINIMAL + "[VIDEO.platforms.CAR]\nmin_watch_ms = 1\n",
            "unknown platform 'VIDEO.platforms.CAR'",
        ),
        (
            MINIMAL + "[VIDEO.platforms.TV]\nmin_watch_ms = -5\n",
            "VIDEO.platforms.TV.min_watch_ms must be an integer >= 0",
        ),
        (
            MINIMAL + "[VIDEO.platforms.TV.platforms.WEB]\nmin_watch_ms = 5\n",
            "unknown key 'VIDEO.platforms.TV.platforms'",
        ),
        (MINIMAL.replace("[VIDEO]", "[VIDEO"), "invalid TOML"),
    ],
    ids=[
        "missing-kind",
        "missing-story",
        "unknown-kind",
        "unknown-key",
        "platforms-in-defaults",
        "string-for-int",
        "negative-int",
        "float-for-int",
        "bool-for-int",
        "string-for-bool",
        "fraction-out-of-range",
        "unknown-dedupe",
        "zero-window",
        "no-threshold",
        "kind-not-a-table",
        "unknown-platform",
        "bad-platform-value",
        "nested-platforms",
        "toml-syntax",
    ],
)
def test_config_errors(text, message):
    with pytest.raises(ValueError) as excinfo:
        parse_policy_book(text)
    assert message in str(excinfo.value)
    assert str(excinfo.value).startswith("view policies: ")


# ------------------------------------------------------------------ edges found by mutation testing


def _with_track(line: str) -> str:
    return MINIMAL.replace("[TRACK]", f"[TRACK]\n{line}")


@pytest.mark.parametrize("value", ["0", "0.0", "0.25", "1", "1.0"])
@pytest.mark.parametrize("key", ["short_content_fraction", "min_visible_fraction"])
def test_fractions_from_0_to_1_are_accepted(key, value):
    book = parse_policy_book(_with_track(f"{key} = {value}"))
    assert getattr(book.for_content(ContentKind.TRACK, None), key) == float(value)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("1.5", "1.5"),
        ("1.0001", "1.0001"),
        ("2", "2"),
        ("-0.1", "-0.1"),
        ("true", "True"),
        ('"0.5"', "'0.5'"),
        ("nan", "nan"),
    ],
    ids=["one-and-a-half", "just-over-one", "two", "negative", "bool", "string", "nan"],
)
@pytest.mark.parametrize("key", ["short_content_fraction", "min_visible_fraction"])
def test_fractions_outside_0_to_1_are_refused(key, value, shown):
    with pytest.raises(ValueError) as excinfo:
        parse_policy_book(_with_track(f"{key} = {value}"))
    assert str(excinfo.value) == (
        f"view policies: TRACK.{key} must be a number between 0 and 1, got {shown}"
    )


@pytest.mark.parametrize(
    ("value", "window"),
    [("1", timedelta(hours=1)), ("0.5", timedelta(minutes=30)), ("168", timedelta(days=7))],
)
def test_window_hours_accepted(value, window):
    book = parse_policy_book(_with_track(f"window_hours = {value}"))
    assert book.for_content(ContentKind.TRACK, None).window == window


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0", "0"),
        ("-1", "-1"),
        ("true", "True"),
        ('"24"', "'24'"),
        ("inf", "inf"),
        ("nan", "nan"),
    ],
    ids=["zero", "negative", "bool", "string", "inf", "nan"],
)
def test_window_hours_refused(value, shown):
    with pytest.raises(ValueError) as excinfo:
        parse_policy_book(_with_track(f"window_hours = {value}"))
    assert str(excinfo.value) == (
        f"view policies: TRACK.window_hours must be a number > 0, got {shown}"
    )


@pytest.mark.parametrize("where", ["defaults", "TRACK", "TRACK.platforms.TV"])
def test_position_tolerance_and_slack_are_read(where):
    lines = "position_tolerance_ms = 750\nclock_slack_ms = 1_250"
    text = _with_track(lines) if where == "TRACK" else MINIMAL + f"\n[{where}]\n{lines}\n"
    book = parse_policy_book(text)
    tv = book.for_content(ContentKind.TRACK, ClientPlatform.TV)
    assert (tv.position_tolerance_ms, tv.clock_slack_ms) == (750, 1_250)


def test_platform_override_inherits_the_kind_but_not_its_platforms():
    book = parse_policy_book(MINIMAL + "[STORY.platforms.TV]\ndedupe = 'session'\n")
    tv = book.for_content(ContentKind.STORY, ClientPlatform.TV)
    assert (tv.rule, tv.count_on_open, tv.dedupe) == ("STORY.TV", True, DedupeScope.SESSION)


FULL_MESSAGES = [
    (
        MINIMAL.replace("[VIDEO]", "[VIDEO]\nmin_watch = 1"),
        "view policies: unknown key 'VIDEO.min_watch'; expected one of clock_slack_ms, "
        "count_on_open, dedupe, min_visible_fraction, min_watch_ms, platforms, "
        "position_tolerance_ms, short_content_fraction, window_hours",
    ),
    (
        MINIMAL + "[defaults]\nplatforms = {}\n",
        "view policies: unknown key 'defaults.platforms'; expected one of clock_slack_ms, "
        "count_on_open, dedupe, min_visible_fraction, min_watch_ms, "
        "position_tolerance_ms, short_content_fraction, window_hours",
    ),
    (
        MINIMAL + "[VIDEO.platforms.TV]\nplatforms = {}\n",
        "view policies: unknown key 'VIDEO.platforms.TV.platforms'; expected one of "
        "clock_slack_ms, count_on_open, dedupe, min_visible_fraction, min_watch_ms, "
        "position_tolerance_ms, short_content_fraction, window_hours",
    ),
    (
        MINIMAL + "[CLIP]\nmin_watch_ms = 1\n",
        "view policies: unknown content kind 'CLIP'; expected one of VIDEO, SHORT, POST, "
        "STORY, LIVE, PRODUCT, TRACK, EPISODE (or 'defaults')",
    ),
    (
        _without("STORY").replace("[EPISODE]\nmin_watch_ms = 60_000\n", ""),
        "view policies: no policy for content kind(s) STORY, EPISODE",
    ),
    (
        MINIMAL + "[VIDEO.platforms.CAR]\nmin_watch_ms = 1\n",
        "view policies: unknown platform 'VIDEO.platforms.CAR'; expected one of "
        "IOS, ANDROID, WEB, TV, EMBEDDED",
    ),
    (
        MINIMAL.replace("[LIVE]", "[LIVE]\nplatforms = 3"),
        "view policies: LIVE.platforms must be a table",
    ),
    (
        MINIMAL + "[STORY.platforms.TV]\ncount_on_open = false\n",
        "view policies: STORY.platforms.TV needs min_watch_ms (or count_on_open = true)",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"),
    FULL_MESSAGES,
    ids=[
        "unknown-key",
        "platforms-in-defaults",
        "nested-platforms",
        "unknown-kind",
        "two-missing-kinds",
        "unknown-platform",
        "platforms-not-a-table",
        "platform-without-threshold",
    ],
)
def test_config_error_messages_in_full(text, message):
    with pytest.raises(ValueError) as excinfo:
        parse_policy_book(text)
    assert str(excinfo.value) == message


def test_a_book_without_the_kind_names_it():
    book = PolicyBook(policies={})
    with pytest.raises(ValueError) as excinfo:
        book.for_content(ContentKind.TRACK, ClientPlatform.TV)
    assert str(excinfo.value) == "no view policy for content kind TRACK"
