"""Port-forward to kubelet pods: the Python clients' WebSocket channels, kubectl's SPDY/3.1
(kubectl before 1.31) and SPDY tunnelled in a WebSocket (1.31+), RBAC as the API server's."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import ssl
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
import yaml
from kubernetes_asyncio import client, config
from kubernetes_asyncio.stream import WsApiClient

from lsst_spawner.rbac import Z2JH_HUB_ROLE_RULES
from lsst_spawner.testing.kube import KubeEmulator, spdy
from lsst_spawner.testing.kube.forward import BACKLOG, Inbox
from lsst_spawner.testing.kube.hub_role import write_hub_kubeconfig
from lsst_spawner.testing.kube.kubelet import ProcessKubelet
from lsst_spawner.testing.ports import free_port

from .test_kube_kubelet import wait_for
from .test_kube_oci import pod as oci_pod

pytestmark = pytest.mark.integration

KUBECTL_DIR = Path(os.environ.get("LSST_SPAWNER_KUBECTL_DIR", "/usr/lib/google-cloud-sdk/bin"))
OLDEST, NEWEST = "1.27", "1.33"
#: What the HTTP server in the pod answers: proof the bytes came from the pod's process.
REPLY = b"hello from the pod"
SERVER = (
    "import http.server, sys\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    f"        body = {REPLY!r} + self.path.encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers(); self.wfile.write(body)\n"
    "http.server.HTTPServer(('0.0.0.0', 8888), H).serve_forever()\n"
)
GET = b"GET /through HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n"


@pytest.fixture
def kube_tls() -> bool:
    """kubectl sends its bearer token only over https."""
    return True


def web_pod(name: str = "web", **spec: Any) -> dict[str, Any]:
    container = {
        "name": "web",
        "image": "lab",
        "command": [sys.executable, "-c", SERVER],
        "ports": [{"containerPort": 8888, "name": "http"}],
    }
    return {"metadata": {"name": name}, "spec": {"containers": [container], **spec}}


async def serving(kube_api: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Create the pod (as the administrator) and wait until its port answers."""
    kube_api.emulator.create_object("pods", body, kube_api.namespace)
    name = body["metadata"]["name"]

    async def listening() -> Any:
        found = await kube_api.get("pods", name)
        ip = (found or {}).get("status", {}).get("podIP")
        if not ip:
            return None
        try:
            _, writer = await asyncio.open_connection(ip, 8888)
        except OSError:
            return None
        writer.close()
        return found

    found: dict[str, Any] = await wait_for(listening, 30)
    return found


def ssl_context(kube_api: Any) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=kube_api.emulator.certificate_pem.decode())


