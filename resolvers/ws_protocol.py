"""graphql-transport-ws, hardened against malformed client messages.

Strawberry's handler (``BaseGraphQLTransportWSHandler``) indexes each decoded
message as if it were a well-formed object: a JSON array, string, number or
null, a ``payload`` that is not an object, or an unhashable ``id`` raise
TypeError inside the socket task, so the socket drops with 1006 and a traceback
is logged. It only catches KeyError. ``check_message`` validates the shape of
every message first, so the protocol's answer is given instead: close 4400.

Strawberry also echoes client text into some close reasons (a duplicate id,
a syntax error), and a close frame longer than 125 bytes makes the WebSocket
library raise; ``BoundedCloseAdapter`` cuts every reason to fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from starlette.websockets import WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message

from domain.contents import check_id
from domain.errors import BadUserInput

# A close frame's payload is at most 125 bytes: two for the code, the rest reason.
MAX_CLOSE_REASON_BYTES = 123

_NO_ID = frozenset({"connection_init", "ping", "pong"})
_WITH_ID = frozenset({"subscribe", "complete"})


class BadMessage(Exception):
    """A client message the protocol answers with close 4400."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_message(message: object) -> dict[str, Any]:
    """The message, checked against graphql-transport-ws's client message shapes.

    Returns it unchanged, except that a connection_init whose payload is null
    gets an empty one: the protocol allows null and strawberry would refuse it.
    Reasons never quote the client's text.
    """
    if not isinstance(message, dict):
        raise BadMessage("message must be a JSON object")
    kind = message.get("type")
    if not isinstance(kind, str):
        raise BadMessage("message 'type' must be a string")
    if kind in _NO_ID:
        payload = message.get("payload")
        if payload is not None and not isinstance(payload, dict):
            raise BadMessage(f"{kind} payload must be an object or null")
        if kind == "connection_init" and payload is None and "payload" in message:
            return {**message, "payload": {}}
        return message
    if kind not in _WITH_ID:
        raise BadMessage("unknown message type")
    try:
        # Operation ids are echoed in every push: the same bound as every other id.
        check_id(message.get("id"), "id")
    except BadUserInput as exc:
        raise BadMessage(exc.message) from exc
    if kind == "subscribe":
        _check_subscribe_payload(message.get("payload"))
    return message


def _check_subscribe_payload(payload: object) -> None:
    if not isinstance(payload, dict):
        raise BadMessage("subscribe payload must be an object")
    query = payload.get("query")
    # Empty, strawberry raises MissingQueryError inside the operation task.
    if not isinstance(query, str) or not query:
        raise BadMessage("subscribe payload 'query' must be a non-empty string")
    if not isinstance(payload.get("operationName"), str | None):
        raise BadMessage("subscribe payload 'operationName' must be a string or null")
    for key in ("variables", "extensions"):
        if not isinstance(payload.get(key), dict | None):
            raise BadMessage(f"subscribe payload '{key}' must be an object or null")


def close_reason(reason: str) -> str:
    """``reason`` cut to what a close frame holds, on a character boundary."""
    data = reason.encode()
    if len(data) <= MAX_CLOSE_REASON_BYTES:
        return reason
    return data[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


class TransportWSHandler(BaseGraphQLTransportWSHandler[Any, None]):
    async def handle_message(self, message: Message) -> None:
        try:
            checked = check_message(message)
        except BadMessage as exc:
            await self.handle_invalid_message(exc.reason)
            return
        await super().handle_message(cast(Message, checked))

    async def handle_task_exception(self, error: Exception) -> None:
        # A subscription that still had a push when the socket closed: the client
        # is gone (BoundedCloseAdapter says so), not a server error to log.
        if isinstance(error, WebSocketDisconnected):
            return
        await super().handle_task_exception(error)


class BoundedCloseAdapter(ASGIWebSocketAdapter):
    async def close(self, code: int, reason: str) -> None:
        await super().close(code, close_reason(reason))

    async def send_json(self, message: Mapping[str, object]) -> None:
        # After a close (a protocol error closed the socket while a subscription
        # still had a push to send), starlette raises RuntimeError and strawberry
        # logs a traceback; for strawberry this is a client that went away.
        if self.ws.application_state == WebSocketState.DISCONNECTED:
            raise WebSocketDisconnected
        await super().send_json(message)
