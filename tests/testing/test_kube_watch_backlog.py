"""A watch that ends with events still queued must not tell the client it saw them.

At N=3,000 the operator's LabServer watch reached its ``timeoutSeconds`` while the
emulator's writer was behind (the hub had just deleted 1,600 LabServers). The watch's
final BOOKMARK carried the store's newest resourceVersion, ahead of the events still
queued for that watch; kopf resumed from it and never saw those deletions, and 1,601
LabServers stayed held by its finalizer. An API server's bookmark is never ahead of what
the watch delivered: the client resumes from what it was sent, and the rest is replayed.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from lsst_spawner.testing.kube import KubeEmulator
from lsst_spawner.testing.kube.authn import ADMIN_TOKEN

from .widgets_crd import call, ok

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
#: Enough data that the emulator's writes wait for a client that does not read.
COUNT, SIZE = 120, 60_000


class _SlowReader(http.client.HTTPConnection):
    """A connection with a tiny receive buffer, so the server's writes block on it."""

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(30)
        self.sock.connect((self.host, self.port))


def _watch(emulator: KubeEmulator, query: str, *, slow: bool) -> http.client.HTTPResponse:
    url = urlsplit(emulator.url)
    connection = (_SlowReader if slow else http.client.HTTPConnection)(
        url.hostname or "127.0.0.1", url.port, timeout=30
    )
    connection.request(
        "GET", f"{CONFIGMAPS}?{query}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    return connection.getresponse()


def _events(response: http.client.HTTPResponse) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response if line.strip()]


def test_a_watch_ending_behind_its_events_resumes_without_losing_any(
    emulator: KubeEmulator,
) -> None:
    rv = ok(call(emulator, "GET", CONFIGMAPS))["metadata"]["resourceVersion"]
    started = time.monotonic()
    behind = _watch(
        emulator,
        f"watch=1&allowWatchBookmarks=true&timeoutSeconds=2&resourceVersion={rv}",
        slow=True,
    )
    names = [f"cm{i:03d}" for i in range(COUNT)]
    for name in names:
        body = {"metadata": {"name": name}, "data": {"blob": "x" * SIZE}}
        ok(call(emulator, "POST", CONFIGMAPS, body), 201)
    time.sleep(max(0.0, started + 3 - time.monotonic()))  # its timeout passes, unread
    first = _events(behind)
    seen = [e["object"]["metadata"]["name"] for e in first if e["type"] == "ADDED"]
    assert len(seen) < COUNT, "the writer never fell behind: the test proves nothing"
    # The client resumes from the last resourceVersion it was sent, bookmarks included.
    last = first[-1]["object"]["metadata"]["resourceVersion"]
    rest = _events(_watch(emulator, f"watch=1&timeoutSeconds=1&resourceVersion={last}", slow=False))
    seen += [e["object"]["metadata"]["name"] for e in rest if e["type"] == "ADDED"]
    assert sorted(seen) == names, f"{COUNT - len(set(seen))} creations never reached the client"


def test_a_bookmark_due_behind_queued_events_does_not_stall_them(
    emulator: KubeEmulator,
) -> None:
    """A bookmark falls due while the writer waits on a slow reader: the queued changes go
    first and the bookmark after. A first fix skipped the bookmark but then asked the queue
    with no time left, which fails at once, and spun: no event left until the watch ended
    (and the emulator burned a core; at N=1,000 its CPU per spawn rose ninefold)."""
    emulator.bookmark_interval = 0.2
    rv = ok(call(emulator, "GET", CONFIGMAPS))["metadata"]["resourceVersion"]
    behind = _watch(
        emulator,
        f"watch=1&allowWatchBookmarks=true&timeoutSeconds=8&resourceVersion={rv}",
        slow=True,
    )
    started = time.monotonic()
    names = [f"cm{i:03d}" for i in range(COUNT)]
    for name in names:
        body = {"metadata": {"name": name}, "data": {"blob": "x" * SIZE}}
        ok(call(emulator, "POST", CONFIGMAPS, body), 201)
    time.sleep(max(0.0, started + 1.5 - time.monotonic()))  # bookmarks fall due, unread
    seen: list[str] = []
    bookmarks = 0
    for line in behind:
        event = json.loads(line)
        if event["type"] == "BOOKMARK":
            bookmarks += 1
        elif event["type"] == "ADDED":
            seen.append(event["object"]["metadata"]["name"])
        if len(seen) == COUNT:
            break
    assert time.monotonic() - started < 8, "the events came only as the watch ended"
    assert seen == names
    behind.close()