def token_of(kubeconfig: Path) -> str:
    """The bearer token of the kubeconfig's (only) user."""
    return str(yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"])


# -- the Python clients: WebSocket channels ------------------------------------------------


async def ws_client(kubeconfig: Path) -> WsApiClient:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return WsApiClient(configuration)


async def test_kubernetes_asyncio_forwards_a_pod_port(kube_api: Any, kubelet: Any) -> None:
    await serving(kube_api, web_pod())
    async with await ws_client(kube_api.admin_kubeconfig) as ws_api:
        v1 = client.CoreV1Api(api_client=ws_api)
        connect: Any = await v1.connect_get_namespaced_pod_portforward(
            "web", kube_api.namespace, ports=8888, _preload_content=False
        )
        async with connect as ws:
            # The first frame of each channel is the port, 2 bytes little-endian.
            first = [(await ws.receive_bytes(timeout=10)) for _ in range(2)]
            assert first == [b"\x00\xb8\x22", b"\x01\xb8\x22"]
            await ws.send_bytes(b"\x00" + GET)
            reply = b""
            async for message in ws:
                assert message.type == aiohttp.WSMsgType.BINARY
                assert message.data[0] == 0, message.data  # nothing on the error channel
                reply += message.data[1:]
    assert reply.startswith(b"HTTP/1.0 200")
    assert reply.endswith(REPLY + b"/through")


async def test_a_stub_pod_answers_through_port_forward(kube_api: Any, kubelet: Any) -> None:
    kubelet.mode = "stub"
    await serving(kube_api, web_pod())
    session, ws = await open_ws(kube_api, "ports=8888", ("v4.channel.k8s.io",))
    try:
        assert [await ws.receive_bytes(timeout=10) for _ in range(2)] == [
            b"\x00\xb8\x22",
            b"\x01\xb8\x22",
        ]
        await ws.send_bytes(b"\x00" + GET)
        reply = b""
        while not reply.endswith(b'{"kubelet": "stub"}\n'):
            frame = await ws.receive_bytes(timeout=10)
            assert frame[0] == 0, frame  # data, not the error channel
            reply += frame[1:]
    finally:
        await ws.close()
        await session.close()
    assert reply.startswith(b"HTTP/1.1 200 OK")


async def open_ws(
    kube_api: Any, query: str, protocols: tuple[str, ...], pod: str = "web"
) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    token = token_of(kube_api.admin_kubeconfig)
    session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
    url = f"{kube_api.emulator.url}/api/v1/namespaces/{kube_api.namespace}/pods/{pod}/portforward"
    try:
        ws = await session.ws_connect(
            f"{url}?{query}", protocols=protocols, ssl=ssl_context(kube_api)
        )
    except BaseException:
        await session.close()
        raise
    return session, ws


async def test_two_ports_base64_and_a_port_nothing_listens_on(kube_api: Any, kubelet: Any) -> None:
    found = await serving(kube_api, web_pod())
    closed = free_port(found["status"]["podIP"])
    session, ws = await open_ws(kube_api, f"ports=8888,{closed}", ("v4.base64.channel.k8s.io",))
    try:
        assert ws.protocol == "v4.base64.channel.k8s.io"
        frames = [await ws.receive_str(timeout=10) for _ in range(4)]
        assert [(f[0], base64.b64decode(f[1:])) for f in frames] == [
            ("0", b"\xb8\x22"),
            ("1", b"\xb8\x22"),
            ("2", closed.to_bytes(2, "little")),
            ("3", closed.to_bytes(2, "little")),
        ]
        await ws.send_str("0" + base64.b64encode(GET).decode())
        by_channel: dict[str, bytes] = {}
        async for message in ws:
            channel, payload = message.data[0], base64.b64decode(message.data[1:])
            by_channel[channel] = by_channel.get(channel, b"") + payload
    finally:
        await ws.close()
        await session.close()
    assert by_channel["0"].endswith(REPLY + b"/through")
    error = by_channel["3"].decode()
    assert error.startswith(f"error forwarding port {closed} to pod "), error
    assert f"dial tcp4 {found['status']['podIP']}:{closed}: connect: connection refused" in error
    assert "1" not in by_channel
    assert "2" not in by_channel


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", 'query parameter "port" is required'),
        ("ports=", 'query parameter "port" cannot be empty'),
        ("ports=0", 'port "0" must be > 0'),
        ("ports=http", 'unable to parse "http" as a port'),
        ("ports=8888,70000", 'unable to parse "8888,70000" as a port'),
    ],
)
async def test_websocket_ports_are_checked(
    kube_api: Any, kubelet: Any, query: str, message: str
) -> None:
    await serving(kube_api, web_pod())
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await open_ws(kube_api, query, ("v4.channel.k8s.io",))
    assert caught.value.status == 400
    path = f"web/portforward?{query}"
    assert await refusal(kube_api, path, WS_UPGRADE, "v4.channel.k8s.io") == (400, message)


WS_UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket"}


