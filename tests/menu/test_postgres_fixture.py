"""The test kit's PostgreSQL fixtures: registered in the plugin, failing in CI when missing."""

from __future__ import annotations

import pytest

_MISSING = """
import lsst_spawner.testing.postgres as pg

def _missing():
    raise pg.PostgresUnavailableError("initdb and postgres were not found; " + pg.INSTALL_ADVICE)

pg.find_postgres_bin = _missing
"""


def test_fixtures_are_in_the_plugin(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("lsst_spawner")
    assert plugin is not None
    assert callable(plugin.postgres_url)
    assert callable(plugin.postgres_server)


@pytest.mark.parametrize(("ci", "outcome"), [("true", "errors"), ("", "skipped")])
def test_missing_server_fails_in_ci_and_skips_elsewhere(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    pytester.makeconftest(_MISSING)
    pytester.makepyfile("def test_db(postgres_url):\n    assert postgres_url\n")
    if ci:
        monkeypatch.setenv("CI", ci)
    else:
        monkeypatch.delenv("CI", raising=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*apt-get install -y postgresql*"])
