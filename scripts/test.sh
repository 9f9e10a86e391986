#!/usr/bin/env bash
# Set up (scripts/setup-env.sh), make sure Debian's chromium is there for the browser tests,
# then run the whole test suite (ruff included) on every core. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing Debian's chromium for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test: chromium not found and not root; the browser tests will be skipped"
  fi
fi
# Tests run on every core (pytest-xdist); the Dask, chromium and notebook tests are grouped
# (xdist_group), each group on one worker.
exec .venv/bin/python -m pytest -n auto --dist loadgroup "$@"
