"""``lsst-spawner operator``: run the kopf operator (see docs/operator.md).

Two or more replicas use kopf's peering: each starts with its own random
priority, the highest one works, the others stand by until its peering entry
expires. The liveness endpoint fails when this replica works but its own
heartbeat Lease, renewed every ``--heartbeat`` seconds, has stopped coming back
through a watch: the watch streams are dead (kopf#1276) and a restart is due.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import secrets
import time
from typing import Any

__all__ = ["add_operator_arguments", "run_operator"]

_LOG = logging.getLogger("lsst_spawner.operator")
#: kopf's ``consistency_timeout``: under load the LabServer watch ran up to 16.5 s late
#: (N=1,000), and past kopf's 5 s it ran the create handler again on the handler's own
#: status event (docs/performance.md, "Operator mode"). It only delays a handler when
#: kopf's patch never comes back (a watch re-listed past it).
CONSISTENCY_TIMEOUT = 30.0


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def add_operator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--namespace",
        action="append",
        required=True,
        metavar="NS",
        help="a namespace whose LabServers to reconcile (repeat for more)",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--peering",
        default="lsst-spawner",
        metavar="NAME",
        help="kopf peering object shared by the replicas (default: lsst-spawner)",
    )
    group.add_argument(
        "--standalone", action="store_true", help="one replica only: no peering object"
    )
    parser.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        metavar="URL",
        help="where the liveness probe is served (default: http://0.0.0.0:8080/healthz)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how often the heartbeat Lease is renewed (default: 10)",
    )
    parser.add_argument(
        "--priority", type=int, default=None, help="peering priority (default: random)"
    )
    parser.add_argument(
        "--consistency-timeout",
        type=float,
        default=CONSISTENCY_TIMEOUT,
        metavar="SECONDS",
        help="how long kopf waits for its own patch of a LabServer to come back through the "
        f"watch before it acts on an older event (default: {CONSISTENCY_TIMEOUT:g}; kopf's: 5)",
    )
    parser.add_argument(
        "--worker-limit",
        type=int,
        default=None,
        metavar="N",
        help="at most N objects (LabServers, pods) handled at once, the others queued "
        "(default: no limit, kopf's; see docs/performance.md, operator mode at N=3,000)",
    )
    parser.add_argument(
        "--max-requests",
        type=_non_negative,
        default=None,
        metavar="N",
        help="at most N of the operator's API requests in flight at once, the others queued "
        "with their timeouts not yet running (default: its client's connection pool size, "
        "100; 0: no limit, requests then queue in the pool with their timeouts running)",
    )
    parser.add_argument(
        "--peering-lifetime",
        type=int,
        default=60,
        metavar="SECONDS",
        help="how long a silent replica's peering entry counts as alive (default: 60)",
    )


async def _heartbeat(state: Any, api: Any) -> None:
    """Renew this replica's heartbeat Lease; its watch event proves the watches work."""
    from kubernetes_asyncio import client

    from .handlers import HEARTBEAT_LABEL

    leases: Any = client.CoordinationV1Api(api)  # dict bodies, _content_type
    namespace = state.namespaces[0]
    name = f"lsst-spawner-operator-{state.identity}"
    while True:
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "labels": {HEARTBEAT_LABEL: state.identity}},
            "spec": {"holderIdentity": state.identity, "renewTime": now},
        }
        try:
            try:
                await leases.patch_namespaced_lease(
                    name,
                    namespace,
                    {"spec": body["spec"]},
                    _content_type="application/merge-patch+json",
                )
            except client.ApiException as error:
                if error.status != 404:
                    raise
                await leases.create_namespaced_lease(namespace, body)
        except Exception as error:  # the probe reports a heartbeat that stops
            _LOG.warning("Could not renew the heartbeat Lease %s: %s", name, error)
        await asyncio.sleep(state.heartbeat)


