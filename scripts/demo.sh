#!/usr/bin/env bash
# Starts the local demo. Until the emulator-backed demo hub lands (see CHANGELOG.md), this
# installs the package into .venv, checks the air-gapped sample configuration and prints
# the image menu its users would see.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q -e .
config=sample_configs/static-menu/jupyterhub_config.py
.venv/bin/lsst-spawner check-config -f "$config"
.venv/bin/lsst-spawner menu -f "$config"
