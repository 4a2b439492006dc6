"""Server errors are logged with their traceback rendered, in both log formats;
client errors at INFO, without one."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from graphql import GraphQLError

from main import Settings, configure_logging
from schema.errors import ErrorCodes, log_client_errors


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _bug() -> GraphQLError:
    try:
        raise ZeroDivisionError("a bug")
    except ZeroDivisionError as exc:
        return GraphQLError("a bug", original_error=exc)


@pytest.mark.parametrize("log_json", [True, False])
def test_a_server_error_is_logged_with_its_traceback(restore_logging, log_json: bool) -> None:
    out = io.StringIO()
    configure_logging(Settings(log_json=log_json), stream=out)
    masked = ErrorCodes()._classify(_bug())
    assert masked.extensions == {"code": "INTERNAL_SERVER_ERROR"}
    text = out.getvalue()
    assert "Traceback (most recent call last)" in text
    assert "ZeroDivisionError: a bug" in text
    assert "<traceback object" not in text
    assert "error" in text.lower()
    if log_json:
        record = json.loads(text.strip().splitlines()[-1])
        assert record["level"] == "error"
        assert "ZeroDivisionError" in record["exception"]


@pytest.mark.parametrize("log_json", [True, False])
def test_a_client_error_is_one_info_line(restore_logging, log_json: bool) -> None:
    out = io.StringIO()
    configure_logging(Settings(log_json=log_json), stream=out)
    log_client_errors([GraphQLError("Cannot query field 'x' on type 'Query'.")])
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    assert "info" in lines[0].lower() and "Cannot query field" in lines[0]
    assert "Traceback" not in lines[0]


def test_uvicorns_access_lines_give_way_to_ours(restore_logging) -> None:
    # transport/request_id.py writes the access line (ACCESS_LOG), with the request id
    # and without the client's address; uvicorn's own would repeat it with the address.
    access = logging.getLogger("uvicorn.access")
    saved = access.handlers[:], access.propagate
    try:
        out = io.StringIO()
        configure_logging(Settings(), stream=out)
        assert not access.hasHandlers()
        access.info('%s - "%s %s HTTP/%s" %d', "10.0.0.1", "GET", "/x", "1.1", 200)
        assert out.getvalue() == ""
    finally:
        access.handlers[:], access.propagate = saved
