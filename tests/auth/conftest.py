from lsst_spawner.testing.auth_fixtures import fake_cilogon, fake_github  # noqa: F401
