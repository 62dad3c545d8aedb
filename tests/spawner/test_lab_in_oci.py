"""A lab built by LSSTSpawner's own builders, running in runc, examined from inside.

The OCI kubelet runs the lab pod's container as its security context with its
volumes mounted; ``kubectl exec``'s protocol (through kubernetes_asyncio's
stream client) runs commands inside the running lab.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.stream import WsApiClient

from lsst_spawner.offline import OfflineHub, OfflineServer, OfflineUser
from lsst_spawner.spawner import LSSTSpawner
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.oauth.identity import identity_for

from .test_lifecycle import TOKEN, spawner_config

pytestmark = pytest.mark.integration


async def exec_in(kube_api: KubeHandle, pod: str, argv: list[str]) -> str:
    """Run ``argv`` in the pod as an operator would: the administrator (z2jh's hub Role has
    no ``pods/exec``)."""
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(kube_api.admin_kubeconfig), client_configuration=configuration
    )
    async with WsApiClient(configuration) as ws:
        v1 = client.CoreV1Api(api_client=ws)
        output: str = await v1.connect_get_namespaced_pod_exec(
            pod, kube_api.namespace, command=argv, stderr=True, stdin=False, stdout=True, tty=False
        )
        return output


async def test_inside_a_running_lab_the_user_is_the_users_own(
    kube_api: KubeHandle, oci_kubelet: Any, lab_stand_in: tuple[str, dict[str, str]]
) -> None:
    base, digests = lab_stand_in
    identity = identity_for("rra", groups={"lsst-sqre": 3010, "g-physics": 200_123})
    configured = spawner_config(kube_api.namespace)
    configured.LSSTSpawner.static_image_base = base
    configured.LSSTSpawner.static_image_digests = digests
    user = OfflineUser("rra", {"identity": identity.to_dict()})
    spawner = LSSTSpawner(config=configured, user=user, hub=OfflineHub())
    spawner.server = OfflineServer(user)
    spawner.api_token = TOKEN
    spawner.user_options = {"image": "w_2026_46", "size": "small"}
    spawner.lab_options_fresh = True
    try:
        await asyncio.wait_for(spawner.start(), 90)
        pod = await kube_api.get("pods", "nb-rra")
        assert pod["status"]["phase"] == "Running"
        secret = await kube_api.get("secrets", "nb-rra-secret")
        expected_passwd = base64.b64decode(secret["data"]["passwd"]).decode()
        expected_group = base64.b64decode(secret["data"]["group"]).decode()

        ids = await exec_in(kube_api, "nb-rra", ["id"])
        assert ids.split()[0] == f"uid={identity.uid}(rra)"
        assert ids.split()[1] == f"gid={identity.gid}(rra)"
        groups = ids.split()[2].removeprefix("groups=").split(",")
        assert sorted(g.split("(")[0] for g in groups) == sorted(
            str(g) for g in {identity.gid, 3010, 200_123}
        )
        assert "3010(lsst-sqre)" in groups
        assert await exec_in(kube_api, "nb-rra", ["cat", "/etc/passwd"]) == expected_passwd
        assert await exec_in(kube_api, "nb-rra", ["cat", "/etc/group"]) == expected_group
        status = await exec_in(kube_api, "nb-rra", ["grep", "^Cap", "/proc/self/status"])
        assert {line.split()[1] for line in status.splitlines()} == {"0000000000000000"}
        probe = "touch /usr/lab-probe 2>&1 || true; touch /etc/lab-probe 2>&1 || true"
        writes = await exec_in(kube_api, "nb-rra", ["sh", "-c", probe])
        assert writes.count("Permission denied") + writes.count("Read-only") == 2, writes
        no_new = await exec_in(kube_api, "nb-rra", ["grep", "NoNewPrivs", "/proc/self/status"])
        assert no_new.split() == ["NoNewPrivs:", "1"]
        secrets_dir = await exec_in(
            kube_api, "nb-rra", ["sh", "-c", "touch /etc/lab/secrets/x 2>&1; id -u"]
        )
        assert "Read-only file system" in secrets_dir
    finally:
        await spawner.stop(now=True)
