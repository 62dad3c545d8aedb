"""A Kubernetes core v1 API emulator and a process kubelet, for tests and demos.

See ``docs/emulator.md`` for what is and is not modelled.
"""

from .counters import RequestCounters
from .faults import FaultInjector, FaultRule
from .kubeconfig import kubeconfig_dict, write_kubeconfig
from .server import KubeEmulator
from .status import ApiError
from .store import ObjectStore

__all__ = [
    "ApiError",
    "FaultInjector",
    "FaultRule",
    "KubeEmulator",
    "ObjectStore",
    "RequestCounters",
    "kubeconfig_dict",
    "write_kubeconfig",
]
