"""The lean POST path answers byte for byte as strawberry's own view does.

Each request of the table goes once through a GraphQLApp whose fast paths are
on (the lean POST path, and the schema's prepared execution) and once through
one where both are off (strawberry's view and strawberry's execute), each
against its own freshly registered content, so both see the same state.
Status, every header, the body and the operation metrics must be equal (after
swapping the content ids).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from main import Settings, open_runtime
from resolvers.auth import issue_token
from schema.metrics import OPERATIONS
from schema.prepared import PreparedExecution
from schema.root import LikeviewSchema
from transport import http_post
from transport.graphql_app import GraphQLApp

SECRET = "unit-http-post-secret-0123456789abcdef"
ALICE = issue_token(SECRET, "alice")
SERVICE = issue_token(SECRET, "ingest", ["service"])
JSON = [(b"content-type", b"application/json")]

LIKE = """mutation Like($input: LikeInput!) {
  like(input: $input) {
    contentId viewerReaction changed summary { likes reactions { reaction count } }
  }
}"""
TWO_OPS = """query A($id: ID!) { engagementSummary(contentId: $id) { contentId likes } }
query B($id: ID!) { engagementSummary(contentId: $id) { likes viewerReaction } }"""
FEED = """query($ids: [ID!]!) { engagementSummaries(contentIds: $ids) {
  contentId likes viewerReaction reactions { reaction count } } }"""


def post(payload: Any, *, bearer: str | None = ALICE, headers: Any = JSON) -> dict[str, Any]:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    h = list(headers)
    if bearer is not None:
        h.append((b"authorization", f"Bearer {bearer}".encode()))
    return {"method": "POST", "headers": h, "body": body}


def get(qs: str, headers: Any = ()) -> dict[str, Any]:
    return {"method": "GET", "headers": list(headers), "body": b"", "qs": qs.encode()}


def like(cid: str = "{cid}", **kw: Any) -> dict[str, Any]:
    return {"query": LIKE, "variables": {"input": {"contentId": cid, **kw}}}


# (name, request, whether the lean path answers it itself)
CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("like", post(like()), True),
    ("like again: unchanged", post(like()), True),
    (
        "like with a reaction and a request id",
        post(like(reaction="LOVE", requestId="r-{cid}")),
        True,
    ),
    ("idempotent replay", post(like(reaction="LOVE", requestId="r-{cid}")), True),
    ("request id reused for another input", post(like(reaction="WOW", requestId="r-{cid}")), True),
    ("unknown content", post(like("no-such-content")), True),
    ("anonymous mutation", post(like(), bearer=None), True),
    ("invalid token", post(like(), bearer="not-a-jwt"), True),
    (
        "not a bearer scheme",
        post(like(), bearer=None, headers=[*JSON, (b"authorization", b"Token abc")]),
        True,
    ),
    ("feed", post({"query": FEED, "variables": {"ids": ["{cid}", "nope", "{cid}"]}}), True),
    ("anonymous feed", post({"query": FEED, "variables": {"ids": ["{cid}"]}}, bearer=None), True),
    (
        "operationName A",
        post({"query": TWO_OPS, "variables": {"id": "{cid}"}, "operationName": "A"}),
        True,
    ),
    (
        "operationName B",
        post({"query": TWO_OPS, "variables": {"id": "{cid}"}, "operationName": "B"}),
        True,
    ),
    ("unknown operationName", post({"query": TWO_OPS, "operationName": "C"}), True),
    ("two operations, no operationName", post({"query": TWO_OPS, "variables": {"id": "x"}}), True),
    ("operationName not a string", post({"query": TWO_OPS, "operationName": 5}), True),
    ("syntax error", post({"query": '{ engagementSummary(contentId: "x") { likes }'}), True),
    ("unknown field", post({"query": "{ noSuchField }"}), True),
    ("variable of the wrong type", post(like(reaction="MEH")), True),
    ("missing variable", post({"query": LIKE}), True),
    (
        "variables null",
        post({"query": '{ engagementSummary(contentId: "{cid}") { likes } }', "variables": None}),
        True,
    ),
    (
        "extensions object",
        post({"query": '{ engagementSummary(contentId: "x") { likes } }', "extensions": {"a": 1}}),
        True,
    ),
    (
        "a connection",
        post({"query": '{ reactors(contentId: "{cid}") { edges { node { userId } } } }'}),
        True,
    ),
    (
        "charset parameter",
        post(like(), headers=[(b"content-type", b"application/json; charset=utf-8")]),
        True,
    ),
    ("malformed JSON", post(b'{"query": "{ x }"'), True),
    ("empty body", post(b""), True),
    ("not UTF-8", post(b'{"query": "\xff"}'), True),
    ("missing query", post({"variables": {}}), False),
    ("query null", post({"query": None}), False),
    ("query not a string", post({"query": 5}), False),
    ("variables not an object", post({"query": "{ x }", "variables": [1]}), False),
    ("extensions not an object", post({"query": "{ x }", "extensions": "x"}), False),
    ("batch", post([{"query": "{ x }"}]), False),
    ("uppercase media type", post(like(), headers=[(b"content-type", b"Application/JSON")]), False),
    ("text/plain", post(like(), headers=[(b"content-type", b"text/plain")]), False),
    ("no content type", post(like(), headers=[]), False),
    (
        "multipart",
        post(
            b"--x\r\n\r\n--x--\r\n", headers=[(b"content-type", b"multipart/form-data; boundary=x")]
        ),
        False,
    ),
    ("query over GET", get('query={ engagementSummary(contentId: "{cid}") { likes } }'), False),
    (
        "mutation over GET",
        get('query=mutation { like(input: {contentId: "{cid}"}) { changed } }'),
        False,
    ),
    ("GraphiQL", get("", [(b"accept", b"text/html")]), False),
    ("PUT", {"method": "PUT", "headers": JSON, "body": b"{}"}, False),
]


NOT_PREPARED = {
    "unknown operationName",
    "two operations, no operationName",
    "operationName not a string",
    "syntax error",
    "unknown field",
    "mutation over GET",
}
PREPARED = {
    name for name, req, _ in CASES[: [c[0] for c in CASES].index("malformed JSON")]
} - NOT_PREPARED | {"query over GET"}


class Spy:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answered = 0
        self.prepared = 0
        real = http_post.answer
        real_run = PreparedExecution.run

        async def run(*args: Any, **kwargs: Any) -> Any:
            self.prepared += 1
            return await real_run(*args, **kwargs)

        monkeypatch.setattr(PreparedExecution, "run", run)

        async def spy(*args: Any, **kwargs: Any) -> Any:
            # An HTTPException (a 400) is an answer too; None hands over to the view.
            response = None
            try:
                response = await real(*args, **kwargs)
            finally:
                self.answered += response is not None or sys.exc_info()[0] is not None
            return response

        monkeypatch.setattr(http_post, "answer", spy)


async def call(app: GraphQLApp, req: dict[str, Any], cid: str) -> tuple[Any, ...]:
    body = req["body"].replace(b"{cid}", cid.encode())
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": req["method"],
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": req.get("qs", b"").replace(b"{cid}", cid.encode()),
        "headers": [(b"host", b"t"), *req["headers"]],
        "server": ("t", 80),
        "client": ("127.0.0.1", 1),
    }
    chunks = iter([{"type": "http.request", "body": body, "more_body": False}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(chunks, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await app(scope, receive, send)
    except Exception as exc:  # the view's own failures must match too
        return ("raised", type(exc))
    start, *bodies = sent
    payload = b"".join(m.get("body", b"") for m in bodies).replace(cid.encode(), b"CID")
    return (start["status"], start["headers"], payload)


@pytest.fixture
async def apps() -> AsyncIterator[tuple[GraphQLApp, GraphQLApp, Any]]:
    async with open_runtime(Settings(jwt_secret=SECRET)) as runtime:
        lean, view = GraphQLApp(runtime.services), GraphQLApp(runtime.services)
        assert isinstance(lean.schema, LikeviewSchema) and isinstance(view.schema, LikeviewSchema)
        assert lean._lean and lean.schema.prepared is not None
        view._lean = False
        view.schema.prepared = None
        yield lean, view, runtime


async def test_the_lean_path_serves_this_app() -> None:
    async with open_runtime(Settings(jwt_secret=SECRET)) as runtime:
        assert http_post.serves(GraphQLApp(runtime.services))


async def test_lean_and_strawberry_answer_alike(apps, monkeypatch) -> None:
    lean, view, _ = apps
    spy = Spy(monkeypatch)
    ids = itertools.count()
    pairs = []
    for app in (lean, view):
        cid = f"c-{next(ids)}"
        register = {
            "query": "mutation($i: RegisterContentInput!) "
            "{ registerContent(input: $i) { contentId } }",
            "variables": {"i": {"contentId": cid, "creatorId": "bob", "kind": "VIDEO"}},
        }
        assert (await call(app, post(register, bearer=SERVICE), cid))[0] == 200
        pairs.append((app, cid))
    ran_prepared: set[str] = set()
    for name, req, lean_answers in CASES:
        before, prepared = spy.answered, spy.prepared
        (lean_app, lean_cid), (view_app, view_cid) = pairs
        counts = operation_counts()
        got = await call(lean_app, req, lean_cid)
        answered = spy.answered - before
        lean_counts, counts = delta(counts), operation_counts()
        want = await call(view_app, req, view_cid)
        assert spy.answered - before == answered, name  # the view alone never uses them
        assert spy.prepared - prepared <= 1, name
        if spy.prepared > prepared:
            ran_prepared.add(name)
        assert got == want, name
        assert lean_counts == delta(counts), name
        assert answered == (1 if lean_answers else 0), name
    # What parses, validates and names one operation ran prepared; the rest, and
    # what never reached the schema, went through strawberry's execute.
    assert ran_prepared == PREPARED


def operation_counts() -> dict[tuple[str, ...], float]:
    return {
        tuple(s.labels.values()): s.value
        for metric in OPERATIONS.collect()
        for s in metric.samples
        if s.name.endswith("_total")
    }


def delta(before: dict[tuple[str, ...], float]) -> dict[tuple[str, ...], float]:
    after = operation_counts()
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


async def test_content_length_is_the_body_length(apps) -> None:
    lean, _, _ = apps
    chunks = iter([{"type": "http.request", "body": orjson.dumps({"query": "{ noSuchField }"})}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(chunks)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "headers": JSON,
        "query_string": b"",
    }
    await lean(scope, receive, send)
    headers = dict(sent[0]["headers"])
    assert int(headers[b"content-length"]) == len(sent[1]["body"])


@pytest.mark.parametrize("status", [None, 201, 401])
async def test_headers_and_status_a_resolver_sets_reach_the_answer(apps, status) -> None:
    lean, _, _ = apps
    data = {"data": {"x": "é"}}
    answers = []
    for build in (
        lambda sub: http_post.JSONBody(orjson.dumps(data), sub),
        lambda sub: lean.create_response(data, sub),  # strawberry's own
    ):
        sub = await lean.get_sub_response(None)
        sub.status_code = status
        sub.headers["x-trace"] = "t1"
        sub.set_cookie("seen", "1")
        response = build(sub)
        answers.append((response.status_code, response.raw_headers, response.body))
    assert answers[0] == answers[1]
    assert answers[0][0] == (status or 200)


@pytest.mark.parametrize("body", [b"null", b"5", b'"{ x }"', b"true"])
async def test_a_json_body_that_is_no_object_is_a_bad_request(apps, body) -> None:
    lean, view, _ = apps
    # Strawberry's own view failed on these (a 500); both paths answer 400 now.
    for app in (view, lean):
        status, _, payload = await call(app, post(body), "c-x")
        assert status == 400
        assert orjson.loads(payload) == {
            "errors": [
                {
                    "message": "The GraphQL request must be a JSON object",
                    "extensions": {"code": "BAD_REQUEST"},
                }
            ]
        }


async def test_a_subscription_over_post_is_a_bad_request(apps) -> None:
    lean, view, _ = apps
    req = post({"query": 'subscription { engagementUpdated(contentIds: ["x"]) { likes } }'})
    # Strawberry's view ran it as a query, which failed inside the resolver; the
    # schema's execute() refuses subscriptions now, so both paths answer 400.
    for app in (view, lean):
        status, _, payload = await call(app, req, "c-x")
        assert status == 400
        assert orjson.loads(payload) == {
            "errors": [
                {
                    "message": "subscriptions are not allowed when using POST",
                    "extensions": {"code": "BAD_REQUEST"},
                }
            ]
        }
