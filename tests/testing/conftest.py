from lsst_spawner.testing.kube_fixtures import kube_api, kubelet  # noqa: F401
