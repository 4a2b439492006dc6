"""Start-up against a MongoDB that is not there: one clear line, a non-zero exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import REPO, _free_port, _wait_ready


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


# --- serve --workers N (issue 15, Deployment) -------------------------------------------


@pytest.mark.parametrize(
    ("env", "names"),
    [({}, "MONGODB_URL and REDIS_URL"), ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "MONGODB_URL")],
    ids=["no-stores", "no-mongodb"],
)
def test_serve_workers_without_the_stores_is_one_line_and_exit_2(
    env: dict[str, str], names: str
) -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URL", "REDIS_URL")}
    done = subprocess.run(
        [sys.executable, "main.py", "serve", "--workers", "2"],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"serve --workers 2 needs {names}:" in lines[0]
    assert "Traceback" not in done.stderr


def test_a_spawned_worker_process_imports_the_app_factory_from_the_script() -> None:
    # multiprocessing's spawn runs main.py as __mp_main__ in each worker process (its
    # `prepare`, as a spawned child calls it), then uvicorn imports main.SERVE_APP by
    # name: one module, its metrics registered once.
    code = (
        "from multiprocessing import spawn\n"
        "spawn.prepare({'init_main_from_path': 'main.py'})\n"
        "from uvicorn.importer import import_from_string\n"
        "import main\n"
        "factory = import_from_string(main.SERVE_APP)\n"
        "app = factory()\n"
        "print(type(app).__name__, factory.__module__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URL", "REDIS_URL")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Starlette", "__mp_main__"], done.stdout


def test_serve_workers_starts_the_processes_and_answers(tmp_path: Any) -> None:
    # The multi-process path as `serve --workers 2` runs it (main.uvicorn_options,
    # main.SERVE_APP), here without the stores `main.py` requires for it: each process
    # has its own embedded backends, which /readyz and a query do not notice.
    port = _free_port()
    code = (
        "import uvicorn, main\n"
        f"options = main.uvicorn_options(main.Settings(), '127.0.0.1', {port})\n"
        "main.configure_logging(main.Settings())\n"
        "uvicorn.run(main.SERVE_APP, factory=True, workers=2, **options)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URL", "REDIS_URL")}
    log_path = tmp_path / "serve-workers.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=REPO,
            env={**env, "PYTHONUNBUFFERED": "1", "GRAPHIQL": "false"},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc, log_path)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as client:
            for _ in range(6):
                r = client.post("/graphql", json={"query": "{ __typename }"})
                assert r.json() == {"data": {"__typename": "Query"}}
        deadline = time.monotonic() + 30
        while log_path.read_text().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)  # the interval of a bounded poll
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    logs = log_path.read_text()
    assert "Traceback" not in logs, logs
    assert "Duplicated timeseries" not in logs
