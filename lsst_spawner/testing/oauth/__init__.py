"""Identity-provider doubles: fake GitHub and CILogon servers, a static-identity authenticator."""
