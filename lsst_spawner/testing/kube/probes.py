"""Readiness and liveness probes (HTTP, TCP, exec) on their schedule, as the kubelet runs them.

A :class:`ProbeLoop` waits ``initialDelaySeconds``, then checks every
``periodSeconds`` with ``timeoutSeconds``, and reports a change of result after
``successThreshold`` successes or ``failureThreshold`` failures in a row. The
kubelet cancels the loop when the container exits. Delays and periods are
shortened to at most :attr:`ProbeLoop.max_period` seconds so tests do not wait
out a real schedule; the thresholds are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

__all__ = ["ProbeLoop", "probe_port"]

#: Runs a command in the container; returns its exit code (or raises TimeoutError).
ExecFn = Callable[[list[str], float], Awaitable[int]]


def probe_port(container: Mapping[str, Any], port: Any) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ValueError(f"port {port!r} is not a port of container {container.get('name')}")


class ProbeLoop:
    """One probe of one container; ``on_change(ok, message)`` gets each settled result."""

    max_period = 0.5

    def __init__(
        self,
        probe: Mapping[str, Any],
        container: Mapping[str, Any],
        address: str,
        exec_fn: ExecFn,
        on_change: Callable[[bool, str], Awaitable[None]],
    ) -> None:
        self.probe = probe
        self.container = container
        self.address = address
        self.exec_fn = exec_fn
        self.on_change = on_change
        self.checks = 0

    async def check(self) -> tuple[bool, str]:
        probe = self.probe
        timeout = float(probe.get("timeoutSeconds", 1))
        try:
            if "exec" in probe:
                code = await self.exec_fn(list(probe["exec"].get("command") or []), timeout)
                return code == 0, f"command exited with {code}"
            if "httpGet" in probe:
                return await asyncio.wait_for(self._http(probe["httpGet"]), timeout)
            if "tcpSocket" in probe:
                port = probe_port(self.container, probe["tcpSocket"].get("port"))
                host = probe["tcpSocket"].get("host") or self.address
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
                writer.close()
                return True, ""
        except TimeoutError:
            return False, f"timeout after {timeout:g}s"
        except (OSError, ValueError) as exc:
            return False, str(exc)
        return False, "probe has no handler (exec, httpGet or tcpSocket)"

    async def _http(self, get: Mapping[str, Any]) -> tuple[bool, str]:
        port = probe_port(self.container, get.get("port"))
        host = get.get("host") or self.address
        path = get.get("path") or "/"
        if str(get.get("scheme", "HTTP")).upper() != "HTTP":
            return False, "HTTPS probes are not supported by this kubelet"
        headers = "".join(f"{h['name']}: {h['value']}\r\n" for h in get.get("httpHeaders") or [])
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(
                f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n"
                f"User-Agent: kube-probe/1.30\r\n{headers}\r\n".encode()
            )
            line = await reader.readline()
        finally:
            writer.close()
        parts = line.split()
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if 200 <= status < 400:
            return True, ""
        return False, f"HTTP probe failed with statuscode: {status}"

    async def run(self) -> None:
        probe = self.probe
        period = min(float(probe.get("periodSeconds", 10)), self.max_period)
        successes_needed = int(probe.get("successThreshold", 1))
        failures_allowed = int(probe.get("failureThreshold", 3))
        await asyncio.sleep(min(float(probe.get("initialDelaySeconds", 0)), self.max_period))
        state: bool | None = None
        streak_ok = streak_bad = 0
        while True:
            ok, message = await self.check()
            self.checks += 1
            if ok:
                streak_ok, streak_bad = streak_ok + 1, 0
                if state is not True and streak_ok >= successes_needed:
                    state = True
                    await self.on_change(True, "")
            else:
                streak_ok, streak_bad = 0, streak_bad + 1
                if state is not False and streak_bad >= failures_allowed:
                    state = False
                    await self.on_change(False, message)
            await asyncio.sleep(period)

    def start(self) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self.run())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task


async def stop_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    tasks.clear()