async def refusal(
    kube_api: Any, path: str, headers: dict[str, str], protocol: str | None = None
) -> tuple[int, str]:
    """A request that is refused before any upgrade: its status and message (or text)."""
    token = token_of(kube_api.admin_kubeconfig)
    url = f"{kube_api.emulator.url}/api/v1/namespaces/{kube_api.namespace}/pods/{path}"
    method = "GET" if headers.get("Upgrade") == "websocket" else "POST"
    if protocol:
        headers = {**headers, "Sec-WebSocket-Protocol": protocol}
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session,
        session.request(method, url, headers=headers, ssl=ssl_context(kube_api)) as reply,
    ):
        text = await reply.text()
        if reply.content_type == "application/json":
            text = json.loads(text)["message"]
        return reply.status, text


async def test_requests_that_are_not_port_forwards_are_refused(kube_api: Any, kubelet: Any) -> None:
    await serving(kube_api, web_pod())
    kube_api.emulator.create_object(
        "pods", web_pod("nowhere", nodeSelector={"no": "such-node"}), kube_api.namespace
    )
    spdy_upgrade = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}
    pf = "portforward"
    cases = [
        (f"web/{pf}", {}, 400, "Upgrade request required"),
        (f"missing/{pf}", spdy_upgrade, 404, 'pods "missing" not found'),
        (
            f"web/{pf}?ports=8888",
            {**WS_UPGRADE, "Sec-WebSocket-Protocol": "v5.channel.k8s.io"},
            400,
            "requested protocol(s) are not supported: ['v5.channel.k8s.io']",
        ),
        (f"nowhere/{pf}", spdy_upgrade, 400, "pod nowhere does not have a host assigned"),
        (f"web/{pf}", {"Connection": "Upgrade", "Upgrade": "h2c"}, 400, "missing upgrade headers"),
        (f"web/{pf}", spdy_upgrade, 400, "X-Stream-Protocol-Version is required"),
        (
            f"web/{pf}",
            {**spdy_upgrade, "X-Stream-Protocol-Version": "v4.channel.k8s.io"},
            403,
            "unable to negotiate protocol: client supports [v4.channel.k8s.io], "
            "server accepts [portforward.k8s.io]",
        ),
    ]
    for path, headers, status, text in cases:
        got = await refusal(kube_api, path, headers)
        assert got[0] == status, (path, headers, got)
        assert text in got[1], (path, headers, got)


# -- SPDY/3.1 spoken by hand: the hostile inputs ------------------------------------------


