# Hub basics shared by every lsst_spawner site.
#
# Environment:
#   JUPYTERHUB_CRYPT_KEY  (required) encrypts auth_state, which holds each user's
#                         identity and git token; generate with `openssl rand -hex 32`
#   LSST_HUB_BIND_URL     public URL the proxy listens on (default http://:8000)
#   LSST_HUB_DB_URL       JupyterHub database URL (default sqlite:///jupyterhub.sqlite)
from lsst_spawner.config import env_str, require_env

require_env("JUPYTERHUB_CRYPT_KEY", "encrypts auth_state; generate one with: openssl rand -hex 32")

c.JupyterHub.bind_url = env_str("LSST_HUB_BIND_URL", "http://:8000")
c.JupyterHub.db_url = env_str("LSST_HUB_DB_URL", "sqlite:///jupyterhub.sqlite")
c.JupyterHub.spawner_class = "lsst"
c.Authenticator.enable_auth_state = True
# Group changes at the identity provider are picked up at the next spawn.
c.Authenticator.refresh_pre_spawn = True
