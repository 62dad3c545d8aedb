"""``python -m lsst_spawner.testing.kube``: run the emulator (and a kubelet) standalone.

Writes a kubeconfig to ``--kubeconfig`` once serving, so a JupyterHub started
in another process can use it with ``KUBECONFIG=<path>``. Stops on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from .hub_role import write_hub_kubeconfig
from .kubelet import FakeNode, ProcessKubelet
from .server import KubeEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lsst_spawner.testing.kube", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument(
        "--namespace",
        action="append",
        default=None,
        help="namespace to create (repeatable; default: default)",
    )
    parser.add_argument("--kubelet", choices=["none", "process", "stub", "oci"], default="process")
    parser.add_argument(
        "--node",
        action="append",
        default=None,
        help="fake node name (repeatable; default: node-1, node-2)",
    )
    parser.add_argument(
        "--max-pods",
        type=int,
        default=110,
        help="pods per fake node (a real node's default is 110)",
    )
    parser.add_argument(
        "--image",
        action="append",
        default=None,
        help="image the kubelet can pull (repeatable; default: any image)",
    )
    parser.add_argument(
        "--kubernetes-version",
        default=None,
        help="the version /version reports and whose schemas validate (default: the newest "
        "kubernetes-validate ships)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--counters", help="write request counters as JSON here on exit")
    parser.add_argument(
        "--hub-role",
        choices=["z2jh", "admin"],
        default="z2jh",
        help="the kubeconfig's user: the hub's service account bound to z2jh's hub Role in the "
        "first namespace (default), or the emulator's administrator",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a self-signed certificate (kubectl sends tokens only over TLS)",
    )
    parser.add_argument("--no-rbac", action="store_true", help="authorize every request")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> KubeEmulator:
    namespaces = args.namespace or ["default"]
    emulator = KubeEmulator(
        port=args.port,
        namespaces=namespaces,
        seed=args.seed,
        kubernetes_version=args.kubernetes_version,
        rbac=not args.no_rbac,
        tls=args.tls,
    )
    await emulator.start()
    kubelet = None
    if args.kubelet != "none":
        kubelet = ProcessKubelet(
            emulator,
            nodes=[FakeNode(n, max_pods=args.max_pods) for n in args.node or ("node-1", "node-2")],
            mode=args.kubelet,
            images=set(args.image) if args.image else None,
        )
        await kubelet.start()
    # The handlers go in before the kubeconfig and the "serving" line: whoever reads that
    # line may stop this process at once, and a signal before them would kill it uncleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.hub_role == "z2jh":
        write_hub_kubeconfig(emulator, args.kubeconfig, namespaces[0])
    else:
        emulator.write_kubeconfig(args.kubeconfig, namespaces[0])
    print(f"Kubernetes emulator at {emulator.url}; kubeconfig {args.kubeconfig}", flush=True)
    await stop.wait()
    if kubelet is not None:
        await kubelet.stop()
    await emulator.stop()
    return emulator


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    emulator = asyncio.run(serve(args))
    if args.counters:
        with open(args.counters, "w") as f:
            json.dump(emulator.counters.as_dict(), f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
