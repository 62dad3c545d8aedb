"""The in-process hub fixture ``lsst_hub``."""

from __future__ import annotations

from typing import Any


async def test_spawn_and_stop(lsst_hub: Any) -> None:
    hub = await lsst_hub(images=["recommended", "w_2026_46"])
    pod = await hub.spawn("vera", {"image": "w_2026_46"})
    assert pod["spec"]["securityContext"]["runAsUser"] == hub.identities["vera"].uid
    await hub.stop("vera")
    assert await hub.kube_api.list("pods") == []