class SpdyClient:
    """A raw SPDY/3.1 client on an upgraded connection to the emulator."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.frames = spdy.FrameWriter()
        self.parser = spdy.FrameReader()
        self.pending: list[spdy.Frame] = []

    @classmethod
    async def connect(cls, kube_api: Any, pod: str = "web") -> SpdyClient:
        emulator = kube_api.emulator
        reader, writer = await asyncio.open_connection(
            emulator.host, emulator.port, ssl=ssl_context(kube_api), server_hostname=emulator.host
        )
        token = token_of(kube_api.admin_kubeconfig)
        writer.write(
            (
                f"POST /api/v1/namespaces/{kube_api.namespace}/pods/{pod}/portforward HTTP/1.1\r\n"
                f"Host: {emulator.host}\r\nAuthorization: Bearer {token}\r\n"
                "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                "X-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def frame(self) -> spdy.Frame | None:
        """The next frame from the server; None when the connection ends."""
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            if not data:
                return None
            self.pending.extend(self.parser.feed(data))
        return self.pending.pop(0)

    def open(self, stream_id: int, kind: str, port: int | str, request: str = "0") -> None:
        headers = {"streamtype": kind, "port": str(port), "requestid": request}
        self.send(self.frames.syn_stream(stream_id, dict(headers)))

    def close(self) -> None:
        self.writer.close()


async def test_spdy_streams_forward_and_bad_streams_are_reset(kube_api: Any, kubelet: Any) -> None:
    await serving(kube_api, web_pod())
    conn = await SpdyClient.connect(kube_api)
    try:
        conn.send(conn.frames.ping(1))
        assert (await conn.frame()) == spdy.Frame(spdy.PING, value=1)
        conn.open(1, "error", 8888)
        conn.send(conn.frames.data(1, b"", fin=True))  # kubectl half-closes the error stream
        assert (await conn.frame()) == spdy.Frame(spdy.SYN_REPLY, stream_id=1)
        conn.open(3, "data", 8888)
        assert (await conn.frame()) == spdy.Frame(spdy.SYN_REPLY, stream_id=3)
        conn.send(conn.frames.data(3, GET))
        got: dict[int, bytes] = {1: b"", 3: b""}
        finished: set[int] = set()
        while finished != {1, 3}:
            frame = await conn.frame()
            assert frame is not None
            assert frame.kind == spdy.DATA, frame
            got[frame.stream_id] += frame.data
            if frame.fin:
                finished.add(frame.stream_id)
        assert got[3].endswith(REPLY + b"/through")
        assert got[1] == b""
        # Hostile streams, each reset: even (a server's) id, an id that goes back,
        # no port, a port out of range, an unknown stream type, no request id, a
        # second data stream for one request, data on a stream never opened.
        conn.open(6, "data", 8888, "1")
        conn.open(5, "data", 8888, "1")
        conn.open(3, "data", 8888, "2")
        conn.send(conn.frames.syn_stream(7, {"streamtype": "data", "requestid": "3"}))
        conn.open(9, "data", 70000, "4")
        conn.open(11, "stdout", 8888, "5")
        conn.send(conn.frames.syn_stream(13, {"streamtype": "data", "port": "8888"}))
        conn.open(15, "data", 8888, "1")
        conn.send(conn.frames.data(101, b"x"))
        expected = [
            spdy.Frame(spdy.RST_STREAM, stream_id=6, status=spdy.PROTOCOL_ERROR),
            spdy.Frame(spdy.SYN_REPLY, stream_id=5),
            spdy.Frame(spdy.RST_STREAM, stream_id=3, status=spdy.PROTOCOL_ERROR),
            spdy.Frame(spdy.RST_STREAM, stream_id=7, status=5),
            spdy.Frame(spdy.RST_STREAM, stream_id=9, status=5),
            spdy.Frame(spdy.RST_STREAM, stream_id=11, status=5),
            spdy.Frame(spdy.RST_STREAM, stream_id=13, status=5),
            spdy.Frame(spdy.RST_STREAM, stream_id=15, status=5),
            spdy.Frame(spdy.RST_STREAM, stream_id=101, status=spdy.INVALID_STREAM),
        ]
        assert [await conn.frame() for _ in expected] == expected
        # A frame of another SPDY version ends the connection with GOAWAY PROTOCOL_ERROR.
        conn.send(b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x03")
        assert (await conn.frame()) == spdy.Frame(spdy.GOAWAY, value=15, status=1)
        assert (await conn.frame()) is None
    finally:
        conn.close()


async def test_spdy_reports_a_port_nothing_listens_on(kube_api: Any, kubelet: Any) -> None:
    found = await serving(kube_api, web_pod())
    closed = free_port(found["status"]["podIP"])
    conn = await SpdyClient.connect(kube_api)
    try:
        conn.open(1, "error", closed)
        conn.open(3, "data", closed)
        frames = [await conn.frame() for _ in range(5)]
    finally:
        conn.close()
    assert [(f.kind, f.stream_id) for f in frames if f] == [
        (spdy.SYN_REPLY, 1),
        (spdy.SYN_REPLY, 3),
        (spdy.DATA, 1),
        (spdy.DATA, 3),
        (spdy.DATA, 1),
    ]
    assert frames[2] is not None
    assert frames[2].data.startswith(f"error forwarding port {closed} to pod ".encode())
    assert all(f is not None and f.fin for f in frames[3:])


# -- the real kubectl -------------------------------------------------------------------


def kubectl_binary(version: str) -> str:
    path = KUBECTL_DIR / f"kubectl.{version}"
    if not os.access(path, os.X_OK):
        pytest.fail(f"kubectl {version} is missing ({path}); set LSST_SPAWNER_KUBECTL_DIR")
    return str(path)


async def port_forward(
    kube_api: Any, version: str, kubeconfig: Path, target: str, remote: str = "8888"
) -> tuple[asyncio.subprocess.Process, int | None, str]:
    """Start ``kubectl port-forward``; its local port once it forwards, else None and stderr."""
    local = free_port()
    process = await asyncio.create_subprocess_exec(
        kubectl_binary(version),
        f"--kubeconfig={kubeconfig}",
        f"--namespace={kube_api.namespace}",
        "port-forward",
        target,
        f"{local}:{remote}",
        "--address=127.0.0.1",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    if line.startswith(b"Forwarding from"):
        return process, local, ""
    err = await asyncio.wait_for(process.stderr.read(), 30)
    await process.wait()
    return process, None, err.decode()


async def stop(process: asyncio.subprocess.Process) -> str:
    if process.returncode is None:
        process.terminate()
    _, err = await asyncio.wait_for(process.communicate(), 30)
    return err.decode()


async def http_get(port: int, path: str = "/through") -> bytes:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}", timeout=aiohttp.ClientTimeout(20)) as reply,
    ):
        assert reply.status == 200
        return await reply.read()


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
async def test_kubectl_port_forward_reaches_the_pods_process(
    kube_api: Any, kubelet: Any, version: str
) -> None:
    await serving(kube_api, web_pod())
    process, local, err = await port_forward(
        kube_api, version, kube_api.admin_kubeconfig, "pod/web", "http"
    )
    assert local is not None, err
    try:
        assert await http_get(local, "/one") == REPLY + b"/one"
        assert await http_get(local, "/two") == REPLY + b"/two"  # one connection each
    finally:
        err = await stop(process)
    assert "error" not in err.lower(), err


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
async def test_kubectl_port_forward_errors_read_as_on_a_cluster(
    kube_api: Any, kubelet: Any, version: str
) -> None:
    found = await serving(kube_api, web_pod())
    _, local, err = await port_forward(kube_api, version, kube_api.admin_kubeconfig, "pod/nope")
    assert local is None
    assert 'Error from server (NotFound): pods "nope" not found' in err
    closed = str(free_port(found["status"]["podIP"]))
    process, local, err = await port_forward(
        kube_api, version, kube_api.admin_kubeconfig, "pod/web", closed
    )
    assert local is not None, err
    with pytest.raises(aiohttp.ClientError):
        await http_get(local)
    await asyncio.wait_for(process.wait(), 30)
    err = await stop(process)
    assert process.returncode == 1
    assert f"an error occurred forwarding {local} -> {closed}: error forwarding port" in err
    assert "connect: connection refused" in err
    assert "error: lost connection to pod" in err


class _Handle:
    """The two things :func:`serving` needs of a ``kube_api``, for an emulator of one's own."""

    def __init__(self, emulator: KubeEmulator) -> None:
        self.emulator, self.namespace = emulator, "default"
        self.admin_kubeconfig: Path | None = None

    async def get(self, resource: str, name: str) -> Any:
        return self.emulator.get_object(resource, name, self.namespace)


