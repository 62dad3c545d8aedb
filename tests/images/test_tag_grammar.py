"""The whole tag grammar in one golden table: each tag's kind, display name and menu order.

``golden/tag_grammar.json`` lists the tags below in menu order with what the
grammar makes of them, under the default aliases (``recommended``, ``latest``,
``latest_release``, ``latest_weekly``, ``latest_daily``). A change to any rule
shows up as a reviewed diff of that file (``pytest tests/images --update-golden``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from lsst_spawner.images.menu import MenuPolicy
from lsst_spawner.images.tags import parse_tag

TABLE = [
    # aliases, with cycle and architecture variants
    "recommended",
    "recommended_c0027",
    "recommended_c0027-amd64",
    "recommended-arm64",
    "latest",
    "latest_weekly",
    "latest_weekly_c0046",
    "latest_daily-amd64",
    # releases and their variants
    "r28_0_0",
    "r27_0_1",
    "r27_0_0",
    "r27_0_0_c0027.002",
    "r27_0_0_c0027.001",
    "r27_0_0_c0027.001_rsp20",
    "r27_0_0_rsp19",
    "r27_0_0_rsp19_c0027.001",
    "r27_0_0-amd64",
    "r27_0_0_nosudo",
    # candidates
    "r28_0_0_rc2",
    "r28_0_0_rc1",
    "r28_0_0_rc1_c0027.001_rsp19_20210513",
    # weeklies
    "w_2026_10",
    "w_2026_09",
    "w_2026_09_c0027.003",
    "w_2026_09_c0028.001",
    "w_2026_09_rsp19",
    "w_2026_09-arm64",
    "w_2026_09_extra",
    "w_2026_9",
    "w_2020_53",
    # dailies
    "d_2026_03_06",
    "d_2026_03_05_c0027.001",
    "d_2026_03_05",
    # experimentals
    "exp_w_2026_10",
    "exp_w_2021_22_c0020.001_rsp19_foo-amd64",
    "exp_r27_0_0",
    "exp_random",
    "exp_random_c0027-amd64",
    "exp_exp_w_2026_10",
    # unknown tags
    "not_a_normal_format",
    "latest-amd64",
    "foo_c0027",
    "foo_c0027-amd64",
    "w_2026_54",
    "d_2026_02_30",
    "r27_0",
    "exp_",
    "my-feature",
]


def grammar_table() -> list[dict[str, Any]]:
    aliases = MenuPolicy(alias_tags=("latest", "latest_release", "latest_weekly", "latest_daily"))
    parsed = [parse_tag(tag, aliases.aliases) for tag in TABLE]
    parsed.sort(key=lambda item: item.sort_key)
    return [
        {
            "order": position,
            "tag": item.tag,
            "kind": item.kind.value,
            "display_name": item.display_name,
            "cycle": item.cycle,
            "cycle_build": item.cycle_build,
            "rsp_build": item.rsp_build,
            "architecture": item.architecture,
            "hidden": item.hidden,
        }
        for position, item in enumerate(parsed)
    ]


def test_the_whole_grammar(golden: Callable[[str, Any], None]) -> None:
    golden("tag_grammar", grammar_table())


def test_the_order_does_not_depend_on_the_input_order() -> None:
    aliases = MenuPolicy(alias_tags=("latest", "latest_weekly", "latest_daily")).aliases
    expected = sorted(TABLE, key=lambda tag: parse_tag(tag, aliases).sort_key)
    for seed in range(5):
        shuffled = list(TABLE)
        random.Random(seed).shuffle(shuffled)
        assert sorted(shuffled, key=lambda tag: parse_tag(tag, aliases).sort_key) == expected
