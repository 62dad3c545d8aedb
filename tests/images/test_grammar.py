"""lsst_spawner.grammar: the one place tags, digests, repositories and references are defined."""

from __future__ import annotations

from pathlib import Path

import pytest

import lsst_spawner
from lsst_spawner.grammar import (
    ImageReference,
    ReferenceSyntaxError,
    is_digest_tag,
    is_valid_digest,
    is_valid_host,
    is_valid_host_pattern,
    is_valid_image_name,
    is_valid_repository,
    parse_image_reference,
)

SHA256 = "sha256:" + "a" * 64
SHA512 = "sha512:" + "b" * 128


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("w_2024_10", ImageReference("", "w_2024_10")),
        (f"w_2024_10@{SHA512}", ImageReference("", "w_2024_10", SHA512)),
        ("ghcr.io/lsst/lab:w_2024_10", ImageReference("ghcr.io/lsst/lab", "w_2024_10")),
        (f"ghcr.io/lsst/lab@{SHA256}", ImageReference("ghcr.io/lsst/lab", None, SHA256)),
        ("localhost:5000/lab:r27_0_0", ImageReference("localhost:5000/lab", "r27_0_0")),
        ("localhost:5000/lab", ImageReference("localhost:5000/lab")),
        (f"h:1/a:t@{SHA512}", ImageReference("h:1/a", "t", SHA512)),
    ],
)
def test_references_split_into_their_parts(text: str, expected: ImageReference) -> None:
    assert parse_image_reference(text) == expected
    assert str(parse_image_reference(text)) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("a" * 513, "at most 512"),
        ("w_2024_10 ", "characters no image reference has"),
        ("w\uff0f2024", "characters no image reference has"),
        (f"x@{SHA256}@{SHA256}", "must be sha256"),
        ("x@sha512:" + "b" * 64, "or sha512: and 128"),
        ("x@SHA256:" + "a" * 64, "must be sha256"),
        ("-w_2024_10", "is not a tag"),
        ("a" * 200, "200 characters long; a tag has at most 128"),
        ("ghcr.io/lab:.hidden", "is not a tag"),
    ],
)
def test_malformed_references_name_the_part(text: str, message: str) -> None:
    with pytest.raises(ReferenceSyntaxError, match=message.replace("(", r"\(")):
        parse_image_reference(text)


def test_digests_repositories_hosts_and_names() -> None:
    assert is_valid_digest(SHA256)
    assert is_valid_digest(SHA512)
    assert not is_valid_digest("sha512:" + "b" * 127)
    assert not is_valid_digest("sha384:" + "c" * 96)
    assert is_digest_tag("sha256-" + "a" * 64 + ".sig")
    assert not is_digest_tag("w_2024_10")
    assert is_valid_repository("lsst-sqre/sciplat-lab")
    assert not is_valid_repository("LSST/lab")
    assert not is_valid_repository("a" * 256)
    assert is_valid_host("ghcr.io")
    assert is_valid_host("127.0.0.1:5000")
    assert is_valid_host("[::1]:5")
    assert not is_valid_host("ghcr.io/x")
    assert not is_valid_host("https://ghcr.io")
    assert is_valid_host_pattern("*.example.org")
    assert is_valid_host_pattern("auth.io:8443")
    assert not is_valid_host_pattern("*")
    assert not is_valid_host_pattern("*.")
    assert is_valid_image_name("ghcr.io/lsst-sqre/sciplat-lab")
    assert is_valid_image_name("lsst/lab")
    assert is_valid_image_name("localhost/lab")
    assert not is_valid_image_name("ghcr.io/lab:tag")
    assert not is_valid_image_name(f"ghcr.io/lab@{SHA256}")


def test_the_patterns_live_only_in_the_grammar_module() -> None:
    """No product module but grammar.py spells the digest or tag pattern (issue #13.6)."""
    root = Path(lsst_spawner.__file__).parent
    spelled = {
        "digest": "[0-9a-f]{64}",
        "tag": "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
    }
    for path in root.rglob("*.py"):
        if path.name == "grammar.py" or "testing" in path.relative_to(root).parts:
            continue
        text = path.read_text()
        for what, pattern in spelled.items():
            assert pattern not in text, f"{path.relative_to(root)} spells the {what} pattern"
