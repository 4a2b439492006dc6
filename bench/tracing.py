"""Tracing overhead (docs/PERFORMANCE.md, "Tracing overhead").

    bash bench/run.sh --tracing [--quick] [--repeat N] [--requests N]
    (= .venv/bin/python -m bench.tracing ...)

Scenario 1 (like/unlike over HTTP, bench/suite.py) three ways in one run, each on a
fresh server: the control (a bare Starlette route), the service with tracing off,
and the service with tracing on, exporting over OTLP/HTTP to a collector stand-in (a
process that accepts POST /v1/traces and discards it). Then the same three ways in
process (bench/inprocess.py, no sockets: CPU per like), and the per-call cost of the
hooks that stay on the hot path when tracing is off.
"""

from __future__ import annotations

import argparse
import http.server
import json
import statistics
import subprocess
import sys
import timeit
from pathlib import Path
from typing import Any

from bench.procs import RESULTS, ROOT, free_port
from bench.suite import CONTROL, N_CONTENTS, PRODUCT, Ctx, cpu_note, describe, register, wrk


class _Discard(http.server.BaseHTTPRequestHandler):
    spans_bytes = 0

    def do_POST(self) -> None:
        size = int(self.headers.get("content-length") or 0)
        self.rfile.read(size)
        # An empty ExportTraceServiceResponse: zero bytes of protobuf.
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
        type(self).spans_bytes += size
        self.server.posts += 1  # type: ignore[attr-defined]

    def log_message(self, *args: Any) -> None:
        pass


