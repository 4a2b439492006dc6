"""Start-up against a MongoDB that is not there: one clear line, a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import REPO


@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize(
    ("url", "says"),
    [
        (
            "mongodb://127.0.0.1:1/",
            "MongoDB at 127.0.0.1:1 (MONGODB_URL) did not answer within 1 s",
        ),
        ("http://db.example/", "MONGODB_URL is not a MongoDB URL"),
    ],
)
def test_an_unusable_mongodb_url_is_one_line_and_exit_2(command: str, url: str, says: str) -> None:
    env = {**os.environ, "MONGODB_URL": url, "MONGODB_TIMEOUT_S": "1"}
    done = subprocess.run(
        [sys.executable, "main.py", command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert says in lines[0]
    assert "Traceback" not in done.stderr
