"""Parse and validation caching, and the limits they carry, on the real schema."""

from __future__ import annotations

import gc
import logging
import tracemalloc
from typing import Any

import pytest

from schema import documents
from schema.root import build_schema

SCHEMA = build_schema()


def aliases(n: int) -> str:
    fields = " ".join(f"a{i}: __typename" for i in range(n))
    return f"{{ {fields} }}"


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        (aliases(31), "aliases"),
        ("{ engagementSummary(contentId: ", "Syntax Error"),
        ("{ noSuchField }", "Cannot query field"),
    ],
)
async def test_refused_before_execution_with_a_code(query: str, fragment: str) -> None:
    result = await SCHEMA.execute(query)
    assert result.data is None
    assert result.errors
    assert fragment in result.errors[0].message
    assert (result.errors[0].extensions or {}).get("code") in {
        "GRAPHQL_VALIDATION_FAILED",
        "GRAPHQL_PARSE_FAILED",
    }


async def test_within_the_limits_passes_validation() -> None:
    for query in (aliases(30), "{ __schema { types { fields { type { ofType { name } } } } } }"):
        result = await SCHEMA.execute(query)
        assert not result.errors, result.errors


async def test_a_query_text_is_parsed_and_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parses: list[str] = []
    validations: list[Any] = []
    real_parse, real_validate = documents.parse, documents.validate_document

    def counting_parse(query: str, **options: Any) -> Any:
        parses.append(query)
        return real_parse(query, **options)

    def counting(*args: Any) -> Any:
        validations.append(args[1])
        return real_validate(*args)

    monkeypatch.setattr(documents, "parse", counting_parse)
    monkeypatch.setattr(documents, "validate_document", counting)
    query = "{ __typename a: __typename }"  # unique to this test
    for _ in range(5):
        result = await SCHEMA.execute(query)
        assert result.data == {"__typename": "Query", "a": "Query"}
    assert parses == [query]
    assert len(validations) == 1


async def test_invalid_documents_are_cached_with_their_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0
    real = documents.validate_document

    def counting(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args)

    monkeypatch.setattr(documents, "validate_document", counting)
    for _ in range(3):
        result = await SCHEMA.execute("{ alsoNoSuchField }")
        assert result.errors
        assert "alsoNoSuchField" in result.errors[0].message
    assert calls == 1


def _query(i: int, size: int) -> str:
    """A distinct valid query of about ``size`` characters: one long id list."""
    ids = ", ".join(f'"id-{j:05d}"' for j in range(max(1, (size - 60) // 12)))
    return f"{{ a{i}: engagementSummaries(contentIds: [{ids}]) {{ likes }} }}"


def test_the_cache_is_bounded_by_bytes_and_forgets_evicted_state() -> None:
    cache = documents.DocumentCache(max_bytes=300, max_query_bytes=120)
    queries = [_query(i, 100) for i in range(5)]
    docs = [cache.document(q, ()) for q in queries]
    assert cache.bytes <= 300
    assert len(cache) == 300 // len(queries[0])
    # The newest are kept, the oldest went, with their per-operation state.
    assert cache.document(queries[-1], ()) is docs[-1]
    assert documents.state_of(docs[-1].definitions[0]) is not None  # type: ignore[arg-type]
    assert documents.state_of(docs[0].definitions[0]) is None  # type: ignore[arg-type]
    assert cache.document(queries[0], ()) is not docs[0]


def test_a_text_above_the_size_limit_is_never_cached() -> None:
    cache = documents.DocumentCache(max_bytes=10_000, max_query_bytes=100)
    big = _query(0, 200)
    first, second = cache.document(big, ()), cache.document(big, ())
    assert first is not second
    assert len(cache) == 0 and cache.bytes == 0
    assert documents.state_of(first.definitions[0]) is None  # type: ignore[arg-type]
    errors = cache.errors(SCHEMA._schema, first, lambda s, d: [])
    assert errors == [] and len(cache) == 0


@pytest.mark.timeout(60)
def test_a_hundred_distinct_large_queries_leave_memory_flat() -> None:
    """Parsed and validated as the extension does: above the cached size nothing
    is kept; below it, the byte budget holds."""
    # Small sizes keep the test fast; the bounds are the same code at any size.
    policy = documents.DocumentPolicy(cache_bytes=16 * 1024, cache_max_query_bytes=2 * 1024)
    rules = documents.DocumentRules(policy)
    schema = SCHEMA._schema

    def run(first: int, count: int, size: int) -> None:
        for i in range(first, first + count):
            document = rules.cache.document(_query(i, size), rules.parse_options)
            assert rules.validate(schema, document, ()) == []

    large = policy.cache_max_query_bytes + 1_000
    run(0, 5, large)  # whatever is built once
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run(100, 100, large)
        gc.collect()
        after_large = tracemalloc.get_traced_memory()[0]
        run(1_000, 100, 1_500)
        gc.collect()
        after_cached = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(rules.cache) == 10 and rules.cache.bytes <= 16 * 1024
    # One parsed 3 KB query holds about 110 KB: a hundred kept would be 11 MB.
    assert after_large - before < 300_000
    # 16 KB of cached text: 10 queries of 1.5 KB, some 55 KB each.
    assert after_cached - before < 1_500_000


@pytest.mark.timeout(10)
async def test_parsing_stops_at_the_token_limit() -> None:
    query = '{ engagementSummary(contentId: "x") { ' + "likes " * 100_000 + "} }"
    result = await SCHEMA.execute(query)
    assert result.errors
    assert "tokens" in result.errors[0].message
    assert (result.errors[0].extensions or {}).get("code") == "GRAPHQL_PARSE_FAILED"


TWO_OPERATIONS = "query A { a: __typename } query B { b: __typename }"


async def test_several_operations_need_an_operation_name() -> None:
    result = await SCHEMA.execute(TWO_OPERATIONS)
    assert result.data is None
    assert result.errors
    assert "operation name" in result.errors[0].message
    assert (result.errors[0].extensions or {}).get("code") == "GRAPHQL_VALIDATION_FAILED"
    named = await SCHEMA.execute(TWO_OPERATIONS, operation_name="B")
    assert named.data == {"b": "Query"} and not named.errors


async def test_client_errors_are_logged_short_at_info(caplog: pytest.LogCaptureFixture) -> None:
    huge = '{ engagementSummary(contentId: "x") { ' + "likes " * 100_000 + "} }"
    with caplog.at_level(logging.DEBUG):
        for query in (huge, "{ noSuchFieldHere }", TWO_OPERATIONS):
            result = await SCHEMA.execute(query)
            assert result.errors
    assert caplog.records
    for record in caplog.records:
        assert record.levelno == logging.INFO, record.getMessage()[:200]
        assert record.exc_info is None
        assert len(record.getMessage()) < 300
