"""LSSTSpawner's form hooks in process: the form, options_from_form, and start() on old hubs."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hub_spawner import StaticMenuSpawner
from jupyterhub.apihandlers.users import UserServerAPIHandler
from menu_fixture import DIGEST_R23, HOSTILE_TAG, IMAGE_BASE
from tornado.web import HTTPError

from lsst_spawner.attempt import request_supplies_options
from lsst_spawner.testing.kube.fixtures import KubeHandle


@pytest.fixture
async def spawner(kube_api: KubeHandle) -> StaticMenuSpawner:
    """The spawner on the emulator, as z2jh's hub Role (``kube_api`` points KUBECONFIG there)."""
    return StaticMenuSpawner(_mock=True, namespace=kube_api.namespace)


async def test_options_form_renders_from_menu(spawner: StaticMenuSpawner) -> None:
    spawner.user_options = {"image": "r23_0_1"}
    html = await spawner.get_options_form()
    assert 'value="r23_0_1" checked' in html


async def test_options_from_form_returns_canonical_options(spawner: StaticMenuSpawner) -> None:
    options = await spawner.run_options_from_form(
        {"image_list": ["r23_0_1"], "size": ["small"], "reset_user_env": ["on"]}
    )
    assert options == {
        "image": "r23_0_1",
        "size": "small",
        "enable_debug": False,
        "reset_user_env": True,
    }
    # the form's request is fresh: its reset is honoured at start
    spawner.user_options = options
    await spawner.load_user_options()
    assert spawner.lab_options.reset_user_env is True
    assert spawner.image == f"{IMAGE_BASE}:r23_0_1@{DIGEST_R23}"


async def test_options_from_form_rejects_with_400(spawner: StaticMenuSpawner) -> None:
    with pytest.raises(HTTPError) as caught:
        await spawner.run_options_from_form({"image_list": [HOSTILE_TAG]})
    assert caught.value.status_code == 400
    assert "not a valid tag or image reference" in caught.value.log_message


async def test_start_rejects_before_any_kubernetes_request(
    spawner: StaticMenuSpawner, kube_api: KubeHandle
) -> None:
    """JupyterHub before 5.3 has no apply_user_options: start() itself must refuse."""
    before = kube_api.counters.as_dict()
    spawner.lab_options_fresh = True
    spawner.user_options = {"image": "other.registry/x:tag"}
    with pytest.raises(HTTPError) as caught:
        await spawner.start()
    assert caught.value.status_code == 400
    assert "not from this hub's image repository" in caught.value.log_message
    assert kube_api.counters.as_dict() == before
    assert kube_api.counters.get("create") == 0


async def test_apply_user_options_result_is_used_by_start(spawner: StaticMenuSpawner) -> None:
    spawner.user_options = {"image": "w_2024_01"}
    run_hook = getattr(spawner, "_run_apply_user_options", None)  # JupyterHub 5.3+
    if run_hook is not None:
        await run_hook(spawner.user_options)
    else:  # older hubs have no such hook: call ours as 5.3+ would
        await spawner._apply_lab_options(spawner, spawner.user_options)
    assert spawner.lab_options.image.tag == "w_2024_01"
    calls: list[object] = []

    async def no_catalog() -> object:
        calls.append(1)
        raise AssertionError("validated twice")

    spawner.options_catalog = no_catalog
    await spawner.load_user_options()
    assert spawner.image == f"{IMAGE_BASE}:w_2024_01"
    assert calls == []


def api_handler(body: bytes, method: str = "POST") -> Any:
    """The handler of ``POST /hub/api/users/u/server`` with ``body``, as installed."""
    from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

    handler = UserServerAPIHandler.__new__(UserServerAPIHandler)
    start_line = RequestStartLine(method, "/hub/api/users/u/server", "HTTP/1.1")
    headers = HTTPHeaders({"Host": "127.0.0.1"})
    handler.request = HTTPServerRequest(start_line=start_line, headers=headers, body=body)
    return handler


#: JupyterHub 6 reads ``{"user_options": ...}`` (``get_server_json_body``); 5 takes the body.
HUB_6 = hasattr(UserServerAPIHandler, "get_server_json_body")


@pytest.mark.parametrize(
    ("body", "fresh_on_6", "fresh_on_5"),
    [
        (b"", False, False),
        (b"null", False, False),
        (b"{}", False, True),
        (b'{"user_options": null}', False, True),
        (b'{"display_name": "x"}', False, True),
        (b'{"user_options": {}}', True, True),
        (b'{"user_options": {"image": "w_2024_10"}}', True, True),
        (b'{"image": "w_2024_10"}', True, True),  # old style: the body is the options
        # Bodies the hub refuses or mis-decodes: fresh, so validated strictly.
        (b"not json", True, True),
        (b"[1]", True, True),
        (b'{"user_options": "x"}', True, True),
        (b'{"user_options": {"image": "\xff\xfe"}}', True, True),
        (b'{"user_options": {"image": "w_2024_10", "shell": "/bin/sh\xff"}}', True, True),
    ],
)
def test_fresh_or_reused_api_request(body: bytes, fresh_on_6: bool, fresh_on_5: bool) -> None:
    assert request_supplies_options(api_handler(body)) is (fresh_on_6 if HUB_6 else fresh_on_5)


def test_invalid_utf8_is_a_fresh_request() -> None:
    """Regression: raw bytes that are not UTF-8 made the spawner re-use the saved options."""
    raw = b'{"user_options": {"image": "' + bytes([0xFF, 0xFE]) + b'"}}'
    assert request_supplies_options(api_handler(raw)) is True


def test_non_api_handlers_are_not_fresh_requests() -> None:
    assert request_supplies_options(None) is False
    assert request_supplies_options(SimpleNamespace(request=None)) is False
    assert request_supplies_options(api_handler(b'{"user_options": {}}', "GET")) is False
