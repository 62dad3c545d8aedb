# Site values for a GitHub-login science platform.
c.JupyterHub.admin_access = False
c.Authenticator.admin_users = {"hub-admin"}
c.LSSTSpawner.start_timeout = 600
