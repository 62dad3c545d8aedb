"""JupyterHub config for an lsst_spawner hub: runs the snippets of jupyterhub_config.d in order.

The directory comes from LSST_SPAWNER_CONFIG_DIR (absolute, or relative to the
working directory); by default it is the jupyterhub_config.d beside this file.
Each snippet reads its site values from documented environment variables.
"""

import os

from lsst_spawner.config import CONFIG_DIR_ENV, load_config_dir

c = get_config()
load_config_dir(
    c,
    os.environ.get(CONFIG_DIR_ENV)
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "jupyterhub_config.d"),
)
