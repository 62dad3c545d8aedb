"""Test kit for lsst_spawner and for sites testing their own configuration."""