@contextmanager
def own_emulator(tmp_path: Path, version: str) -> Iterator[_Handle]:
    """An emulator reporting ``version``, with a process kubelet, as the administrator."""
    emulator = KubeEmulator(tls=True, kubernetes_version=version).start_in_thread()
    node = ProcessKubelet(emulator, workdir=tmp_path / "kubelet")
    emulator.run(node.start())
    handle = _Handle(emulator)
    handle.admin_kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig", "default")
    try:
        yield handle
    finally:
        emulator.run(node.stop())
        emulator.stop_thread()


@pytest.mark.parametrize("server", ["1.30", "1.31"])
async def test_kubectl_tunnels_in_a_websocket_from_1_31_and_falls_back_to_spdy(
    tmp_path: Path, server: str
) -> None:
    """The tunnel is the API server's (PortForwardWebsockets, on from 1.31): a 1.30 server
    hands the request to the kubelet's channel protocol, which wants ``ports``, and kubectl
    1.33 falls back to SPDY."""
    with own_emulator(tmp_path, server) as handle:
        await serving(handle, web_pod())
        tunnel = "SPDY/3.1+portforward.k8s.io"
        if server == "1.30":
            assert await refusal(handle, "web/portforward", WS_UPGRADE, tunnel) == (
                400,
                'query parameter "port" is required',
            )
        else:
            session, ws = await open_ws(handle, "", (tunnel,))
            assert ws.protocol == tunnel
            await ws.close()
            await session.close()
        assert handle.admin_kubeconfig is not None
        process, local, err = await port_forward(handle, NEWEST, handle.admin_kubeconfig, "pod/web")
        assert local is not None, err
        try:
            assert await http_get(local) == REPLY + b"/through"
        finally:
            await stop(process)


