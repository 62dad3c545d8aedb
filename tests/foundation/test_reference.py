"""Every trait lsst_spawner defines has help text, and the reference lists exactly those."""

import pytest

from lsst_spawner.reference import own_config_traits, public_classes

from .checked_classes import SampleSpawner


def test_own_config_traits_excludes_inherited_upstream_traits() -> None:
    # The sample's module is not lsst_spawner, so nothing of it is "own"; its mixin base
    # CheckedConfigurable defines none either. KubeSpawner's traits must never appear.
    assert own_config_traits(SampleSpawner) == []
    from lsst_spawner.spawner import LSSTSpawner

    assert "namespace" not in own_config_traits(LSSTSpawner)
    assert "cpu_limit" not in own_config_traits(LSSTSpawner)


@pytest.mark.parametrize("cls", public_classes(), ids=lambda cls: cls.__name__)
def test_every_own_trait_has_help(cls: type) -> None:
    traits = cls.class_traits(config=True)  # type: ignore[attr-defined]
    missing = [name for name in own_config_traits(cls) if len(traits[name].help.strip()) < 10]
    assert missing == [], f"{cls.__name__} traits without help: {missing}"
