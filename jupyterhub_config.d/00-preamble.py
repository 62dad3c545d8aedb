# Hub basics shared by every lsst_spawner site.
#
# Environment:
#   JUPYTERHUB_CRYPT_KEY  (required) encrypts auth_state, which holds each user's
#                         identity and git token; generate with `openssl rand -hex 32`
#   LSST_HUB_BIND_URL     public URL the proxy listens on (unset: JupyterHub's own setting,
#                         e.g. Zero to JupyterHub's, or its default http://:8000)
#   LSST_HUB_DB_URL       JupyterHub database URL (unset: JupyterHub's own setting, e.g.
#                         Zero to JupyterHub's hub.db.url, or its default sqlite file)
from lsst_spawner.config import env_str, require_env

require_env("JUPYTERHUB_CRYPT_KEY", "encrypts auth_state; generate one with: openssl rand -hex 32")

# Hub-wide settings only when asked for: under Zero to JupyterHub these snippets run after
# the chart's own configuration, which must not be overridden with a default.
bind_url = env_str("LSST_HUB_BIND_URL", "")
if bind_url:
    c.JupyterHub.bind_url = bind_url
db_url = env_str("LSST_HUB_DB_URL", "")
if db_url:
    c.JupyterHub.db_url = db_url
c.JupyterHub.spawner_class = "lsst"
c.Authenticator.enable_auth_state = True
# Group changes at the identity provider are picked up at the next spawn.
c.Authenticator.refresh_pre_spawn = True
