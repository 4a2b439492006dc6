"""Scenario 1 on a Redis Cluster (docs/PERFORMANCE.md, "Redis Cluster").

    bash bench/run.sh --cluster [--quick] [--repeat N] [--json PATH]
    (= .venv/bin/python -m bench.cluster ...)

Scenario 1 (like/unlike over HTTP, 10,000 contents, bench/suite.py) three ways in one
run, each on a fresh server and fresh data: the control (a bare Starlette route on
the single Redis), the service on one Redis (REDIS_URL), and the service on a local
three-primary cluster (REDIS_CLUSTER_URL, tests/cluster/cluster.py). With --repeat the
three alternate and the figures are medians. Every process shares one machine, so the
cluster's three redis-servers compete with the service for the same cores: this
measures what the cluster client costs the API process, not a cluster's capacity.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.procs import RESULTS, ROOT, CpuMeter
from bench.suite import CONTROL, N_CONTENTS, PRODUCT, Ctx, cpu_note, describe, register, wrk

MODES = ("control", "one Redis", "cluster")


@contextlib.contextmanager
def _cluster() -> Iterator[Any]:
    from tests.cluster.cluster import local_cluster

    with (
        tempfile.TemporaryDirectory(prefix="likeview-cluster-") as tmp,
        local_cluster(Path(tmp)) as cluster,
    ):
        yield cluster


def _flush_cluster(url: str) -> None:
    from redis.cluster import RedisCluster

    client = RedisCluster.from_url(url)
    try:
        client.flushall(target_nodes=RedisCluster.PRIMARIES)
    finally:
        client.close()


def one_round(ctx: Ctx, cluster: Any) -> dict[str, Any]:
    args = [str(ctx.tokens_file), str(N_CONTENTS)]
    base_env = dict(ctx.env)
    out: dict[str, Any] = {}
    for mode in MODES:
        ctx.env = dict(base_env)
        redis: Any = ctx.redis
        if mode == "cluster":
            del ctx.env["REDIS_URL"]
            ctx.env["REDIS_CLUSTER_URL"] = cluster.url
            _flush_cluster(cluster.url)
            # wrk's meter takes one Redis process; the three nodes are metered below.
            redis = SimpleNamespace(proc=cluster.procs[0])
        target, script_mode = (CONTROL, "control") if mode == "control" else (PRODUCT, "graphql")
        with ctx.fresh(target, mode.replace(" ", "-")) as srv:
            register(ctx, srv, control=mode == "control")
            wrk(srv, redis, "like.lua", [*args, script_mode], 2, 16)  # warm-up
            nodes = CpuMeter({f"node{i}": p.pid for i, p in enumerate(cluster.procs)})
            nodes.start()
            res = wrk(srv, redis, "like.lua", [*args, script_mode], ctx.dur, 16)
            if mode == "cluster":
                res["cpu_pct"].pop("redis", None)
                res["cpu_pct"]["redis (3 nodes)"] = round(sum(nodes.stop().values()), 1)
        out[mode] = res
        print(f"  {mode}: {describe(res)}; {cpu_note(res)}", flush=True)
    ctx.env = base_env
    return out


IN_PROCESS = (("like", ["--mode", "like"]), ("100-card feed", ["--mode", "feed", "--cards", "100"]))
_CPU = re.compile(r"CPU ([0-9.]+) ms/request, wall ([0-9.]+) ms/request")


def in_process(cluster: Any, requests: int) -> dict[str, dict[str, list[float]]]:
    """CPU and wall time per request of the app driven in process (bench/inprocess.py),
    on one Redis and on the cluster: the client's cost without HTTP or load tools."""
    out: dict[str, dict[str, list[float]]] = {}
    for what, flags in IN_PROCESS:
        for mode in MODES[1:]:
            extra = ["--redis-cluster-url", cluster.url] if mode == "cluster" else []
            if mode == "cluster":
                _flush_cluster(cluster.url)
            cmd = [sys.executable, "-m", "bench.inprocess", *flags, "--requests", str(requests)]
            done = subprocess.run(
                [*cmd, *extra],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=900,
            )
            m = _CPU.search(done.stdout)
            if m is None:
                raise SystemExit(f"bench.inprocess failed:\n{done.stdout}\n{done.stderr[-2000:]}")
            row = out.setdefault(f"{what}, {mode}", {"cpu_ms": [], "wall_ms": []})
            row["cpu_ms"].append(float(m.group(1)))
            row["wall_ms"].append(float(m.group(2)))
            print(f"  in process, {what}, {mode}: {m.group(0)}", flush=True)
    return out


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def med(mode: str, key: str) -> float:
        return round(statistics.median(r[mode][key] for r in rounds), 1)

    def med_lat(mode: str, p: str) -> float:
        return round(statistics.median(r[mode]["lat_ms"][p] for r in rounds), 2)

    def cpu_ms(mode: str, proc: str) -> float:
        # CPU per request: on a shared, busy machine the throughputs follow whatever
        # CPU the processes got; the CPU each request cost is steadier.
        def one(r: dict[str, Any]) -> float:
            cpu = r[mode]["cpu_pct"]
            pct = cpu.get(proc, cpu.get("redis (3 nodes)", 0.0)) if proc == "redis" else cpu[proc]
            return float(pct) * 10 / max(r[mode]["ok_rps"], 1e-9)

        return round(statistics.median(one(r) for r in rounds), 3)

    out: dict[str, Any] = {"rounds": len(rounds)}
    for mode in MODES:
        out[mode] = {
            "ok_rps": med(mode, "ok_rps"),
            "p50_ms": med_lat(mode, "p50"),
            "p99_ms": med_lat(mode, "p99"),
            "server_cpu_ms_per_like": cpu_ms(mode, "server"),
            "redis_cpu_ms_per_like": cpu_ms(mode, "redis"),
            "errors": sum(r[mode]["gql_errors"] + r[mode]["bad_status"] for r in rounds),
        }
    out["cluster vs one Redis, server CPU per like %"] = round(
        100
        * out["cluster"]["server_cpu_ms_per_like"]
        / max(out["one Redis"]["server_cpu_ms_per_like"], 1e-9),
        1,
    )
    ratios = [r["cluster"]["ok_rps"] / r["one Redis"]["ok_rps"] for r in rounds]
    out["cluster vs one Redis %"] = round(100 * statistics.median(ratios), 1)
    out["one Redis vs control %"] = round(
        100 * statistics.median(r["one Redis"]["ok_rps"] / r["control"]["ok_rps"] for r in rounds),
        1,
    )
    out["cluster vs control %"] = round(
        100 * statistics.median(r["cluster"]["ok_rps"] / r["control"]["ok_rps"] for r in rounds), 1
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="5 s of load per run")
    ap.add_argument("--repeat", type=int, default=1, metavar="N", help="rounds (medians)")
    ap.add_argument("--json", type=Path, default=RESULTS / "cluster.json")
    ap.add_argument("--requests", type=int, default=3000, help="in-process requests per run")
    ap.add_argument("--only-in-process", action="store_true", help="skip the wrk runs")
    a = ap.parse_args(argv)
    ctx = Ctx(argparse.Namespace(quick=a.quick, no_rate_limits=False))
    rounds: list[dict[str, Any]] = []
    inproc: dict[str, dict[str, list[float]]] = {}
    try:
        with _cluster() as cluster:
            print(f"# cluster primaries on ports {cluster.ports}", flush=True)
            for i in range(a.repeat):
                print(f"\n## round {i + 1}/{a.repeat}", flush=True)
                if not a.only_in_process:
                    rounds.append(one_round(ctx, cluster))
                for key, row in in_process(cluster, a.requests).items():
                    for k, v in row.items():
                        inproc.setdefault(key, {}).setdefault(k, []).extend(v)
    finally:
        ctx.close()
    summary = summarize(rounds) if rounds else {}
    summary["in process (medians, ms/request)"] = {
        key: {k: round(statistics.median(v), 3) for k, v in row.items()}
        for key, row in inproc.items()
    }
    print(json.dumps(summary, indent=2), flush=True)
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps({"summary": summary, "rounds": rounds}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