def _register(args: argparse.Namespace, identity: str, priority: int) -> None:
    import kopf
    from kubernetes_asyncio import client, config

    from . import handlers  # noqa: F401 - registers the handlers
    from .handlers import FINALIZER, OperatorState
    from .kube import LabKube

    @kopf.on.login()
    def login(**kwargs: Any) -> Any:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            return kopf.login_with_service_account(**kwargs)
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup()
    async def startup(settings: Any, memo: Any, **_: Any) -> None:
        from ..kube.retries import RetryPolicy, skip_unused_environment_lookups

        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix="lab.lsst-spawner.io"
        )
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="lab.lsst-spawner.io", key="last-handled-configuration"
        )
        settings.watching.server_timeout = 300
        settings.persistence.consistency_timeout = args.consistency_timeout
        settings.queueing.worker_limit = args.worker_limit
        limit = settings.queueing.worker_limit  # as kopf has them
        _LOG.info(
            "kopf waits %gs for its own patches; %s",
            settings.persistence.consistency_timeout,
            f"at most {limit} object(s) handled at once" if limit else "no worker limit",
        )
        settings.peering.lifetime = args.peering_lifetime
        settings.posting.level = logging.INFO
        configuration = client.Configuration()
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            await config.load_kube_config(client_configuration=configuration)
        api = client.ApiClient(configuration)
        if skip_unused_environment_lookups(client.CoreV1Api(api)):
            # Measured at N=1,000: 9 % of the operator's CPU went to them (threads, netrc).
            _LOG.info("no proxy variable or netrc entry applies to the API server: not looked up")
        policy = RetryPolicy(budget=30, request_timeout=10).with_log(_LOG)
        in_flight = (
            int(configuration.connection_pool_maxsize)
            if args.max_requests is None
            else args.max_requests
        )
        _LOG.info(
            "%s",
            f"at most {in_flight} API request(s) in flight, the others queued"
            if in_flight
            else "no limit on API requests in flight",
        )
        state = OperatorState(
            LabKube(api, policy, in_flight),
            identity=identity,
            priority=priority,
            peering=None if args.standalone else args.peering,
            heartbeat=args.heartbeat,
            namespaces=tuple(args.namespace),
        )
        memo.state = state
        memo.api = api
        state.heartbeat_task = asyncio.ensure_future(_heartbeat(state, api))
        from .prepull import TemplatePrepulls

        prepulls = TemplatePrepulls(
            state, client.CoreV1Api(api), lambda: _standing_by(state, api), log=_LOG
        )
        state.prepulls = prepulls
        state.prepull_task = asyncio.ensure_future(prepulls.run(args.heartbeat))

    @kopf.on.cleanup()
    async def cleanup(memo: Any, **_: Any) -> None:
        for name in ("heartbeat_task", "prepull_task"):  # the prepullers delete their pods
            task = getattr(memo.state, name, None)
            if task is not None:
                task.cancel()
                await asyncio.wait([task], timeout=15)
        await memo.api.close()
        from ..site import close_sites

        await close_sites()  # the templates' image menu refreshes
        memo.state.lab_menus.forget()  # the lab menu databases' connection pools
        left = _tasks_left_running()
        if left:
            _LOG.warning("Still running at shutdown (kopf waits 5 s for them): %s", ", ".join(left))

    @kopf.on.probe(id="watching")
    async def watching(memo: Any, **_: Any) -> Any:
        state = memo.state
        age = time.monotonic() - state.heartbeat_seen
        if age <= 3 * state.heartbeat + 5:
            return {"heartbeatAge": round(age, 1)}
        if await _standing_by(state, memo.api):
            return "standing by"
        # Permanent: kopf would retry a plain error in 60 s, and the probe would hang till then.
        raise kopf.PermanentError(
            f"no watch event for {age:.0f}s (heartbeat every {state.heartbeat:g}s): "
            "the watch streams are dead"
        )


def _tasks_left_running() -> list[str]:
    """The names of this process's tasks still running, but kopf's own and the current one."""
    current = asyncio.current_task()
    left = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if task is current or task.done() or "/kopf/" in getattr(code, "co_filename", "/kopf/"):
            continue
        left.append(task.get_name())
    return sorted(left)


async def _standing_by(state: Any, api: Any) -> bool:
    """Whether a live peer of higher priority works instead of this replica (kopf peering)."""
    from kubernetes_asyncio import client

    if state.peering is None:
        return False
    custom = client.CustomObjectsApi(api)
    try:
        peering = await custom.get_namespaced_custom_object(
            "kopf.dev", "v1", state.namespaces[0], "kopfpeerings", state.peering
        )
    except client.ApiException:
        return False
    for peer, info in (peering.get("status") or {}).items():
        higher = isinstance(info, dict) and int(info.get("priority", 0)) > state.priority
        if peer != state.identity and higher:
            return True
    return False


def run_operator(args: argparse.Namespace) -> int:
    """Run until stopped (SIGINT/SIGTERM); returns the exit code."""
    import kopf

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # kopf logs every handler run at INFO (the heartbeat's each second); failures stay visible.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    identity = f"op-{secrets.token_hex(6)}"
    priority = args.priority if args.priority is not None else random.randint(1, 2**30)  # noqa: S311
    _register(args, identity, priority)
    kopf.run(
        standalone=args.standalone,
        peering_name=None if args.standalone else args.peering,
        priority=priority,
        identity=identity,  # type: ignore[arg-type] # kopf's Identity is a NewType of str
        namespaces=args.namespace,
        liveness_endpoint=args.liveness,
    )
    return 0
