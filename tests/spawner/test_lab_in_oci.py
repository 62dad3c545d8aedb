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


def visible_mount(mountinfo: str, path: str) -> list[str]:
    """The fields of the mount a process sees at ``path`` (the last one mounted there)."""
    lines = [line.split() for line in mountinfo.splitlines()]
    return [fields for fields in lines if fields[4] == path][-1]


async def create_site_secret(kube_api: KubeHandle) -> None:
    """A site's own Secret in the lab namespace, which labs read by reference."""
    body = {
        "metadata": {"name": "site-butler"},
        "data": {"token": base64.b64encode(b"b-42").decode()},
    }
    async with kube_api.api_client(admin=True) as api:
        await client.CoreV1Api(api).create_namespaced_secret(kube_api.namespace, body)


async def test_inside_a_running_lab_the_user_is_the_users_own(
    kube_api: KubeHandle, oci_kubelet: Any, lab_stand_in: tuple[str, dict[str, str]]
) -> None:
    base, digests = lab_stand_in
    identity = identity_for("rra", groups={"lsst-sqre": 3010, "g-physics": 200_123})
    configured = spawner_config(kube_api.namespace)
    configured.LSSTSpawner.static_image_base = base
    configured.LSSTSpawner.static_image_digests = digests
    configured.LSSTSpawner.lab_files = [
        {"path": "/etc/lab/motd", "content": "Welcome to the lab\n"},
        {"path": "/opt/site/lab.json", "content": '{"site": "test"}', "mode": 0o440},
    ]
    configured.LSSTSpawner.lab_extra_secrets = [
        {
            "key": "butler-token",
            "env": "BUTLER_TOKEN",
            "secret_key_ref": {"name": "site-butler", "key": "token"},
        }
    ]
    await create_site_secret(kube_api)
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

        # The root filesystem is read-only; /tmp is the pod's emptyDir, writable.
        mountinfo = await exec_in(kube_api, "nb-rra", ["cat", "/proc/self/mountinfo"])
        assert "ro" in visible_mount(mountinfo, "/")[5].split(","), visible_mount(mountinfo, "/")
        tmp = visible_mount(mountinfo, "/tmp")
        assert tmp[3].endswith("/lab-writable-0"), tmp  # not the kubelet's own tmpfs
        assert "rw" in tmp[5].split(",")
        probe = "echo x > /tmp/probe && cat /tmp/probe; touch /lab-probe 2>&1; true"
        written = await exec_in(kube_api, "nb-rra", ["sh", "-c", probe])
        assert written.splitlines()[0] == "x"
        assert "Read-only file system" in written, written

        # Static files from the lab's Secret, read-only, with their modes (owned by root:
        # 0440 keeps the user out); a site secret read by the kubelet from the site's own
        # Secret, as a file and a variable.
        files = "cat /etc/lab/motd; stat -c %a /etc/lab/motd /opt/site/lab.json"
        seen = await exec_in(kube_api, "nb-rra", ["sh", "-c", files])
        assert seen.splitlines() == ["Welcome to the lab", "444", "440"]
        denied = "cat /opt/site/lab.json 2>&1; echo >> /etc/lab/motd 2>&1; true"
        refused = await exec_in(kube_api, "nb-rra", ["sh", "-c", denied])
        assert refused.count("Permission denied") == 2, refused
        assert "ro" in visible_mount(mountinfo, "/etc/lab/motd")[5].split(",")
        butler = await exec_in(
            kube_api,
            "nb-rra",
            ["sh", "-c", 'cat /etc/lab/secrets/butler-token; echo; echo "$BUTLER_TOKEN"'],
        )
        assert butler.splitlines() == ["b-42", "b-42"]
    finally:
        await spawner.stop(now=True)
