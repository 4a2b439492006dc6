"""Processes the suite owns: a private redis-server, the service under uvicorn, CPU sampling."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc (0.0 once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class CpuMeter:
    """CPU used by named processes between start() and stop(), in % of one core."""

    pids: dict[str, int]
    _t0: float = 0.0
    _c0: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._c0 = {n: cpu_seconds(p) for n, p in self.pids.items()}

    def stop(self, extra: dict[str, float] | None = None) -> dict[str, float]:
        wall = max(time.perf_counter() - self._t0, 1e-9)
        out = {
            n: round(100 * (cpu_seconds(p) - self._c0[n]) / wall, 1) for n, p in self.pids.items()
        }
        for name, secs in (extra or {}).items():
            out[name] = round(100 * secs / wall, 1)
        return out


class Redis:
    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise SystemExit("redis-server not found (apt-get install -y redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                "--maxclients",
                "10000",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise SystemExit("redis-server did not start")

    def flushall(self) -> None:
        import redis

        r = redis.Redis.from_url(self.url)
        r.flushall()
        r.close()

    def stop(self) -> None:
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self.proc.poll() is None:
            self.proc.kill()


def uvicorn_fast_flags() -> list[str]:
    flags = []
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401

        flags += ["--loop", "uvloop"]
    with contextlib.suppress(ImportError):
        import httptools  # noqa: F401

        flags += ["--http", "httptools"]
    return flags


class Server:
    """The app under uvicorn in its own process: ``target`` is ``module:factory``."""

    def __init__(self, target: str, env: dict[str, str], log_path: Path, root: Path = ROOT) -> None:
        # ``root``: the tree the app is imported from (the soak compares another checkout).
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("w")
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            target,
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--ws",
            "websockets",
            # As `main.py serve`: live pushes are ~100-byte JSON frames, and
            # per-connection zlib on each cost more CPU than it saved bytes.
            "--ws-per-message-deflate",
            "false",
            *uvicorn_fast_flags(),
        ]
        self.cmd = cmd
        self.proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"{target} exited at start; see {log_path}:\n" + log_path.read_text()[-3000:]
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"{target} did not become healthy; see {log_path}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@contextlib.contextmanager
def server(target: str, env: dict[str, str], log_path: Path) -> Iterator[Server]:
    s = Server(target, env, log_path)
    try:
        yield s
    finally:
        s.stop()
