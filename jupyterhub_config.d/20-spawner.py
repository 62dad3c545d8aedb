# Where labs run.
#
# Environment:
#   LSST_LAB_NAMESPACE   Kubernetes namespace of the labs (default: the hub's own namespace)
from lsst_spawner.config import env_str

namespace = env_str("LSST_LAB_NAMESPACE", "")
if namespace:
    c.LSSTSpawner.namespace = namespace
