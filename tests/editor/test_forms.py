"""The edit form: a document as fields and back, and problems placed at their inputs."""

from __future__ import annotations

from lsst_spawner.editor import forms
from lsst_spawner.menu import CuratedImage, MenuDocument, MenuProblem, check_menu

from ..menu.conftest import NODE_GROUPS, make_profile

DOCUMENT = MenuDocument(
    images=(CuratedImage(tag="recommended", default=True), CuratedImage(tag="w_2024_01")),
    profiles=(
        make_profile("small", default=True),
        make_profile("gpu", cpu="4", node_group="gpu", groups=("gpu-users", "staff")),
    ),
)


def _as_form(values: forms.FormRows) -> dict[str, str]:
    form = {f"image_policy.{n}": v for n, v in values.policy.items()}
    for kind, entries in values.entries.items():
        form[f"{kind}.rows"] = str(len(entries))
        form[f"{kind}.default"] = str(values.defaults[kind])
        for row, texts in enumerate(entries):
            form.update({f"{kind}[{row}].{n}": v for n, v in texts.items()})
    return form


def test_the_form_round_trips_the_document() -> None:
    values = forms.rows(DOCUMENT)
    assert values.entries["profiles"][1]["groups"] == "gpu-users, staff"
    assert values.entries["profiles"][-1] == {n: "" for n in forms.PROFILE_FIELDS}  # new row
    data, row_of = forms.form_to_data(_as_form(values))
    assert check_menu(data, NODE_GROUPS) == DOCUMENT
    assert row_of == {"profiles": [0, 1], "images": [0, 1]}


def test_a_blank_row_with_its_state_select_set_is_still_blank() -> None:
    form = _as_form(forms.rows(DOCUMENT))
    form["images[2].state"] = "shown"  # what a browser sends for the untouched new row
    data, _ = forms.form_to_data(form)
    assert [image["tag"] for image in data["images"]] == ["recommended", "w_2024_01"]


def test_add_delete_and_problems_go_to_the_form_rows() -> None:
    form = _as_form(forms.rows(DOCUMENT))
    form["profiles[0].delete"] = "1"  # delete small, so gpu is entry 0 but row 1
    form["profiles[1].cpu_limit"] = "lots"
    form.update({"profiles[2].name": "huge", "profiles[2].cpu_limit": "1"})
    data, row_of = forms.form_to_data(form)
    assert [p["name"] for p in data["profiles"]] == ["gpu", "huge"]
    assert row_of["profiles"] == [1, 2]
    problems = [
        MenuProblem("profiles[0].cpu_limit", "'lots' is not a CPU quantity"),
        MenuProblem("profiles[1].memory_limit", "Field required"),
        MenuProblem("profiles", "exactly one of the profiles must be the default; none is"),
    ]
    assert forms.problems_by_field(problems, row_of) == {
        "profiles[1].cpu_limit": ["'lots' is not a CPU quantity"],
        "profiles[2].memory_limit": ["Field required"],
        "profiles": ["exactly one of the profiles must be the default; none is"],
    }


def test_typed_values_are_shown_again_as_typed() -> None:
    form = _as_form(forms.rows(DOCUMENT))
    form["profiles[1].cpu_limit"] = "<b>lots</b>"
    values = forms.values_from_form(form)
    assert values.entries["profiles"][1]["cpu_limit"] == "<b>lots</b>"
    assert values.defaults == {"profiles": 0, "images": 0}
