"""Parse and validation caching, and the limits they carry, on the real schema."""

from __future__ import annotations

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
    validations: list[Any] = []
    real = documents.validate_document

    def counting(*args: Any) -> Any:
        validations.append(args[1])
        return real(*args)

    monkeypatch.setattr(documents, "validate_document", counting)
    query = "{ __typename a: __typename }"  # unique to this test
    before = documents._parse.cache_info()
    for _ in range(5):
        result = await SCHEMA.execute(query)
        assert result.data == {"__typename": "Query", "a": "Query"}
    after = documents._parse.cache_info()
    assert after.misses - before.misses == 1
    assert after.hits - before.hits == 4
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


def test_the_validation_cache_is_bounded() -> None:
    cache = documents._Validated(maxsize=2)
    schema = SCHEMA._schema
    docs = [documents._parse(f"{{ f{i}: __typename }}", ()) for i in range(3)]
    for doc in docs:
        cache.errors(schema, doc, ())
    assert len(cache._entries) == 2
    assert (id(schema), id(docs[0])) not in cache._entries
