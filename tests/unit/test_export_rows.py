import pytest

from domain.errors import BadUserInput
from domain.events import EngagementEvent
from domain.export_schema import (
    COLUMN_NAMES,
    DayWindow,
    day_windows,
    event_row,
    format_time,
    parse_time,
    partition_date,
)

T = 1_709_164_800_000  # 2024-02-29T00:00:00Z

# The columns every row has, with their value for an event whose data says nothing.
EMPTY = {
    "unique_member": None,
    "session_id": None,
    "platform": None,
    "source": None,
    "region": None,
    "watched_ms": None,
    "accepted_ms": None,
    "position_ms": None,
    "final": None,
    "reaction_before": None,
    "reaction_after": None,
    "addr": None,
    "device": None,
}


def ev(kind, deltas, data, unique=None, event_id="e1"):
    return EngagementEvent(event_id, kind, "c1", "u:alice", T + 5, deltas, unique, data)


# (event, the row's columns besides event_id/content_id/actor/occurred_at/kind).
TABLE = [
    pytest.param(
        ev(
            "reaction", {"r:LIKE": 1, "likes": 1}, {"before": None, "after": "LIKE", "region": "FR"}
        ),
        {
            "likes_delta": 1,
            "views_delta": 0,
            "deltas_json": '{"likes":1,"r:LIKE":1}',
            "region": "FR",
            "reaction_after": "LIKE",
            "data_json": '{"after":"LIKE","before":null,"region":"FR"}',
        },
        id="first-like",
    ),
    pytest.param(
        ev("reaction", {"r:LIKE": -1, "r:LOVE": 1}, {"before": "LIKE", "after": "LOVE"}),
        {
            "likes_delta": 0,
            "views_delta": 0,
            "deltas_json": '{"r:LIKE":-1,"r:LOVE":1}',
            "reaction_before": "LIKE",
            "reaction_after": "LOVE",
            "data_json": '{"after":"LOVE","before":"LIKE"}',
        },
        id="change-reaction",
    ),
    pytest.param(
        ev("reaction", {"r:SAD": -1, "likes": -1}, {"before": "SAD", "after": None}),
        {
            "likes_delta": -1,
            "views_delta": 0,
            "deltas_json": '{"likes":-1,"r:SAD":-1}',
            "reaction_before": "SAD",
            "data_json": '{"after":null,"before":"SAD"}',
        },
        id="unlike",
    ),
    pytest.param(
        ev(
            "view",
            {"views": 1},
            {"session_id": "s1", "platform": "IOS", "source": "FEED", "region": None},
            unique="u:alice",
        ),
        {
            "likes_delta": 0,
            "views_delta": 1,
            "deltas_json": '{"views":1}',
            "unique_member": "u:alice",
            "session_id": "s1",
            "platform": "IOS",
            "source": "FEED",
            "data_json": '{"platform":"IOS","region":null,"session_id":"s1","source":"FEED"}',
        },
        id="counted-view",
    ),
    pytest.param(
        ev(
            "view_event",
            {},
            {
                "session_id": "s1",
                "watched_ms": 4000,
                "position_ms": 9000,
                "visible_fraction": 0.75,
                "source": "SEARCH",
                "platform": "WEB",
                "final": True,
                "accepted_ms": 3500,
                "region": "DE",
            },
        ),
        {
            "likes_delta": 0,
            "views_delta": 0,
            "deltas_json": "{}",
            "session_id": "s1",
            "platform": "WEB",
            "source": "SEARCH",
            "region": "DE",
            "watched_ms": 4000,
            "accepted_ms": 3500,
            "position_ms": 9000,
            "final": True,
            "data_json": (
                '{"accepted_ms":3500,"final":true,"platform":"WEB","position_ms":9000,'
                '"region":"DE","session_id":"s1","source":"SEARCH","visible_fraction":0.75,'
                '"watched_ms":4000}'
            ),
        },
        id="raw-view-event",
    ),
    pytest.param(
        ev(
            "view_end",
            {},
            {
                "session_id": "s2",
                "position_ms": None,
                "duration_ms": 61000,
                "watched_ms": 0,
                "platform": None,
                "source": None,
                "region": None,
                "counted": False,
                "reason": "idle",
            },
        ),
        {
            "likes_delta": 0,
            "views_delta": 0,
            "deltas_json": "{}",
            "session_id": "s2",
            "watched_ms": 0,
            "final": None,
            "data_json": (
                '{"counted":false,"duration_ms":61000,"platform":null,"position_ms":null,'
                '"reason":"idle","region":null,"session_id":"s2","source":null,"watched_ms":0}'
            ),
        },
        id="view-end",
    ),
    pytest.param(
        # Not the documented types: the typed columns stay empty, the JSON keeps them.
        ev(
            "view_event",
            {"views": 2**63},
            {
                "watched_ms": "4000",
                "accepted_ms": True,
                "position_ms": 12.0,
                "final": 1,
                "platform": 7,
                "before": "LIKE",
            },
        ),
        {
            "likes_delta": 0,
            "views_delta": 0,
            "deltas_json": '{"views":9223372036854775808}',
            "position_ms": 12,
            "data_json": (
                '{"accepted_ms":true,"before":"LIKE","final":1,"platform":7,'
                '"position_ms":12.0,"watched_ms":"4000"}'
            ),
        },
        id="odd-types",
    ),
]


