"""The alerting rules and the dashboard's queries are valid PromQL, and the alerts
behave (promtool, from Debian's `prometheus` package; `make test` installs it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

OPS = Path(__file__).resolve().parents[2] / "ops"
ALERTS = OPS / "prometheus" / "alerts.yml"
ALERT_TESTS = OPS / "prometheus" / "alerts_test.yml"
DASHBOARD = OPS / "grafana" / "likeview.json"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="no promtool on PATH (make test installs Debian's prometheus)"
)


def promtool(*args: str, cwd: Path | None = None) -> str:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@needs_promtool
def test_alert_rules_check() -> None:
    out = promtool("check", "rules", str(ALERTS))
    assert "SUCCESS" in out


@needs_promtool
def test_alert_rules_fire_as_their_tests_say() -> None:
    """Counter lag, event-log backlog and error rate, on made-up series."""
    promtool("test", "rules", ALERT_TESTS.name, cwd=ALERT_TESTS.parent)


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


@needs_promtool
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Each panel query, with Grafana's $__rate_interval filled in, as a recording rule."""
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, expr in enumerate(dashboard_queries()):
        expr = expr.replace("$__rate_interval", "5m")
        lines += [f"      - record: dashboard:q{i}", f"        expr: {json.dumps(expr)}"]
    rules = tmp_path / "dashboard_rules.yml"
    rules.write_text("\n".join(lines) + "\n")
    promtool("check", "rules", str(rules))


def test_the_dashboard_covers_every_alerted_metric() -> None:
    alerted = set(re.findall(r"likeview_[a-z_]+", ALERTS.read_text()))
    charted = set(re.findall(r"likeview_[a-z_]+", " ".join(dashboard_queries())))
    assert alerted <= charted, sorted(alerted - charted)


def test_dashboard_panels_do_not_overlap() -> None:
    board = json.loads(DASHBOARD.read_text())
    cells: set[tuple[int, int]] = set()
    for p in board["panels"]:
        g = p["gridPos"]
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & mine, p["title"]
        cells |= mine
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