def collector(port: int, report: Path) -> None:
    """The stand-in: until killed, counts the export requests and their bytes."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Discard)
    srv.posts = 0  # type: ignore[attr-defined]
    import signal

    def stop(*_: Any) -> None:
        report.write_text(json.dumps({"posts": srv.posts, "bytes": _Discard.spans_bytes}))  # type: ignore[attr-defined]
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    srv.serve_forever()


class Collector:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.report = tmp / f"collector-{self.port}.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.tracing", "collector", str(self.port), str(self.report)],
            cwd=ROOT,
        )

    def stop(self) -> dict[str, int]:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        return dict(json.loads(self.report.read_text())) if self.report.exists() else {}


MODES = ("control", "tracing off", "tracing on")


def scenario1(ctx: Ctx, col: Collector) -> dict[str, Any]:
    args = [str(ctx.tokens_file), str(N_CONTENTS)]
    out: dict[str, Any] = {}
    base_env = dict(ctx.env)
    for mode in MODES:
        ctx.env = dict(base_env)
        if mode == "tracing on":
            ctx.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = col.url
        target, script_mode = (CONTROL, "control") if mode == "control" else (PRODUCT, "graphql")
        with ctx.fresh(target, mode.replace(" ", "-")) as srv:
            register(ctx, srv, control=mode == "control")
            wrk(srv, ctx.redis, "like.lua", [*args, script_mode], 2, 16)  # warm-up
            res = wrk(srv, ctx.redis, "like.lua", [*args, script_mode], ctx.dur, 16)
        # The server's CPU per answered like: steadier than throughput on a shared
        # machine, where the server may get a fraction of a core.
        secs = res["duration_us"] / 1e6
        res["server_cpu_ms_per_ok"] = round(
            10 * res["cpu_pct"]["server"] * secs / max(1, res["ok"]), 3
        )
        out[mode] = res
        print(f"  {mode}: {describe(res)}; {cpu_note(res)}", flush=True)
        print(f"  {mode}: server CPU {res['server_cpu_ms_per_ok']} ms per like", flush=True)
    ctx.env = base_env
    c = out["control"]["ok_rps"] or 1.0
    for mode in MODES[1:]:
        out[f"{mode} vs control %"] = round(100 * out[mode]["ok_rps"] / c, 1)
    off = out["tracing off"]["ok_rps"] or 1.0
    out["tracing on vs off %"] = round(100 * out["tracing on"]["ok_rps"] / off, 1)
    off_cpu = out["tracing off"]["server_cpu_ms_per_ok"] or 1.0
    out["CPU per like, on vs off %"] = round(
        100 * out["tracing on"]["server_cpu_ms_per_ok"] / off_cpu, 1
    )
    for key in RATIOS:
        print(f"  {key}: {out[key]}", flush=True)
    return out


RATIOS = (
    "tracing off vs control %",
    "tracing on vs control %",
    "tracing on vs off %",
    "CPU per like, on vs off %",
)


def inprocess(requests: int, collector_url: str, tmp: Path) -> dict[str, str]:
    """CPU per like, in process (bench/inprocess.py), tracing off and on."""
    out: dict[str, str] = {}
    for mode in MODES[1:]:
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
        if mode == "tracing on":
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector_url
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.inprocess",
                "--mode",
                "like",
                "--requests",
                str(requests),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        line = (done.stdout.strip().splitlines() or [done.stderr[-500:]])[-1]
        out[mode] = line
        print(f"  in process, {mode}: {line}", flush=True)
    return out


def hooks() -> dict[str, float]:
    """ns per call of what a like and an aggregator batch run when tracing is off."""
    sys.path.insert(0, str(ROOT))
    import tracing
    from domain.events import current_traceparent

    assert tracing.tracer is None
    n = 1_000_000
    best = min(timeit.repeat(current_traceparent, number=n, repeat=5))
    check = min(
        timeit.repeat(
            "tracing.tracer is not None", globals={"tracing": tracing}, number=n, repeat=5
        )
    )
    out = {
        "current_traceparent() ns": round(best / n * 1e9, 1),
        "tracer check ns": round(check / n * 1e9, 1),
    }
    print(f"  hooks with tracing off: {out}", flush=True)
    return out


FEED = (
    "query Feed($ids: [ID!]!) { engagementSummaries(contentIds: $ids) "
    "{ contentId likes viewerReaction reactions { reaction count } } }"
)


async def _graphql_spans(n: int) -> dict[str, float]:
    """CPU per operation (a 10-card feed read, embedded backends) of the schema alone:
    no tracing, strawberry's OpenTelemetryExtension, and tracing/graphql.py's one span."""
    sys.path.insert(0, str(ROOT))
    import time

    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from strawberry.extensions.tracing import OpenTelemetryExtension

    import main as app_main
    import tracing
    from domain.catalog import register_content
    from domain.contents import ContentKind
    from domain.identity import Actor
    from resolvers.context import Context, Loaders
    from schema.root import build_schema
    from tracing.graphql import trace_operations
    from tracing.setup import install, uninstall

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = install(tracing.TracingConfig(), Discard(), set_global=False)
    ids = [f"c{i}" for i in range(10)]
    out: dict[str, float] = {}
    async with app_main.open_runtime(app_main.Settings()) as runtime:
        for cid in ids:
            await register_content(
                runtime.deps, Actor("svc", frozenset({"service"})), cid, "cr", ContentKind.VIDEO, 1
            )
        for label, fast, ext, lean in (
            ("stock, no tracing", False, False, False),
            ("stock, strawberry OpenTelemetryExtension", False, True, False),
            ("stock, one span per operation", False, False, True),
            ("fast paths, no tracing", True, False, False),
            ("fast paths, one span per operation", True, False, True),
        ):
            schema = build_schema(fast_paths=fast)
            if ext:
                schema.extensions = (
                    *schema.extensions,
                    lambda: OpenTelemetryExtension(tracer_provider=provider),
                )
            if lean:
                trace_operations(schema)

            async def once(schema: Any = schema) -> None:
                ctx = Context(runtime.services, None, Loaders(runtime.deps, None))
                r = await schema.execute(FEED, {"ids": ids}, ctx, operation_name="Feed")
                assert not r.errors, r.errors

            for _ in range(200):
                await once()
            cpu = time.process_time()
            for _ in range(n):
                await once()
            out[label] = round((time.process_time() - cpu) / n * 1e6, 1)
            print(f"  {label}: {out[label]} µs CPU per operation", flush=True)
    uninstall()
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["collector"]:
        collector(int(argv[1]), Path(argv[2]))
        return 0
    p = argparse.ArgumentParser(prog="python -m bench.tracing", description=__doc__)
    p.add_argument("--quick", action="store_true", help="5 s of load instead of 12")
    p.add_argument("--repeat", type=int, default=1, help="scenario 1 runs (medians reported)")
    p.add_argument("--requests", type=int, default=3000, help="in-process likes per mode")
    p.add_argument("--no-rate-limits", action="store_true")
    p.add_argument("--skip-wrk", action="store_true", help="only the in-process figures")
    p.add_argument(
        "--graphql-only",
        action="store_true",
        help="only compare strawberry's OpenTelemetryExtension with the one span",
    )
    args = p.parse_args(argv)
    if args.graphql_only:
        import asyncio

        print(json.dumps(asyncio.run(_graphql_spans(args.requests)), indent=1))
        return 0
    ctx = Ctx(args)
    col = Collector(ctx.tmp)
    result: dict[str, Any] = {"hooks": hooks()}
    try:
        runs = []
        if not args.skip_wrk:
            for run in range(args.repeat):
                print(f"\n## scenario 1, tracing off / on / control (run {run + 1})", flush=True)
                runs.append(scenario1(ctx, col))
        result["scenario1"] = runs
        if runs:
            result["medians"] = {k: statistics.median(r[k] for r in runs) for k in RATIOS}
            print(f"\n## medians of {len(runs)}: {result['medians']}", flush=True)
        print("\n## in process (CPU per like)", flush=True)
        result["inprocess"] = inprocess(args.requests, col.url, ctx.tmp)
    finally:
        result["collector"] = col.stop()
        ctx.close()
    print(f"  collector stand-in received: {result['collector']}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tracing.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {(RESULTS / 'tracing.json').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
