"""The menu in KubeSpawner's profile_list format."""

from __future__ import annotations

from lsst_spawner.menu import CuratedImage, ImageState, MenuDocument, NodeGroup
from lsst_spawner.menu.profile_list import build_profile_list

from .conftest import make_profile

GPU = NodeGroup(
    name="gpu",
    node_selector={"pool": "gpu"},
    tolerations=({"key": "nvidia.com/gpu", "operator": "Exists"},),
    affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
    extended_resources={"nvidia.com/gpu": 2},
)
DOCUMENT = MenuDocument(
    images=(
        CuratedImage(tag="recommended", default=True, display_name="Recommended"),
        CuratedImage(tag="exp_cuda", groups=("gpu-users",)),
        CuratedImage(tag="w_2024_01", state=ImageState.HIDDEN),
    ),
    profiles=(
        make_profile("small", default=True, description="for notebooks"),
        make_profile("gpu", cpu="4", node_group="gpu", groups=("gpu-users",)),
    ),
)


def test_profiles_with_node_group_scheduling_and_extended_resources() -> None:
    small, gpu = build_profile_list(DOCUMENT, {"gpu": GPU})
    assert small == {
        "display_name": "small",
        "slug": "small",
        "description": "for notebooks",
        "default": True,
        "kubespawner_override": {
            "cpu_limit": 1.0,
            "cpu_guarantee": 0.1,
            "mem_limit": 4 * 2**30,
            "mem_guarantee": 2**30,
        },
    }
    assert gpu["kubespawner_override"] == {
        "cpu_limit": 4.0,
        "cpu_guarantee": 0.1,
        "mem_limit": 4 * 2**30,
        "mem_guarantee": 2**30,
        "node_selector": {"pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        "extra_pod_config": {"affinity": GPU.affinity},
        "extra_resource_limits": {"nvidia.com/gpu": "2"},
        "extra_resource_guarantees": {"nvidia.com/gpu": "2"},
    }


def test_per_group_lists_and_image_options() -> None:
    everyone = build_profile_list(DOCUMENT, {"gpu": GPU}, user_groups=[], image_repository="r/lab")
    assert [p["slug"] for p in everyone] == ["small"]
    assert everyone[0]["profile_options"]["image"]["choices"] == {
        "recommended": {
            "display_name": "Recommended",
            "default": True,
            "kubespawner_override": {"image": "r/lab:recommended"},
        }
    }
    gpu_users = build_profile_list(
        DOCUMENT, {"gpu": GPU}, user_groups=["gpu-users"], image_repository="r/lab"
    )
    assert [p["slug"] for p in gpu_users] == ["small", "gpu"]
    assert list(gpu_users[1]["profile_options"]["image"]["choices"]) == ["recommended", "exp_cuda"]
    assert "profile_options" not in build_profile_list(DOCUMENT, {"gpu": GPU})[0]
