"""The committed schema.graphql is the contract; it must match what the code builds."""

from pathlib import Path

from schema.root import build_schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_committed_schema_matches_code():
    built = build_schema().as_str().strip() + "\n"
    committed = SCHEMA_FILE.read_text()
    assert committed == built, (
        "schema.graphql is out of date: run `python main.py schema > schema.graphql` "
        "and review the diff (clients rely on these names)"
    )
