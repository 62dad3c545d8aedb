"""The installed version of lsst_spawner."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lsst-spawner")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0.0.0"
