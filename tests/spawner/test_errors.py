"""Each refusal carries its own status, mapped to ``HTTPError`` in one place."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.web import HTTPError

from lsst_spawner.commands import _offline_kubernetes_client
from lsst_spawner.errors import (
    IdentityRejected,
    LabBuildFailed,
    NoImageAvailable,
    OptionsRejected,
    SpawnRefused,
    answers_http,
    to_http_error,
)
from lsst_spawner.form.options import OptionsCatalog, SizeChoice
from lsst_spawner.offline import OfflineHub, OfflineServer, OfflineUser
from lsst_spawner.site import forget_sites
from lsst_spawner.spawner import LSSTSpawner
from lsst_spawner.testing.oauth.identity import identity_for
from tests.spawner.test_config_sharing import config as static_config

TOKEN = "errors-test-api-token-value"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (OptionsRejected("size 'x' is not one of small", field="size"), 400),
        (NoImageAvailable("no image is available"), 503),
        (IdentityRejected("Cannot start a lab for rra: uid 5 is below the minimum uid 1000"), 403),
        (LabBuildFailed("Cannot build the lab pod: KubeSpawner's pod has no containers"), 500),
    ],
)
def test_each_refusal_becomes_an_http_error_with_its_status(
    error: SpawnRefused, status: int
) -> None:
    http = to_http_error(error)
    assert isinstance(http, HTTPError)
    assert http.status_code == status == error.status
    assert http.log_message == error.message


async def test_answers_http_maps_refusals_and_nothing_else() -> None:
    @answers_http
    async def refuses(error: BaseException) -> None:
        raise error

    with pytest.raises(HTTPError) as caught:
        await refuses(IdentityRejected("no identity"))
    assert (caught.value.status_code, caught.value.log_message) == (403, "no identity")
    assert caught.value.__cause__ is None, "the user sees the message, not a chain"
    with pytest.raises(KeyError):
        await refuses(KeyError("a bug stays a bug"))


@pytest.fixture
def offline(tmp_path: Path) -> Iterator[None]:
    forget_sites()
    with _offline_kubernetes_client(str(tmp_path)):
        yield
    forget_sites()


def make_spawner(auth_state: Any = "default", **lab: Any) -> LSSTSpawner:
    c = static_config(**lab)
    if auth_state == "default":
        auth_state = {"identity": identity_for("rra").to_dict()}
    user = OfflineUser("rra", auth_state)
    spawner = LSSTSpawner(config=c, user=user, hub=OfflineHub())
    spawner.server = OfflineServer(user)
    spawner.api_token = TOKEN
    spawner.lab_options_fresh = True
    return spawner


async def status_of(spawner: LSSTSpawner) -> tuple[int, str]:
    with pytest.raises(HTTPError) as caught:
        await spawner.render_lab_objects()
    return caught.value.status_code, str(caught.value.log_message)


async def test_bad_options_are_400(offline: None) -> None:
    spawner = make_spawner()
    spawner.user_options = {"image": "w_2026_46", "shell": "/bin/sh"}
    status, message = await status_of(spawner)
    assert status == 400
    assert message.startswith("unknown option 'shell'")


async def test_a_size_the_lab_sizes_lack_is_an_options_error_not_an_identity_one(
    offline: None,
) -> None:
    """Regression: a size that validation accepted but lab_sizes lacks (a site's own
    catalog, or sizes changed meanwhile) was answered 403 as if the identity were bad."""
    spawner = make_spawner()
    original = spawner.options_catalog

    async def catalog_with_a_huge_size() -> OptionsCatalog:
        catalog = await original()
        sizes = (*catalog.sizes, SizeChoice("huge", "Huge (64 CPU, 1 TiB)"))
        return OptionsCatalog(menu=catalog.menu, sizes=sizes, default_size=catalog.default_size)

    spawner.options_catalog = catalog_with_a_huge_size  # type: ignore[method-assign]
    spawner.user_options = {"image": "w_2026_46", "size": "huge"}
    status, message = await status_of(spawner)
    assert status == 400
    assert "size 'huge' is not one of small, medium, large" in message


async def test_a_missing_identity_is_403(offline: None) -> None:
    spawner = make_spawner(auth_state=None)
    spawner.user_options = {"image": "w_2026_46"}
    status, message = await status_of(spawner)
    assert status == 403
    assert message.startswith("Cannot start a lab for rra: ")


async def test_an_identity_the_lab_rules_refuse_is_403(offline: None) -> None:
    spawner = make_spawner(lab_minimum_uid=500_000)
    spawner.user_options = {"image": "w_2026_46"}
    status, message = await status_of(spawner)
    assert status == 403
    assert "500000" in message


async def test_a_configuration_that_cannot_make_a_safe_pod_is_500(offline: None) -> None:
    spawner = make_spawner()
    spawner.environment = {"TOKEN_COPY": TOKEN}  # the ConfigMap would hold the API token
    spawner.user_options = {"image": "w_2026_46"}
    status, message = await status_of(spawner)
    assert status == 500
    assert message.startswith("Cannot build the lab pod: refusing to create")
    assert TOKEN not in message


async def test_a_kubespawner_pod_without_containers_is_500(offline: None) -> None:
    spawner = make_spawner()

    async def no_containers() -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {"containers": []}}

    spawner.base_pod_manifest = no_containers  # type: ignore[method-assign]
    spawner.user_options = {"image": "w_2026_46"}
    assert await status_of(spawner) == (
        500,
        "Cannot build the lab pod: KubeSpawner's pod has no containers",
    )
