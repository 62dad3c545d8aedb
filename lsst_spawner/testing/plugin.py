"""The lsst_spawner pytest plugin: fixtures for sites testing their configuration.

Registered through the ``pytest11`` entry point, so installing lsst_spawner
with its ``test`` extra makes these fixtures available to any test suite.
"""
