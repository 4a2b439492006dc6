"""The common GraphQL request, answered without strawberry's generic HTTP view.

Nearly every request is a POST of ``application/json`` carrying one operation.
Strawberry's view serves every transport (GET, GraphiQL, multipart uploads,
batches, SSE and multipart subscriptions, incremental delivery) and pays for
deciding among them on each request: about 60 µs of CPU per request more than a
bare Starlette route (docs/PERFORMANCE.md, scenario 1). This path decides with a
few cheap checks and otherwise calls the same hooks (``get_root_value``,
``get_sub_response``, ``get_context``, ``schema.execute``, ``process_result``,
``_handle_errors``) to produce the same response bytes.

Whatever does not fit (another method or content type, a ``query`` that is not
a string, ``variables`` or ``extensions`` that are not objects, a batch) goes to
strawberry's view untouched, which then answers exactly as before. Requests
with ``extensions.persistedQuery`` get their text here as in the view
(``GraphQLApp.persisted``). tests/unit/test_http_post.py compares both on a
table of requests so they cannot drift apart unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable
from json import JSONDecodeError
from typing import TYPE_CHECKING, Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from transport.request_id import note_operation

if TYPE_CHECKING:
    from strawberry.asgi import GraphQL

# Strawberry's view decides by the media type alone; parameters (charset) don't matter.
_JSON = "application/json"
# Strawberry also allows subscriptions over POST, for its SSE and multipart
# transports, which serves() rules out. Without one, graphql-core runs the
# subscription resolver as if it were a query and fails inside it: a masked
# INTERNAL_SERVER_ERROR and a logged traceback for a client's mistake. Refused
# up front instead: 400 "subscriptions are not allowed when using POST".
_POST_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})


def serves(view: GraphQL[Any, Any]) -> bool:
    """Whether this path may answer for ``view`` at all.

    With HTTP stream transports (SSE, multipart subscriptions) the Accept header
    picks the protocol, and with incremental execution a result may be a stream:
    strawberry's view handles those.
    """
    return (
        not view._stream_transport_map
        and not view.schema.config.enable_experimental_incremental_execution
    )


def is_plain_json_post(scope: dict[str, Any]) -> bool:
    if scope["method"] != "POST":
        return False
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.partition(b";")[0].strip() == b"application/json"
    return False


class SubResponse(Response):
    """What resolvers see as ``info.context.response``: a status and headers to
    merge into the answer, as strawberry's sub-response, without building the
    empty body and default headers that strawberry then deletes again."""

    def __init__(self) -> None:
        self.status_code = None  # type: ignore[assignment]
        self.background = None
        self.body = b""
        self.raw_headers = []


class JSONBody(Response):
    """A response whose body is already encoded, with the headers strawberry's
    ``create_response`` sends: content-length, content-type, then the headers
    a resolver set on the sub-response."""

    def __init__(self, body: bytes, sub_response: Response) -> None:
        self.status_code = sub_response.status_code or 200
        self.background = sub_response.background
        self.body = body
        self.raw_headers = [
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"content-type", b"application/json"),
            *sub_response.raw_headers,
        ]


async def answer(
    view: GraphQL[Any, Any], request: Request, encode: Callable[[object], bytes]
) -> Response | None:
    """The response to a plain JSON POST, or None to hand the request to the view.

    Raises the view's ``HTTPException`` (status 400) where strawberry's view would.
    """
    try:
        data = view.decode_json(await request.body())
    except JSONDecodeError as exc:
        raise HTTPException(400, "Unable to parse request body as JSON") from exc
    if type(data) is not dict:
        if type(data) is list:
            return None  # a batch: the view answers that batching is off
        # Strawberry's view fails on this with an AttributeError (a 500 and a
        # logged traceback); the request is the client's mistake.
        raise HTTPException(400, "The GraphQL request must be a JSON object")
    query = data.get("query")
    variables = data.get("variables")
    extensions = data.get("extensions")
    if not (variables is None or type(variables) is dict) or not (
        extensions is None or type(extensions) is dict
    ):
        return None
    operation_name = data.get("operationName")
    note_operation(operation_name, extensions)  # the access line's
    if extensions:
        # Raises PersistedQueryError (the view answers it) for an unknown hash.
        query = await view.persisted.query_for(query, extensions)  # type: ignore[attr-defined]
    if type(query) is not str:
        return None

    root_value = await view.get_root_value(request)
    sub_response = await view.get_sub_response(request)
    context = await view.get_context(request, response=sub_response)
    try:
        result = await view.schema.execute(
            query,
            root_value=root_value,
            variable_values=variables,
            context_value=context,
            operation_name=operation_name,
            allowed_operation_types=_POST_OPERATIONS,
            operation_extensions=extensions,
        )
    except CannotGetOperationTypeError as exc:
        raise HTTPException(400, exc.as_http_error_reason()) from exc
    except InvalidOperationTypeError as exc:
        raise HTTPException(400, exc.as_http_error_reason("POST")) from exc
    except MissingQueryError as exc:
        raise HTTPException(400, "No GraphQL query found in the request") from exc
    # serves() ruled out incremental delivery, the only other kind of result.
    assert isinstance(result, ExecutionResult)

    response_data = await view.process_result(request=request, result=result)
    if result.errors:
        view._handle_errors(result.errors, response_data)
    return JSONBody(encode(response_data), sub_response)
