#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine, then runs the full suite.
#   bash scripts/test.sh [pytest arguments]
# System packages (Debian): docker-registry (the real registry the image-menu tests use),
# chromium (the end-to-end browser tests), runc (the OCI kubelet's container runtime; its
# tests fail without it) and postgresql (the menu database tests); npm:
# configurable-http-proxy (real JupyterHub tests).
# Python: a virtualenv in .venv with lsst_spawner installed in editable mode with its test extra.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v runc >/dev/null || [ -x /usr/sbin/runc ] || missing+=(runc)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "${missing[@]}"
fi

if ! command -v configurable-http-proxy >/dev/null; then
  echo "==> npm install -g configurable-http-proxy"
  as_root npm install -g --no-fund --no-audit configurable-http-proxy
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
echo "==> pip install -e .[test,docs,lint,typing]"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,docs,lint,typing]"

echo "==> pytest"
# Two workers (pytest-xdist), one per core of these machines: most tests wait on processes
# (hubs, kopf operators, kubelet containers, a browser), so the suite takes about half the
# time it takes in one process. PYTEST_WORKERS=0 runs it in one process.
# pytest exits 5 when it ran no test, which fails this script as it should.
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist worksteal "$@"
