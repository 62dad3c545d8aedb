"""The site-testing example of docs/testing.md runs, against a sample configuration."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_configs" / "static-menu" / "jupyterhub_config.py"


def _example_code() -> str:
    text = (REPO / "docs" / "testing.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert 'CONFIG = "jupyterhub_config.py"' in code
    return code.replace('CONFIG = "jupyterhub_config.py"', f"CONFIG = {str(SAMPLE)!r}")


def test_docs_example_passes(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    example = pytester.makepyfile(test_site_example=_example_code())
    result = pytester.runpytest_subprocess(str(example), "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