# -- RBAC ---------------------------------------------------------------------------------

READ_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}


def forward_rule(*verbs: str) -> dict[str, Any]:
    return {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": list(verbs)}


async def ws_status(kube_api: Any, kubeconfig: Path) -> tuple[int, Any]:
    """The WebSocket GET's answer: 101, or the refusal's status and Status body."""
    token = token_of(kubeconfig)
    url = f"{kube_api.emulator.url}/api/v1/namespaces/{kube_api.namespace}/pods/web/portforward"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        try:
            ws = await session.ws_connect(
                f"{url}?ports=8888", protocols=("v4.channel.k8s.io",), ssl=ssl_context(kube_api)
            )
        except aiohttp.WSServerHandshakeError as error:
            async with session.get(
                f"{url}?ports=8888",
                headers={"Connection": "Upgrade", "Upgrade": "websocket"},
                ssl=ssl_context(kube_api),
            ) as reply:
                return error.status, json.loads(await reply.text())
        await ws.close()
        return 101, None


@pytest.mark.parametrize(
    ("rules", "websocket", "kubectl_ok"),
    [
        # z2jh's hub Role has no pods/portforward at all.
        ([dict(r) for r in Z2JH_HUB_ROLE_RULES], "get", False),
        # create alone: kubectl's WebSocket GET is refused, its SPDY POST fallback works.
        ([READ_PODS, forward_rule("create")], "get", True),
        # get alone: since 1.35 a WebSocket GET needs create too; SPDY needs create.
        ([READ_PODS, forward_rule("get")], "create", False),
        ([READ_PODS, forward_rule("get", "create")], None, True),
    ],
)
async def test_port_forward_is_authorized_as_by_the_api_server(
    kube_api: Any,
    kubelet: Any,
    tmp_path: Path,
    rules: list[dict[str, Any]],
    websocket: str | None,
    kubectl_ok: bool,
) -> None:
    await serving(kube_api, web_pod())
    kubeconfig = write_hub_kubeconfig(
        kube_api.emulator, tmp_path / "hub-kubeconfig", kube_api.namespace, rules
    )
    user = f"system:serviceaccount:{kube_api.namespace}:hub"
    status, body = await ws_status(kube_api, kubeconfig)
    if websocket is None:
        assert status == 101
    elif websocket == "get":
        assert status == 403
        assert body["message"] == (
            f'pods "web" is forbidden: User "{user}" cannot get resource "pods/portforward" '
            f'in API group "" in the namespace "{kube_api.namespace}"'
        )
    else:  # the registry's own create check: errors.NewForbidden with RBAC's empty reason
        assert (status, body["message"]) == (403, 'pods "web" is forbidden: ')
        assert body["details"] == {"name": "web", "kind": "pods"}
    process, local, err = await port_forward(kube_api, NEWEST, kubeconfig, "pod/web")
    if kubectl_ok:
        assert local is not None, err
        try:
            assert await http_get(local) == REPLY + b"/through"
        finally:
            await stop(process)
    else:
        assert local is None
        assert (
            f'error: error upgrading connection: pods "web" is forbidden: User "{user}" cannot '
            f'create resource "pods/portforward" in API group "" in the namespace '
            f'"{kube_api.namespace}"'
        ) in err, err


async def test_before_1_35_a_websocket_get_needs_only_get(tmp_path: Path) -> None:
    with own_emulator(tmp_path, "1.34") as handle:
        await serving(handle, web_pod())
        rules = [READ_PODS, forward_rule("get")]
        kubeconfig = write_hub_kubeconfig(handle.emulator, tmp_path / "hub", "default", rules)
        assert (await ws_status(handle, kubeconfig))[0] == 101


async def test_exec_websocket_needs_create_too(kube_api: Any, kubelet: Any, tmp_path: Path) -> None:
    await serving(kube_api, web_pod())
    rules = [READ_PODS, {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]}]
    kubeconfig = write_hub_kubeconfig(
        kube_api.emulator, tmp_path / "hub-kubeconfig", kube_api.namespace, rules
    )
    async with await ws_client(kubeconfig) as ws_api:
        v1 = client.CoreV1Api(api_client=ws_api)
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await v1.connect_get_namespaced_pod_exec(
                "web", kube_api.namespace, command=cast(Any, ["true"]), stdout=True
            )
    assert caught.value.status == 403


