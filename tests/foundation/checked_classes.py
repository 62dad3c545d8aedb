"""A spawner with an lsst_spawner-style checked mixin, to test the check-config machinery."""

from kubespawner import KubeSpawner
from traitlets import List, Unicode

from lsst_spawner.config import CheckedConfigurable, ConfigProblem, Duration


class SampleTraits(CheckedConfigurable):
    refresh_interval = Duration(300, config=True, help="How often to refresh.")
    size_names = List(Unicode(), ["small", "large"], config=True, help="Sizes.")
    default_size = Unicode("small", config=True, help="Default size.")

    def config_problems(self) -> list[ConfigProblem]:
        problems = super().config_problems()
        if self.default_size not in self.size_names:
            problems.append(
                ConfigProblem(
                    "SampleSpawner.default_size",
                    f"{self.default_size!r} is not one of size_names {self.size_names}",
                )
            )
        return problems


class SampleSpawner(SampleTraits, KubeSpawner):
    pass
