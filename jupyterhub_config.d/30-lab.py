# Lab sizes. Volumes, extra groups and other lab settings belong in a site snippet
# (for example 50-site.py); see docs/lab-pods.md.
#
# Environment:
#   LSST_LAB_SIZES         JSON list of sizes, e.g.
#                          [{"name": "small", "cpu": 1, "memory": "4Gi"},
#                           {"name": "large", "cpu": 4, "memory": "16Gi"}]
#                          (default: small 1 CPU/4Gi, medium 2/8Gi, large 4/16Gi)
#   LSST_LAB_DEFAULT_SIZE  name of the size used when the user chooses none (default medium)
import json

from lsst_spawner.config import ConfigError, env_str

sizes = env_str("LSST_LAB_SIZES", "")
if sizes:
    try:
        c.LSSTSpawner.lab_sizes = json.loads(sizes)
    except ValueError as error:
        raise ConfigError(f"LSST_LAB_SIZES is not valid JSON: {error}") from None
c.LSSTSpawner.lab_default_size = env_str("LSST_LAB_DEFAULT_SIZE", "medium")