async def test_in_the_oci_mode_too(kube_api: Any, oci_kubelet: Any, images: dict[str, str]) -> None:
    body = oci_pod(
        "web",
        images["shell"],
        f'exec {sys.executable} -c "$SERVER"',
        container={"env": [{"name": "SERVER", "value": SERVER}]},
    )
    body["spec"]["restartPolicy"] = "Always"
    await serving(kube_api, body)
    process, local, err = await port_forward(kube_api, NEWEST, kube_api.admin_kubeconfig, "pod/web")
    assert local is not None, err
    try:
        assert await http_get(local) == REPLY + b"/through"
    finally:
        await stop(process)


# -- the framing alone ------------------------------------------------------------------


def test_frames_round_trip_whatever_the_byte_boundaries() -> None:
    out, back = spdy.FrameWriter(), spdy.FrameReader()
    wire = (
        out.syn_stream(1, {"streamtype": "data", "port": "8888", "requestid": "0"})
        + out.syn_stream(3, {"multi": ["a", "b"]}, fin=True)
        + out.data(1, b"x" * 70000, fin=True)
        + out.rst_stream(3, 5)
        + out.ping(7)
        + out.window_update(1, 1000)
        + out.settings(((0, 7, 65536),))
        + out.goaway(3, 0)
    )
    frames = [f for i in range(0, len(wire), 13) for f in back.feed(wire[i : i + 13])]
    assert [(f.kind, f.stream_id, f.flags) for f in frames] == [
        (spdy.SYN_STREAM, 1, 0),
        (spdy.SYN_STREAM, 3, spdy.FLAG_FIN),
        (spdy.DATA, 1, spdy.FLAG_FIN),
        (spdy.RST_STREAM, 3, 0),
        (spdy.PING, 0, 0),
        (spdy.WINDOW_UPDATE, 1, 0),
        (spdy.SETTINGS, 0, 0),
        (spdy.GOAWAY, 0, 0),
    ]
    assert frames[0].headers == {"streamtype": ["data"], "port": ["8888"], "requestid": ["0"]}
    assert frames[1].headers == {"multi": ["a", "b"]}
    assert frames[2].data == b"x" * 70000
    assert (frames[3].status, frames[4].value, frames[5].value) == (5, 7, 1000)
    assert frames[6].settings == ((0, 7, 65536),)
    assert (frames[7].value, frames[7].status) == (3, 0)


