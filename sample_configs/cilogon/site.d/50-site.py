# Site values for a CILogon-login science platform.
c.Authenticator.admin_users = {"hub-admin"}
c.LSSTSpawner.start_timeout = 600
