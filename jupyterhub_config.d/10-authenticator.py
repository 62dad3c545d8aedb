# Login: GitHub (or GitHub Enterprise) or CILogon, both providing the identity contract.
#
# Environment:
#   LSST_AUTH_PROVIDER       github (default) or cilogon
#   OAUTH_CALLBACK_URL       (required) https://<hub host>/hub/oauth_callback
#   GITHUB_CLIENT_ID         (required for github) OAuth app client id
#   GITHUB_CLIENT_SECRET     (required for github) OAuth app client secret
#   GITHUB_URL               GitHub Enterprise base URL (default https://github.com)
#   LSST_GITHUB_ALLOWED_ORGS comma-separated organizations allowed to log in
#   LSST_GITHUB_ALLOW_ALL    true to let every GitHub user log in (and get a lab); without it
#                            and without LSST_GITHUB_ALLOWED_ORGS, start-up stops: as in
#                            OAuthenticator, nobody is allowed by default
#   CILOGON_CLIENT_ID        (required for cilogon)
#   CILOGON_CLIENT_SECRET    (required for cilogon)
from lsst_spawner.config import ConfigError, env_bool, env_str, require_env

provider = env_str("LSST_AUTH_PROVIDER", "github").lower()
callback_url = require_env("OAUTH_CALLBACK_URL", "the hub's OAuth callback URL")

if provider == "github":
    c.JupyterHub.authenticator_class = "lsst-github"
    c.LSSTGitHubOAuthenticator.oauth_callback_url = callback_url
    c.LSSTGitHubOAuthenticator.client_id = require_env("GITHUB_CLIENT_ID")
    c.LSSTGitHubOAuthenticator.client_secret = require_env("GITHUB_CLIENT_SECRET")
    github_url = env_str("GITHUB_URL", "")
    if github_url:
        c.LSSTGitHubOAuthenticator.github_url = github_url
    allowed_orgs = [
        o.strip() for o in env_str("LSST_GITHUB_ALLOWED_ORGS", "").split(",") if o.strip()
    ]
    allow_all = env_bool("LSST_GITHUB_ALLOW_ALL", False)
    if allowed_orgs:
        c.LSSTGitHubOAuthenticator.allowed_organizations = set(allowed_orgs)
    if allow_all:
        c.LSSTGitHubOAuthenticator.allow_all = True
    elif not allowed_orgs:
        raise ConfigError(
            "no GitHub user may log in: set LSST_GITHUB_ALLOWED_ORGS (comma-separated"
            " organizations) or LSST_GITHUB_ALLOW_ALL=true (every GitHub user gets a lab)"
        )
elif provider == "cilogon":
    c.JupyterHub.authenticator_class = "lsst-cilogon"
    c.LSSTCILogonOAuthenticator.oauth_callback_url = callback_url
    c.LSSTCILogonOAuthenticator.client_id = require_env("CILOGON_CLIENT_ID")
    c.LSSTCILogonOAuthenticator.client_secret = require_env("CILOGON_CLIENT_SECRET")
else:
    raise ConfigError(f"LSST_AUTH_PROVIDER must be github or cilogon, not {provider!r}")