def raw_block(pairs: list[tuple[bytes, bytes]], count: int | None = None) -> bytes:
    body = (len(pairs) if count is None else count).to_bytes(4, "big")
    for name, value in pairs:
        body += len(name).to_bytes(4, "big") + name + len(value).to_bytes(4, "big") + value
    return body


def syn_stream_with(block: bytes, *, compress: bool = True) -> bytes:
    if compress:
        deflate = zlib.compressobj(zdict=spdy.DICTIONARY)
        block = deflate.compress(block) + deflate.flush(zlib.Z_SYNC_FLUSH)
    payload = (1).to_bytes(4, "big") + bytes(6) + block
    return b"\x80\x03\x00\x01" + len(payload).to_bytes(4, "big") + payload


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", "unsupported SPDY version 2"),
        (b"\x80\x03\x00\x05\x00\x00\x00\x00", "unknown control frame type 5"),
        (b"\x80\x03\x00\x06\x00\x00\x00\x08" + bytes(8), "invalid control frame: type 6"),
        (b"\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x00", "invalid PING frame"),
        (b"\x80\x03\x00\x03\x00\x00\x00\x08" + bytes(8), "stream id zero is disallowed"),
        (b"\x80\x03\x00\x03\x00\x00\x00\x08\x00\x00\x00\x01" + bytes(4), "status 0"),
        (b"\x00\x00\x00\x00\x00\x00\x00\x00", "stream id zero is disallowed"),
        (b"\x80\x03\x00\x04\x00\x00\x00\x04\x00\x00\x00\x02", "invalid SETTINGS frame length"),
        (syn_stream_with(raw_block([(b"Port", b"1")])), "header was not lowercased"),
        (
            syn_stream_with(raw_block([(b"port", b"1"), (b"port", b"2")])),
            "multiple headers with same name",
        ),
        (syn_stream_with(raw_block([(b"host", b"x")])), "invalid header 'host'"),
        (syn_stream_with(raw_block([], count=3)), "truncated header block"),
        (syn_stream_with(raw_block([(b"a", b"b")]) + b"junk"), "payload size was incorrect"),
        (syn_stream_with(b"not zlib at all", compress=False), "does not decompress"),
        (
            syn_stream_with(raw_block([(b"a", b"b" * (spdy.MAX_HEADER_BLOCK + 1))])),
            "header block too large",
        ),
    ],
)
def test_the_reader_refuses_what_spdystream_refuses(wire: bytes, message: str) -> None:
    with pytest.raises(spdy.SpdyProtocolError, match=re.escape(message)):
        spdy.FrameReader().feed(wire)


def test_the_dictionary_is_spdy3s() -> None:
    """1423 bytes; Adler-32 0xe3c6a7c2, the DICTID that kubectl 1.27's first header block
    carries (read off the wire on 2026-12-02)."""
    assert (len(spdy.DICTIONARY), zlib.adler32(spdy.DICTIONARY)) == (1423, 0xE3C6A7C2)


async def test_a_client_faster_than_the_pod_is_held_back() -> None:
    inbox = Inbox()
    for _ in range(BACKLOG - 1):
        await inbox.put(b"x")
    blocked = asyncio.ensure_future(inbox.put(b"x"))
    await asyncio.sleep(0)
    assert not blocked.done()  # the 64th chunk waits for the pod to take some
    for _ in range(BACKLOG // 2 + 1):
        assert await inbox.get() == b"x"
    await asyncio.wait_for(blocked, 5)
    while inbox.queue.qsize() < BACKLOG - 1:
        inbox.queue.put_nowait(b"y")
    blocked = asyncio.ensure_future(inbox.put(b"y"))
    await asyncio.sleep(0)
    assert not blocked.done()
    inbox.close()  # the pod's side is gone: nobody waits for it, input is dropped
    await asyncio.wait_for(blocked, 5)
    size = inbox.queue.qsize()
    await asyncio.wait_for(inbox.put(b"z"), 5)
    assert inbox.queue.qsize() == size
