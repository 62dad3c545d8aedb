"""A kubelet pod's ``log``, ``exec`` and ``attach`` subresources, as the API server serves them.

- ``log``: ``container`` (required when the pod has several), ``follow`` (streams
  until the container exits), ``previous`` (the log of the run before the last
  restart; a 400 as from a real server when there is none), ``tailLines`` and
  ``limitBytes``. A container that has not started answers the real server's
  400 "is waiting to start". ``timestamps`` and ``sinceSeconds`` are refused
  with a 400 rather than ignored: the log files keep no line times.
- ``exec`` and ``attach``: WebSocket only, with the channel protocols
  ``v5.channel.k8s.io`` (kubectl 1.30+: channel 255 closes a stream) and
  ``v4.channel.k8s.io`` (kubectl before, and the Python clients): channel 0 is
  stdin, 1 stdout, 2 stderr, 3 the final ``Status`` (``NonZeroExitCode`` with the
  code in ``details.causes``), 4 resize (accepted, no terminal is given). A
  plain or SPDY request is answered 400 "Upgrade request required". ``exec``
  runs the command in the container (``runc exec`` with the container's own
  process settings in the OCI mode); ``attach`` streams the main process's
  output (stdout and stderr together, from its log) and feeds its stdin when the
  container has ``stdin: true``.

- ``portforward``: :mod:`.portforward` (WebSocket channels, SPDY/3.1, SPDY in a
  WebSocket).

Authorization as the API server's: RBAC checks the request's own verb (``get``
for a WebSocket's GET, ``create`` for SPDY's POST); from Kubernetes 1.35
(``AuthorizePodWebsocketUpgradeCreatePermission``, on by default) ``exec``,
``attach`` and ``portforward`` also need ``create`` for a GET, with the
registry's ``pods "p" is forbidden: `` message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .forward import version_tuple
from .portforward import serve_portforward
from .rbac_api import request_attributes
from .status import ApiError

if TYPE_CHECKING:
    from .containers import RunningContainer
    from .kubelet import ProcessKubelet, _Runtime
    from .server import KubeEmulator

__all__ = ["PROTOCOLS", "register", "unregister"]

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def register(emulator: KubeEmulator, kubelet: ProcessKubelet) -> None:
    async def log(request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        return await serve_log(kubelet, request, namespace, name)

    async def exec_(request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        authorize_connect(emulator, request, name)
        return await serve_exec(kubelet, request, namespace, name, attach=False)

    async def attach(request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        authorize_connect(emulator, request, name)
        return await serve_exec(kubelet, request, namespace, name, attach=True)

    async def portforward(request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        authorize_connect(emulator, request, name)
        return await serve_portforward(kubelet, request, namespace, name)

    emulator.pod_subresources.update(log=log, exec=exec_, attach=attach, portforward=portforward)


def unregister(emulator: KubeEmulator, kubelet: ProcessKubelet) -> None:
    for key in ("log", "exec", "attach", "portforward"):
        emulator.pod_subresources.pop(key, None)


#: The first version that also asks for ``create`` on a connect GET (KEP 4006, issue 133515).
CONNECT_CREATE_SINCE = (1, 35)


def authorize_connect(emulator: KubeEmulator, request: web.Request, name: str) -> None:
    """The registry's extra ``create`` check of a pod connect subresource, on 1.35+.

    The HTTP edge has already authorized the request's own verb; a POST is
    ``create`` already. The error is ``errors.NewForbidden`` with the RBAC
    authorizer's reason (empty unless a binding names a missing role).
    """
    access = emulator.access
    if not access.enabled or version_tuple(emulator.kubernetes_version) < CONNECT_CREATE_SINCE:
        return
    user = access.authn.authenticate(request.headers)
    attrs = request_attributes(user, request.method, request.path, request.query)
    if attrs.verb == "create":
        return
    allowed, reason = access.authorizer.allowed(dataclasses.replace(attrs, verb="create"))
    if not allowed:
        raise ApiError(
            403,
            f'pods "{name}" is forbidden: {reason}',
            "Forbidden",
            {"name": name, "kind": "pods"},
        )


def _container_name(pod: dict[str, Any], wanted: str | None) -> str:
    names: list[str] = [c["name"] for c in pod["spec"]["containers"]]
    init: list[str] = [c["name"] for c in pod["spec"].get("initContainers") or []]
    name = pod["metadata"]["name"]
    if not wanted:
        if len(names) == 1:
            return names[0]
        choices = f"[{' '.join(names)}]" + (
            f" or one of the init containers: [{' '.join(init)}]" if init else ""
        )
        raise ApiError.bad_request(
            f"a container name must be specified for pod {name}, choose one of: {choices}"
        )
    if wanted not in names + init:
        raise ApiError.bad_request(f"container {wanted} is not valid for pod {name}")
    return wanted


def _statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def _waiting_reason(pod: dict[str, Any], container: str) -> str:
    for status in _statuses(pod):
        if status["name"] == container:
            waiting = status["state"].get("waiting") or {}
            return str(waiting.get("reason", "ContainerCreating"))
    return "ContainerCreating"


def _is_running(pod: dict[str, Any], container: str) -> bool:
    """Running, or (an init container with nothing to run) completed."""
    return any(
        s["name"] == container and ("running" in s["state"] or "terminated" in s["state"])
        for s in _statuses(pod)
    )


def _running(
    kubelet: ProcessKubelet, pod: dict[str, Any], namespace: str, name: str, container: str
) -> tuple[_Runtime, RunningContainer]:
    runtime = kubelet.runtime_of(namespace, name)
    running = runtime.containers.get(container) if runtime else None
    if runtime is None or running is None:
        raise ApiError.bad_request(
            f'container "{container}" in pod "{name}" is waiting to start: '
            f"{_waiting_reason(pod, container)}"
        )
    return runtime, running


def _flag(query: Any, key: str) -> bool:
    return str(query.get(key, "")).lower() in ("true", "1")


def _number(query: Any, key: str) -> int | None:
    value = query.get(key)
    if value in (None, ""):
        return None
    if not str(value).isdigit():
        raise ApiError.bad_request(f"invalid value for {key}: {value!r}")
    return int(value)


async def serve_log(
    kubelet: ProcessKubelet, request: web.Request, namespace: str, name: str
) -> web.StreamResponse:
    query = request.query
    pod = kubelet.store.get("pods", namespace, name)
    container = _container_name(pod, query.get("container"))
    for refused in ("timestamps", "sinceSeconds", "sinceTime"):
        if query.get(refused) not in (None, "", "false"):
            raise ApiError.bad_request(f"{refused} is not supported by this kubelet's logs")
    tail, limit = _number(query, "tailLines"), _number(query, "limitBytes")
    runtime = kubelet.runtime_of(namespace, name)
    if _flag(query, "previous"):
        path = runtime.previous_logs.get(container) if runtime else None
        if path is None:
            raise ApiError.bad_request(
                f'previous terminated container "{container}" in pod "{name}" not found'
            )
        return web.Response(text=_select(path.read_bytes(), tail, limit).decode(errors="replace"))
    if runtime is not None and container not in runtime.containers and _is_running(pod, container):
        return web.Response(body=b"", content_type="text/plain")  # a stub: no process, no log
    runtime, running = _running(kubelet, pod, namespace, name, container)
    path = running.log
    data = _select(path.read_bytes(), tail, limit)
    if not _flag(query, "follow"):
        return web.Response(body=data, content_type="text/plain")
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    await response.write(data)
    sent = len(data)
    with contextlib.suppress(ConnectionError, asyncio.CancelledError), path.open("rb") as handle:
        handle.seek(0, 2)
        while limit is None or sent < limit:
            chunk = handle.read(65536)
            if chunk:
                chunk = chunk if limit is None else chunk[: limit - sent]
                sent += len(chunk)
                await response.write(chunk)
                continue
            if running.exited.is_set() or runtime.containers.get(container) is not running:
                break
            runtime.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runtime.changed.wait(), 0.1)
    return response


def _select(data: bytes, tail: int | None, limit: int | None) -> bytes:
    if tail is not None:
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[-tail:]) if tail else b""
    if limit is not None:
        data = data[:limit]
    return data


def _status(code: int, argv: list[str]) -> dict[str, Any]:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            f"command terminated with non-zero exit code: error executing command "
            f"[{' '.join(argv)}], exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


async def serve_exec(
    kubelet: ProcessKubelet,
    request: web.Request,
    namespace: str,
    name: str,
    *,
    attach: bool,
) -> web.StreamResponse:
    query = request.query
    pod = kubelet.store.get("pods", namespace, name)
    container = _container_name(pod, query.get("container"))
    argv = query.getall("command", [])
    if not attach and not argv:
        raise ApiError.bad_request("you must specify at least 1 command")
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise ApiError.bad_request("Upgrade request required")
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    if not any(p in PROTOCOLS for p in offered):
        raise ApiError.bad_request(
            f"unable to upgrade connection: none of the offered subprotocols {offered} "
            f"is supported (the server speaks {', '.join(PROTOCOLS)})"
        )
    runtime, running = _running(kubelet, pod, namespace, name, container)
    if running.exited.is_set():
        raise ApiError.bad_request(
            f'unable to upgrade connection: container not found ("{container}")'
        )
    want_stdin = _flag(query, "stdin")
    if attach and want_stdin and not running.stdin:
        raise ApiError.bad_request(
            f"container {container} in pod {name} does not have stdin: true (attach -i)"
        )
    ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True)
    await ws.prepare(request)
    v5 = ws.ws_protocol == "v5.channel.k8s.io"
    try:
        if attach:
            code = await _attach(ws, runtime, running, want_stdin, v5)
        else:
            code = await _exec(ws, running, argv, want_stdin, v5)
        if code is not None:
            await ws.send_bytes(bytes([ERROR]) + json.dumps(_status(code, argv)).encode())
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        await ws.close()
    return ws


async def _feed_stdin(
    ws: web.WebSocketResponse, stdin: asyncio.StreamWriter | None, v5: bool
) -> None:
    async for message in ws:
        if message.type != WSMsgType.BINARY or not message.data:
            if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
            continue
        data: bytes = message.data
        channel, payload = data[0], data[1:]
        if channel == STDIN and stdin is not None:
            stdin.write(payload)
            with contextlib.suppress(ConnectionError):
                await stdin.drain()
        elif channel == CLOSE and v5 and payload[:1] == bytes([STDIN]) and stdin is not None:
            stdin.close()
    if stdin is not None and not stdin.is_closing():
        stdin.close()


async def _pump(
    ws: web.WebSocketResponse, reader: asyncio.StreamReader | None, channel: int
) -> None:
    if reader is None:
        return
    while chunk := await reader.read(65536):
        await ws.send_bytes(bytes([channel]) + chunk)


async def _exec(
    ws: web.WebSocketResponse, running: RunningContainer, argv: list[str], stdin: bool, v5: bool
) -> int:
    process = await running.exec(argv, stdin=stdin)
    feeder = asyncio.get_running_loop().create_task(
        _feed_stdin(ws, process.stdin if stdin else None, v5)
    )
    try:
        await asyncio.gather(_pump(ws, process.stdout, STDOUT), _pump(ws, process.stderr, STDERR))
        return await process.wait()
    finally:
        feeder.cancel()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()


async def _attach(
    ws: web.WebSocketResponse,
    runtime: _Runtime,
    running: RunningContainer,
    stdin: bool,
    v5: bool,
) -> int | None:
    writer = running.process.stdin if stdin else None
    feeder = asyncio.get_running_loop().create_task(_feed_stdin(ws, writer, v5))
    try:
        with Path(running.log).open("rb") as handle:  # noqa: ASYNC230 - a local file, small reads
            handle.seek(0, 2)
            while True:
                chunk = handle.read(65536)
                if chunk:
                    await ws.send_bytes(bytes([STDOUT]) + chunk)
                    continue
                if running.exited.is_set():
                    break
                runtime.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(runtime.changed.wait(), 0.1)
        return running.exit_code
    finally:
        feeder.cancel()
