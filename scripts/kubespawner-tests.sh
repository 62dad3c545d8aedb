#!/usr/bin/env bash
# Runs KubeSpawner's own test suite, unmodified, against the Kubernetes emulator and the
# OCI kubelet (docs/emulator.md, "KubeSpawner's own tests").
#   bash scripts/kubespawner-tests.sh /path/to/kubespawner-checkout [pytest arguments]
# The checkout must be jupyterhub/kubespawner at the tag of the installed version
# (`pip show jupyterhub-kubespawner`); this script fetches nothing. It needs root, runc and
# docker-registry (scripts/test.sh installs them), and a virtualenv with KubeSpawner's test
# dependencies: .venv-kubespawner, made here from the configured package index when missing
# (or set KUBESPAWNER_TEST_PYTHON to an interpreter that has them).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || [ ! -f "$1/tests/conftest.py" ]; then
  echo "usage: $0 KUBESPAWNER_CHECKOUT [pytest arguments]  (a checkout with tests/conftest.py)" >&2
  exit 2
fi
checkout=$(cd "$1" && pwd)
shift
[ -x .venv/bin/python ] || { echo "run scripts/test.sh first (it makes .venv)" >&2; exit 2; }
version=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("jupyterhub-kubespawner"))')
python=${KUBESPAWNER_TEST_PYTHON:-}
if [ -z "$python" ]; then
  python=$PWD/.venv-kubespawner/bin/python
  if [ ! -x "$python" ]; then
    echo "==> creating .venv-kubespawner (KubeSpawner $version and its test dependencies)"
    .venv/bin/python -m venv .venv-kubespawner
    # KubeSpawner pins pytest-asyncio below 0.23, which needs pytest below 8.4.
    .venv-kubespawner/bin/python -m pip install -q "jupyterhub-kubespawner==$version" \
      kubernetes "pytest-asyncio>=0.17,<0.23" "pytest<8.4" pytest-cov
  fi
fi
exec .venv/bin/python -m lsst_spawner.testing.kube.kubespawner_suite "$checkout" \
  --python "$python" -- "$@"
