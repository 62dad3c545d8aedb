"""Project-wide test configuration (``--update-golden`` comes from the kit's plugin)."""

pytest_plugins = ["pytester"]
