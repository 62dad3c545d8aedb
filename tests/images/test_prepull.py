"""The pure prepull rules: eligible nodes, presence, the radio rule, pull plans, the pods."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kubernetes_validate
import pytest

from lsst_spawner.form.options import OptionsCatalog, SizeChoice
from lsst_spawner.form.render import render_options_form
from lsst_spawner.images.menu import MenuPolicy, build_menu
from lsst_spawner.images.model import ImageMenu
from lsst_spawner.images.prepull import (
    KUBELET_MAX_IMAGES,
    apply_presence,
    build_prepull_state,
    node_is_eligible,
    plan_pulls,
    prepull_pod,
    prepull_targets,
    presence_of,
    presence_table,
    tolerates,
    with_preferred_nodes,
)

BASE = "reg.example/lab"
D = {tag: "sha256:" + str(i) * 64 for i, tag in enumerate(["recommended", "w_2026_10"], 1)}
D["w_2026_09"] = "sha256:" + "9" * 64
D["w_2026_08"] = "sha256:" + "8" * 64
NOW = datetime(2026, 3, 20, tzinfo=UTC)


def node(
    name: str,
    images: list[str] = (),  # type: ignore[assignment]
    *,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    ready: str = "True",
    unschedulable: bool = False,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or [], **({"unschedulable": True} if unschedulable else {})},
        "status": {
            "conditions": [{"type": "Ready", "status": ready}],
            "images": [{"names": [n], "sizeBytes": 1} for n in images],
        },
    }


def menu() -> ImageMenu:
    # recommended and w_2026_10 share a digest: one pull for both.
    digests = {**D, "w_2026_10": D["recommended"]}
    policy = MenuPolicy(weeklies=2, alias_tags=())
    return build_menu(
        BASE, ["recommended", "w_2026_10", "w_2026_09", "w_2026_08"], digests, policy, NOW
    )


def at(tag: str, digest: str | None = None) -> str:
    return f"{BASE}@{digest or D[tag]}"


NO_SCHEDULE = {"key": "gpu", "value": "yes", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("toleration", "ok"),
    [
        ({"key": "gpu", "operator": "Equal", "value": "yes"}, True),
        ({"key": "gpu", "value": "yes", "effect": "NoSchedule"}, True),
        ({"key": "gpu", "value": "no"}, False),
        ({"key": "gpu", "operator": "Exists"}, True),
        ({"operator": "Exists"}, True),
        ({"key": "gpu", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "other", "operator": "Exists"}, False),
    ],
)
def test_toleration_matching(toleration: dict[str, str], ok: bool) -> None:
    assert tolerates([toleration], NO_SCHEDULE) is ok


def test_eligible_nodes_follow_selector_taints_readiness() -> None:
    selector = {"pool": "lab"}
    lab = {"pool": "lab"}
    assert node_is_eligible(node("a", labels=lab), selector, [])
    assert not node_is_eligible(node("b", labels={"pool": "gpu"}), selector, [])
    assert not node_is_eligible(node("c", labels=lab, taints=[NO_SCHEDULE]), selector, [])
    assert node_is_eligible(
        node("c", labels=lab, taints=[NO_SCHEDULE]),
        selector,
        [{"key": "gpu", "operator": "Exists"}],
    )
    soft = {"key": "spot", "value": "1", "effect": "PreferNoSchedule"}
    assert node_is_eligible(node("d", labels=lab, taints=[soft]), selector, [])  # ignored
    evict = {"key": "x", "value": "1", "effect": "NoExecute"}
    assert not node_is_eligible(node("e", labels=lab, taints=[evict]), selector, [])
    assert not node_is_eligible(node("f", labels=lab, ready="False"), selector, [])
    assert not node_is_eligible(node("g", labels=lab, unschedulable=True), selector, [])


def test_presence_is_by_digest_all_some_none() -> None:
    m = menu()
    nodes = [
        node("n1", [at("recommended"), at("w_2026_09"), f"{BASE}:w_2026_08"]),
        node("n2", [at("recommended")]),
        node("tainted", [at("w_2026_09")], taints=[NO_SCHEDULE]),
    ]
    state = build_prepull_state(nodes, {}, [])
    assert state.node_names == ("n1", "n2")
    assert state.ineligible == ("tainted",)
    recommended, w09, w08 = (m.find(t) for t in ("recommended", "w_2026_09", "w_2026_08"))
    assert presence_of(recommended, state) == ("all", ("n1", "n2"))
    assert presence_of(w09, state) == ("some", ("n1",))
    # w_2026_08's tag is on n1, but under another digest than the menu's: not the image.
    assert presence_of(w08, state) == ("none", ())
    assert presence_of(recommended, build_prepull_state([], {}, [])) == ("none", ())


def test_the_radio_keeps_only_images_everywhere_and_the_recommended_stays() -> None:
    m = menu()
    assert [i.tag for i in m.radio] == ["recommended", "w_2026_09"]
    state = build_prepull_state([node("n1", [at("w_2026_09")]), node("n2", [])], {}, [])
    marked = apply_presence(m, state)
    assert [(i.tag, i.presence) for i in marked.radio] == [("recommended", "none")]
    assert marked.recommended is marked.radio[0]
    assert [(i.tag, i.choice, i.presence, i.present_on) for i in marked.dropdown][:2] == [
        ("w_2026_09", "dropdown", "some", ("n1",)),
        ("w_2026_08", "dropdown", "none", ()),
    ]
    assert marked.find("w_2026_09") is marked.dropdown[0]
    assert marked.find("w_2026_10").presence == "none"  # aliased ones are marked too
    assert all(marked.find(image.tag) is image for image in marked.latest.values())
    # Configurable: off, the radio list stays as it was (marked).
    kept = apply_presence(m, state, radio_requires_presence=False)
    assert [i.tag for i in kept.radio] == ["recommended", "w_2026_09"]
    assert kept.radio[1].slower_to_start
    everywhere = build_prepull_state(
        [node(n, [at("recommended"), at("w_2026_09")]) for n in ("n1", "n2")], {}, []
    )
    assert [i.tag for i in apply_presence(m, everywhere).radio] == ["recommended", "w_2026_09"]


def test_the_form_marks_images_slower_to_start() -> None:
    m = menu()
    state = build_prepull_state([node("n1", [at("w_2026_09")]), node("n2", [])], {}, [])
    sizes = (SizeChoice("small", "Small"),)
    html = render_options_form(OptionsCatalog(apply_presence(m, state), sizes, "small"))
    slower = html.split('<optgroup label="Slower to start">')[1].split("</optgroup>")[0]
    assert 'value="w_2026_09"' in slower
    assert 'value="w_2026_08"' in slower
    assert "(slower to start)" in html.split('value="recommended"')[1].split("</div>")[0]
    plain = render_options_form(OptionsCatalog(m, sizes, "small"))
    assert "optgroup" not in plain
    assert "(slower to start)</em>" not in plain


def test_targets_are_the_radio_images_one_per_digest() -> None:
    assert [i.tag for i in prepull_targets(menu())] == ["recommended", "w_2026_09"]


def test_plans_pull_one_missing_image_per_free_node() -> None:
    targets = prepull_targets(menu())
    state = build_prepull_state(
        [node("n1", [at("recommended")]), node("n2", []), node("n3", []), node("n4", [])], {}, []
    )
    plans = plan_pulls(
        targets,
        state,
        busy=["n3"],
        skip=[("n4", f"{BASE}:recommended@{D['recommended']}")],
    )
    assert [(p.node, p.image.tag) for p in plans] == [
        ("n1", "w_2026_09"),
        ("n2", "recommended"),
        ("n4", "w_2026_09"),
    ]


def test_the_prepull_pod_is_pinned_runs_nothing_and_is_valid() -> None:
    image = menu().find("w_2026_09")
    tolerations = [{"key": "gpu", "operator": "Exists"}]
    pod = prepull_pod(image, "n1", tolerations=tolerations)
    kubernetes_validate.validate(pod, "1.30", strict=True)
    spec = pod["spec"]
    assert spec["nodeName"] == "n1"
    assert spec["restartPolicy"] == "Never"
    assert spec["tolerations"] == tolerations
    (container,) = spec["containers"]
    assert container["image"] == f"{BASE}:w_2026_09@{D['w_2026_09']}"
    assert container["command"] == ["/bin/true"]
    assert prepull_pod(image, "n2")["metadata"]["name"] != pod["metadata"]["name"]


def test_preferred_nodes_are_added_without_changing_the_pod() -> None:
    pod = {"spec": {"affinity": {"podAffinity": {"x": 1}}, "containers": []}}
    new = with_preferred_nodes(pod, ["n2", "n1"])
    assert pod == {"spec": {"affinity": {"podAffinity": {"x": 1}}, "containers": []}}
    assert new["spec"]["affinity"]["podAffinity"] == {"x": 1}
    assert new["spec"]["affinity"]["nodeAffinity"] == {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "preference": {
                    "matchFields": [
                        {"key": "metadata.name", "operator": "In", "values": ["n1", "n2"]}
                    ]
                },
            }
        ]
    }
    assert with_preferred_nodes(pod, []) == pod


def test_the_status_table_and_a_full_image_list() -> None:
    full = [at("recommended")] + [f"{BASE}@sha256:{i:064x}" for i in range(KUBELET_MAX_IMAGES - 1)]
    state = build_prepull_state(
        [node("n1", full), node("n2", [at("w_2026_09")]), node("gpu", taints=[NO_SCHEDULE])], {}, []
    )
    table = presence_table(prepull_targets(menu()), state)
    assert table.splitlines()[:3] == [
        "IMAGE        PRESENT  n1   n2",
        "recommended  some     yes  -",
        "w_2026_09    some     -    yes",
    ]
    assert "node n1 lists exactly 50 images" in table
    assert "nodeStatusMaxImages" in table
    assert "not eligible for labs: gpu" in table
    assert "n2 lists exactly" not in table
