#!/usr/bin/env bash
# One command for the local demo: JupyterHub with LSSTSpawner, the Kubernetes API emulator,
# the process kubelet and a fake GitHub, on http://127.0.0.1:8000 (see docs/demo.md).
#
# Needs Python >= 3.11 and npm. Installs, only when missing or out of date:
#   - .venv with this package and its `demo` extra (pip install -e ".[demo]": the emulator's
#     Kubernetes schemas and jupyter_server, which jupyterhub-singleuser needs);
#   - configurable-http-proxy (npm install -g, as root or through sudo).
# Then runs `python -m lsst_spawner.testing.demo`; arguments are passed on (--port, --workdir,
# --step-delay, --log-level). Ctrl-C stops everything. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.lsst-demo-installed

die() {
    echo "demo.sh: $*" >&2
    exit 1
}

command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.11 or newer (or set PYTHON)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$("$PYTHON" --version 2>&1) is too old; Python 3.11 or newer is needed (set PYTHON)"

# The Python side: a venv with the package and its demo extra, reinstalled when the package
# metadata changes (the stamp holds a checksum of it) or the demo's own modules do not import.
if [ ! -x "$VENV/bin/python" ]; then
    echo "Creating $VENV ..."
    "$PYTHON" -m venv "$VENV" ||
        die "could not create $VENV (on Debian/Ubuntu: apt-get install python3-venv)"
fi
wanted=$(cat setup.cfg pyproject.toml | "$VENV/bin/python" -c \
    'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
if [ "$(cat "$STAMP" 2>/dev/null)" != "$wanted" ] ||
    ! "$VENV/bin/python" -c 'import lsst_spawner.testing.demo, jupyter_server' 2>/dev/null; then
    echo "Installing lsst-spawner[demo] into $VENV ..."
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[demo]"
    # The check that failed above must pass now: a missing demo dependency is a bug here.
    "$VENV/bin/python" -c 'import lsst_spawner.testing.demo, jupyter_server' ||
        die "the demo's modules do not import after installing .[demo] (see the error above)"
    echo "$wanted" >"$STAMP"
fi

# The proxy JupyterHub runs in front of itself and the labs.
if ! command -v configurable-http-proxy >/dev/null; then
    command -v npm >/dev/null || die "npm not found; install Node.js and npm, then run this again"
    echo "Installing configurable-http-proxy with npm ..."
    if [ "$(id -u)" = 0 ]; then
        npm install -g configurable-http-proxy
    elif command -v sudo >/dev/null; then
        sudo npm install -g configurable-http-proxy
    else
        die "configurable-http-proxy is missing and installing it needs root:" \
            "run 'npm install -g configurable-http-proxy' as root"
    fi
    command -v configurable-http-proxy >/dev/null ||
        die "configurable-http-proxy is still not on PATH (npm prefix: $(npm prefix -g))"
fi

exec "$VENV/bin/python" -m lsst_spawner.testing.demo "$@"
