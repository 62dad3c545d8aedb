"""LabTraits in LSSTSpawner: every lab trait available, none shadowing a KubeSpawner trait."""

from __future__ import annotations

from kubespawner import KubeSpawner

from lsst_spawner.lab.traits import LabTraits
from lsst_spawner.spawner import LSSTSpawner


def test_lab_traits_do_not_shadow_kubespawner_traits() -> None:
    ours = set(LabTraits.class_own_traits())
    assert ours.isdisjoint(KubeSpawner.class_trait_names())
    assert ours <= set(LSSTSpawner.class_trait_names())
    # KubeSpawner's own traits keep their KubeSpawner definition.
    for name in ("volumes", "volume_mounts", "node_selector", "tolerations", "extra_labels"):
        assert LSSTSpawner.class_traits()[name] is KubeSpawner.class_traits()[name]


def test_every_lab_trait_is_configurable_and_documented() -> None:
    for name, trait in LabTraits.class_own_traits().items():
        assert trait.metadata.get("config") is True, name
        help_text = trait.help
        assert 20 <= len(help_text) <= 300, name
