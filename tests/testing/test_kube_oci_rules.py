"""The OCI kubelet's refusals, each with the hostile or broken input itself (no runc needed)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.testing.kube.images import ImageConfig, ImagePullError, fetch_image_config
from lsst_spawner.testing.kube.oci import build_process, build_spec, resolve_user
from lsst_spawner.testing.kube.podenv import ContainerConfigError
from lsst_spawner.testing.kube.store import ObjectStore
from lsst_spawner.testing.kube.volumes import VolumeError, container_mounts, prepare_volumes


def a_pod(spec: dict[str, Any] | None = None, **container: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "labels": {}},
        "spec": {"containers": [{"name": "c", "image": "x", **container}], **(spec or {})},
    }


@pytest.mark.parametrize(
    ("image", "fragment"),
    [
        ("busybox:latest", "no registry host in the reference"),
        ("registry.example.org/lab:w_2026_01", "is not a loopback registry"),
        ("10.0.0.7:5000/lab:w_2026_01", "is not a loopback registry"),
    ],
)
def test_images_are_pulled_only_from_loopback_registries(image: str, fragment: str) -> None:
    with pytest.raises(ImagePullError, match=fragment):
        asyncio.run(fetch_image_config(image))


def test_a_digest_the_manifest_does_not_have_is_refused(images: dict[str, str]) -> None:
    reference = images["shell"]
    forged = reference.rsplit("@", 1)[0] + "@sha256:" + "0" * 64
    with pytest.raises(ImagePullError):
        asyncio.run(fetch_image_config(forged))
    tag_swapped = (
        reference.rsplit("@", 1)[0].rsplit(":", 1)[0] + ":1@" + images["plain"].rsplit("@", 1)[1]
    )
    with pytest.raises(ImagePullError, match="not found"):  # another repository's manifest
        asyncio.run(fetch_image_config(tag_swapped))


def test_kubernetes_command_and_args_rules() -> None:
    image = ImageConfig(entrypoint=["/entry"], cmd=["default"])
    assert image.argv(None, None) == ["/entry", "default"]
    assert image.argv(None, ["given"]) == ["/entry", "given"]
    assert image.argv(["/cmd"], None) == ["/cmd"]
    assert image.argv(["/cmd"], ["a"]) == ["/cmd", "a"]


@pytest.mark.parametrize(
    ("pod", "image", "fragment"),
    [
        (a_pod({"securityContext": {"runAsNonRoot": True}}), ImageConfig(), "will run as root"),
        (
            a_pod({"securityContext": {"runAsNonRoot": True}}),
            ImageConfig(user="nobody"),
            "non-numeric user (nobody)",
        ),
        (a_pod(), ImageConfig(user="no-such-user-here"), "unable to find user"),
        (
            a_pod(securityContext={"runAsUser": 0, "runAsNonRoot": True}),
            ImageConfig(user="1000"),
            "will run as root",
        ),
    ],
)
def test_users_a_kubelet_refuses(pod: dict[str, Any], image: ImageConfig, fragment: str) -> None:
    with pytest.raises(
        ContainerConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")
    ):
        resolve_user(pod, pod["spec"]["containers"][0], image)


def test_the_container_level_context_wins_and_fs_group_joins_the_groups() -> None:
    pod = a_pod(
        {"securityContext": {"runAsUser": 1, "runAsGroup": 2, "fsGroup": 9}},
        securityContext={"runAsUser": 5},
    )
    assert resolve_user(pod, pod["spec"]["containers"][0], ImageConfig(user="7:8")) == (
        5,
        2,
        [2, 9],
    )


def test_an_unsupported_seccomp_profile_is_refused_not_ignored() -> None:
    pod = a_pod(securityContext={"seccompProfile": {"type": "Localhost", "localhostProfile": "x"}})
    container = pod["spec"]["containers"][0]
    process = build_process(pod, container, ImageConfig(), ["/bin/true"], {})
    with pytest.raises(ContainerConfigError, match="'Localhost' is not supported"):
        build_spec(pod, container, process, Path("/nonexistent"), [])


def test_a_container_without_any_command_is_refused() -> None:
    pod = a_pod()
    with pytest.raises(ContainerConfigError, match="no command specified"):
        build_process(pod, pod["spec"]["containers"][0], ImageConfig(), [], {})


def test_capabilities_add_and_drop() -> None:
    pod = a_pod(securityContext={"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}})
    process = build_process(pod, pod["spec"]["containers"][0], ImageConfig(), ["/x"], {})
    assert process["capabilities"]["bounding"] == ["CAP_NET_BIND_SERVICE"]
    pod = a_pod(securityContext={"capabilities": {"drop": ["KILL", "cap_chown"]}})
    bounding = build_process(pod, pod["spec"]["containers"][0], ImageConfig(), ["/x"], {})[
        "capabilities"
    ]["bounding"]
    assert "CAP_KILL" not in bounding
    assert "CAP_CHOWN" not in bounding
    assert "CAP_SETUID" in bounding


@pytest.fixture
def store() -> ObjectStore:
    made = ObjectStore()
    made.create("namespaces", None, {"metadata": {"name": "ns"}})
    made.create("configmaps", "ns", {"metadata": {"name": "cm"}, "data": {"k": "v"}})
    return made


@pytest.mark.parametrize(
    ("volume", "fragment"),
    [
        ({"configMap": {"name": "absent"}}, 'configmap "absent" not found'),
        ({"secret": {"secretName": "absent"}}, 'secret "absent" not found'),
        (
            {"configMap": {"name": "cm", "items": [{"key": "nope", "path": "p"}]}},
            "configmap references non-existent config key: nope",
        ),
        (
            {"configMap": {"name": "cm", "items": [{"key": "k", "path": "../../etc/evil"}]}},
            "must be a relative path without '..'",
        ),
        (
            {"configMap": {"name": "cm", "items": [{"key": "k", "path": "/etc/evil"}]}},
            "must be a relative path",
        ),
        ({"persistentVolumeClaim": {"claimName": "absent"}}, 'persistentvolumeclaim "absent"'),
        ({"hostPath": {"path": "/nonexistent/lsst", "type": "Directory"}}, "is not a Directory"),
        ({"hostPath": {"path": "/etc/hostname", "type": "Directory"}}, "is not a Directory"),
        (
            {"projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
            "serviceAccountToken is not supported",
        ),
        ({"iscsi": {"targetPortal": "x", "iqn": "y", "lun": 0}}, "iscsi volumes are not supported"),
    ],
)
def test_volumes_that_fail_to_mount(
    store: ObjectStore, tmp_path: Path, volume: dict[str, Any], fragment: str
) -> None:
    pod = a_pod({"volumes": [{"name": "v", **volume}]})
    with pytest.raises(VolumeError, match=fragment.replace("(", r"\(")):
        prepare_volumes(store, pod, tmp_path / "v", tmp_path / "claims")
    assert not (tmp_path / "etc").exists()


def test_optional_sources_may_be_missing(store: ObjectStore, tmp_path: Path) -> None:
    pod = a_pod(
        {
            "volumes": [
                {"name": "a", "configMap": {"name": "absent", "optional": True}},
                {
                    "name": "b",
                    "configMap": {
                        "name": "cm",
                        "optional": True,
                        "items": [{"key": "gone", "path": "g"}, {"key": "k", "path": "k"}],
                    },
                },
            ]
        }
    )
    volumes = prepare_volumes(store, pod, tmp_path / "v", tmp_path / "claims")
    data = volumes["a"].path / "..data"
    assert sorted(os.listdir(volumes["a"].path)) == [data.readlink().name, "..data"]
    assert os.listdir(data) == []
    assert (volumes["b"].path / "k").read_text() == "v"
    assert not (volumes["b"].path / "g").exists()


@pytest.mark.parametrize(
    ("mount", "fragment"),
    [
        ({"name": "ghost", "mountPath": "/m"}, "no such volume"),
        ({"name": "v", "mountPath": "/m", "subPath": "../outside"}, "without '..'"),
        ({"name": "v", "mountPath": "/m", "subPath": "/etc"}, "relative path"),
        ({"name": "v", "mountPath": "/m", "subPath": "link"}, "resolves outside the volume"),
    ],
)
def test_volume_mounts_that_are_refused(
    store: ObjectStore, tmp_path: Path, mount: dict[str, Any], fragment: str
) -> None:
    pod = a_pod({"volumes": [{"name": "v", "emptyDir": {}}]})
    volumes = prepare_volumes(store, pod, tmp_path / "v", tmp_path / "claims")
    (volumes["v"].path / "link").symlink_to("/etc")
    with pytest.raises(VolumeError, match=fragment):
        container_mounts({"volumeMounts": [mount]}, volumes)


def test_references_go_through_the_configured_mirrors() -> None:
    from lsst_spawner.testing.kube.images import mirrored

    mirrors = {"docker.io": "127.0.0.1:5000", "quay.io": "127.0.0.1:5001"}
    assert mirrored("python:3.12-slim", mirrors) == "127.0.0.1:5000/library/python:3.12-slim"
    assert mirrored("jupyter/base:1", mirrors) == "127.0.0.1:5000/jupyter/base:1"
    assert mirrored("quay.io/jupyterhub/singleuser:latest", mirrors) == (
        "127.0.0.1:5001/jupyterhub/singleuser:latest"
    )
    assert mirrored("ghcr.io/x/y:1", mirrors) == "ghcr.io/x/y:1"
    assert mirrored("python:3", {}) == "docker.io/library/python:3"