@pytest.mark.parametrize(("event", "columns"), TABLE)
def test_event_row(event, columns):
    row = event_row(event)
    assert row == {
        "event_id": "e1",
        "kind": event.kind,
        "content_id": "c1",
        "actor": "u:alice",
        "occurred_at": T + 5,
        **EMPTY,
        **columns,
    }


def test_row_keys_are_the_schema_in_order_without_the_partition_column():
    row = event_row(ev("view", {"views": 1}, {}))
    assert tuple(row) == COLUMN_NAMES
    assert "date" not in COLUMN_NAMES


def test_the_same_event_always_gives_the_same_json():
    a = ev("view_event", {"b": 1, "a": 2}, {"z": 1, "a": {"y": 2, "x": 1}})
    b = ev("view_event", {"a": 2, "b": 1}, {"a": {"x": 1, "y": 2}, "z": 1})
    assert event_row(a) == event_row(b)


@pytest.mark.parametrize(
    ("ms", "date"),
    [
        (0, "1970-01-01"),
        (T - 1, "2024-02-28"),
        (T, "2024-02-29"),
        (T + 86_399_999, "2024-02-29"),
        (T + 86_400_000, "2024-03-01"),
        (-1, "1969-12-31"),
    ],
)
def test_partition_date(ms, date):
    assert partition_date(ms) == date


D = 86_400_000


@pytest.mark.parametrize(
    ("since", "until", "windows"),
    [
        (T, T, []),
        (T, T - 5, []),
        (T, T + 1, [DayWindow("2024-02-29", T, T + 1)]),
        (T, T + D, [DayWindow("2024-02-29", T, T + D)]),
        (
            T - 10,
            T + D + 7,
            [
                DayWindow("2024-02-28", T - 10, T),
                DayWindow("2024-02-29", T, T + D),
                DayWindow("2024-03-01", T + D, T + D + 7),
            ],
        ),
        (
            T + 3,
            T + 2 * D,
            [DayWindow("2024-02-29", T + 3, T + D), DayWindow("2024-03-01", T + D, T + 2 * D)],
        ),
    ],
)
def test_day_windows(since, until, windows):
    assert day_windows(since, until) == windows


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2024-02-29", T),
        ("2024-02-29T00:00:00Z", T),
        ("2024-02-29T00:00:00.005Z", T + 5),
        ("2024-02-29T01:00:00+01:00", T),
        ("2024-02-29T00:00:00.0019", T + 1),
        (" 2024-02-29 ", T),
        ("1970-01-01", 0),
    ],
)
def test_parse_time(text, ms):
    assert parse_time(text) == ms


@pytest.mark.parametrize("text", ["", "yesterday", "2024-02-30", "1709164800000", "29/02/2024"])
def test_parse_time_refuses(text):
    with pytest.raises(BadUserInput, match="--since must be an ISO 8601"):
        parse_time(text, "--since")


@pytest.mark.parametrize(
    ("ms", "text"), [(T, "2024-02-29T00:00:00.000Z"), (T + 86_399_999, "2024-02-29T23:59:59.999Z")]
)
def test_format_time_reads_back(ms, text):
    assert format_time(ms) == text
    assert parse_time(text) == ms
