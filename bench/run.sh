#!/usr/bin/env bash
# The one command: bash bench/run.sh [--quick] [--scenario N ...] [--profile]
# The soak:        bash bench/run.sh --soak [--soak-seconds N] [--embedded-redis] ...
# Analytics (7):   bash bench/run.sh --analytics [--events N] ...  (= python -m bench.analytics)
# Trending (8):    bash bench/run.sh --trending [--events N] ...   (= python -m bench.trending)
# Integrity (9):   bash bench/run.sh --integrity [--seconds N] [--json PATH]  (= python -m bench.integrity)
# Notifications (10): bash bench/run.sh --notifications [--json PATH]  (= python -m bench.notifications)
# Tracing overhead: bash bench/run.sh --tracing [--quick] [--repeat N]  (= python -m bench.tracing)
# Counter snapshots: bash bench/run.sh --snapshots [--size N] [--hll-size M]  (= python -m bench.snapshots)
# Redis Cluster: bash bench/run.sh --cluster [--quick] [--repeat N]  (= python -m bench.cluster)
# Creates/uses .venv, installs what the suite needs (wrk, redis-server via apt-get when
# missing; py-spy via pip for --profile), raises the fd limit, runs python -m bench.
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
command -v wrk >/dev/null || [ "${1:-}" = "--soak" ] || [ "${1:-}" = "--analytics" ] \
  || [ "${1:-}" = "--trending" ] || [ "${1:-}" = "--integrity" ] \
  || [ "${1:-}" = "--notifications" ] || [ "${1:-}" = "--snapshots" ] || need_apt+=(wrk)
command -v redis-server >/dev/null || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -c "import main, uvicorn, uvloop, httptools, websockets, httpx" 2>/dev/null \
  || pip install -q -e '.[dev]'
if [[ " $* " == *" --profile "* ]] && ! command -v py-spy >/dev/null; then
  pip install -q py-spy
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "${1:-}" = "--analytics" ]; then
  shift
  exec python -m bench.analytics "$@"   # scenario 7, in one process (bench/analytics.py)
fi
if [ "${1:-}" = "--trending" ]; then
  shift
  exec python -m bench.trending "$@"   # scenario 8, in one process (bench/trending.py)
fi
if [ "${1:-}" = "--notifications" ]; then
  shift
  exec python -m bench.notifications "$@"   # scenario 10, in one process (bench/notifications.py)
fi
if [ "${1:-}" = "--integrity" ]; then
  shift
  exec python -m bench.integrity "$@"   # scenario 9, the service as a process (bench/integrity.py)
fi
if [ "${1:-}" = "--cluster" ]; then
  shift
  exec python -m bench.cluster "$@"   # scenario 1 on one Redis and on a cluster (bench/cluster.py)
fi
if [ "${1:-}" = "--snapshots" ]; then
  shift
  exec python -m bench.snapshots "$@"   # restore after a Redis loss (bench/snapshots.py)
fi
if [ "${1:-}" = "--tracing" ]; then
  shift
  exec python -m bench.tracing "$@"   # scenario 1 with tracing off / on (bench/tracing.py)
fi
if [ "${1:-}" = "--soak" ]; then
  shift
  exec python -m bench.soak "$@"   # the embedded mode under a steady load (bench/soak.py)
fi
exec python -m bench "$@"
