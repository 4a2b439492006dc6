"""The shape check in front of strawberry's graphql-transport-ws handler."""

import pytest

from resolvers.ws_protocol import MAX_CLOSE_REASON_BYTES, BadMessage, check_message, close_reason

SUB = {"query": "subscription { x }"}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ([1, 2], "JSON object"),
        ("x", "JSON object"),
        (5, "JSON object"),
        (None, "JSON object"),
        (True, "JSON object"),
        ({}, "'type' must be a string"),
        ({"type": None}, "'type' must be a string"),
        ({"type": 5}, "'type' must be a string"),
        ({"type": ["subscribe"]}, "'type' must be a string"),
        ({"type": "nope"}, "unknown message type"),
        ({"type": "x" * 10_000}, "unknown message type"),
        ({"type": "next", "id": "1", "payload": {}}, "unknown message type"),
        ({"type": "connection_ack"}, "unknown message type"),
        ({"type": "connection_init", "payload": 5}, "connection_init payload"),
        ({"type": "connection_init", "payload": "x"}, "connection_init payload"),
        ({"type": "connection_init", "payload": [1]}, "connection_init payload"),
        ({"type": "ping", "payload": "x"}, "ping payload"),
        ({"type": "pong", "payload": [1]}, "pong payload"),
        ({"type": "subscribe", "payload": SUB}, "id must be a non-empty string"),
        ({"type": "subscribe", "id": None, "payload": SUB}, "id must be a non-empty string"),
        ({"type": "subscribe", "id": 1, "payload": SUB}, "id must be a non-empty string"),
        ({"type": "subscribe", "id": ["1"], "payload": SUB}, "id must be a non-empty string"),
        ({"type": "subscribe", "id": {"a": 1}, "payload": SUB}, "id must be a non-empty string"),
        ({"type": "subscribe", "id": "", "payload": SUB}, "id must be a non-empty string"),
        ({"type": "subscribe", "id": " ", "payload": SUB}, "id must be a non-empty string"),
        ({"type": "subscribe", "id": "x" * 129, "payload": SUB}, "at most 128"),
        ({"type": "subscribe", "id": "a\x00", "payload": SUB}, "control"),
        ({"type": "subscribe", "id": "1"}, "payload must be an object"),
        ({"type": "subscribe", "id": "1", "payload": None}, "payload must be an object"),
        ({"type": "subscribe", "id": "1", "payload": "x"}, "payload must be an object"),
        ({"type": "subscribe", "id": "1", "payload": [SUB]}, "payload must be an object"),
        ({"type": "subscribe", "id": "1", "payload": {}}, "'query' must be a non-empty string"),
        ({"type": "subscribe", "id": "1", "payload": {"query": ""}}, "'query'"),
        ({"type": "subscribe", "id": "1", "payload": {"query": None}}, "'query'"),
        ({"type": "subscribe", "id": "1", "payload": {"query": 5}}, "'query'"),
        ({"type": "subscribe", "id": "1", "payload": {"query": ["q"]}}, "'query'"),
        ({"type": "subscribe", "id": "1", "payload": {**SUB, "variables": [1]}}, "'variables'"),
        ({"type": "subscribe", "id": "1", "payload": {**SUB, "variables": "x"}}, "'variables'"),
        ({"type": "subscribe", "id": "1", "payload": {**SUB, "operationName": 5}}, "operationName"),
        ({"type": "subscribe", "id": "1", "payload": {**SUB, "extensions": []}}, "'extensions'"),
        ({"type": "complete"}, "id must be"),
        ({"type": "complete", "id": 5}, "id must be"),
        ({"type": "complete", "id": ["1"]}, "id must be"),
    ],
)
def test_bad_messages(message, reason):
    with pytest.raises(BadMessage, match=reason) as refused:
        check_message(message)
    assert len(refused.value.reason.encode()) <= MAX_CLOSE_REASON_BYTES


@pytest.mark.parametrize(
    "message",
    [
        {"type": "connection_init"},
        {"type": "connection_init", "payload": {}},
        {"type": "connection_init", "payload": {"authorization": 12345}},  # 4403 later, not 4400
        {"type": "ping"},
        {"type": "ping", "payload": None},
        {"type": "pong", "payload": {"t": 1}},
        {"type": "subscribe", "id": "1", "payload": SUB},
        {"type": "subscribe", "id": "x" * 128, "payload": SUB},
        {
            "type": "subscribe",
            "id": "1",
            "payload": {**SUB, "variables": None, "operationName": None, "extensions": None},
        },
        {
            "type": "subscribe",
            "id": "1",
            "payload": {**SUB, "variables": {}, "operationName": "X", "extensions": {}},
        },
        {"type": "subscribe", "id": "1", "payload": {"query": " "}},  # a parse error, later
        {"type": "complete", "id": "never-subscribed"},
    ],
)
def test_well_formed_messages_pass_unchanged(message):
    assert check_message(message) is message


def test_a_null_connection_init_payload_is_an_empty_one():
    # The protocol allows null; strawberry's handler would close 4400 on it.
    assert check_message({"type": "connection_init", "payload": None}) == {
        "type": "connection_init",
        "payload": {},
    }


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("", ""),
        ("Forbidden", "Forbidden"),
        ("x" * 123, "x" * 123),
        ("x" * 124, "x" * 123),
        ("x" * 10_000, "x" * 123),
        ("é" * 62, "é" * 61),  # 124 bytes: cut on a character boundary, not inside one
        ("x" + "😀" * 31, "x" + "😀" * 30),
    ],
)
def test_close_reason_fits_a_close_frame(reason, expected):
    cut = close_reason(reason)
    assert cut == expected
    assert len(cut.encode()) <= MAX_CLOSE_REASON_BYTES


async def test_a_push_after_the_close_is_a_gone_client_not_a_logged_error(caplog) -> None:
    from types import SimpleNamespace

    from starlette.websockets import WebSocketState
    from strawberry.http.exceptions import WebSocketDisconnected

    from resolvers.ws_protocol import BoundedCloseAdapter, TransportWSHandler

    adapter = BoundedCloseAdapter.__new__(BoundedCloseAdapter)
    adapter.ws = SimpleNamespace(application_state=WebSocketState.DISCONNECTED)  # type: ignore[assignment]
    with pytest.raises(WebSocketDisconnected):
        await adapter.send_json({"type": "next"})

    handler = TransportWSHandler.__new__(TransportWSHandler)
    with caplog.at_level("DEBUG"):
        await handler.handle_task_exception(WebSocketDisconnected())
    assert not caplog.records
