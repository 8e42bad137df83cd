#!/usr/bin/env bash
# Runs the whole test suite: ruff (lint and format), the import contracts, the type checker's
# ratchet, then pytest against the machine's real PostgreSQL (127.0.0.1:5432) and Redis
# (127.0.0.1:6379), SQLite files, real RQ workers, the sandbox EHR over loopback and a real
# browser. Starts PostgreSQL or Redis when they are installed but down.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -x).
set -uo pipefail
cd "$(dirname "$0")/.."

ensure_postgres() {
  pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && return 0
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "test: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && return 0; sleep 1; done
  echo "test: PostgreSQL is not reachable on 127.0.0.1:5432" >&2
  return 1
}

ensure_redis() {
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
  if command -v redis-server >/dev/null 2>&1; then
    echo "test: starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
      --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0; sleep 1; done
  echo "test: Redis is not reachable on 127.0.0.1:6379" >&2
  return 1
}

ensure_postgres || exit 1
ensure_redis || exit 1

echo "test: ruff check, ruff format --check"
.venv/bin/ruff check . || exit 1
.venv/bin/ruff format --check . || exit 1

echo "test: import contracts (pyproject.toml's [tool.importlinter])"
.venv/bin/lint-imports --no-cache || exit 1

echo "test: type check (mypy, never worse than scripts/typecheck-baseline.json)"
.venv/bin/python scripts/typecheck.py || exit 1

echo "test: pytest"
.venv/bin/python -m pytest -p no:cacheprovider --durations=40 "$@"
status=$?
if [ "$status" = 5 ]; then
  # pytest's "no tests collected": a selection that matched nothing is not a failure here,
  # but say so loudly.
  echo "test: pytest collected no tests for: $*" >&2
  exit 0
fi
exit "$status"
