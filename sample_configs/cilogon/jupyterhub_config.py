"""A CILogon site: the repository's snippets, then this site's own (site.d/)."""

from pathlib import Path

from lsst_spawner.config import load_config_dir

c = get_config()
here = Path(__file__).resolve().parent
namespace: dict = {}
load_config_dir(c, here.parents[1] / "jupyterhub_config.d", namespace=namespace, validate=False)
load_config_dir(c, here / "site.d", namespace=namespace)
