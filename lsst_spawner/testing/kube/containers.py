"""How the kubelet starts one container: a local process, or runc (``oci`` mode).

A :class:`RunningContainer` is one run of one container (a restart makes a new
one): its process, its log file, and for the OCI mode its bundle and the OCI
``process`` that exec reuses, so a command run by ``kubectl exec`` or an exec
probe gets the container's own user, groups, capabilities and environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .oci import Bundle

__all__ = ["RunningContainer", "start_oci", "start_process"]


@dataclass
class RunningContainer:
    name: str
    process: asyncio.subprocess.Process
    log: Path
    started_at: str
    host_env: dict[str, str] = field(default_factory=dict)  # process mode: for exec
    cwd: Path | None = None
    bundle: Bundle | None = None
    oci_process: dict[str, Any] | None = None
    runc: str = ""
    stdin: bool = False
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    exit_code: int | None = None

    async def exec(self, argv: list[str], *, stdin: bool = False) -> asyncio.subprocess.Process:
        """Start ``argv`` inside the container, with pipes for its streams."""
        pipe = asyncio.subprocess.PIPE
        stdin_pipe = pipe if stdin else asyncio.subprocess.DEVNULL
        if self.bundle is None:
            return await asyncio.create_subprocess_exec(
                *argv,
                env=self.host_env,
                cwd=self.cwd,
                stdin=stdin_pipe,
                stdout=pipe,
                stderr=pipe,
                start_new_session=True,
            )
        assert self.oci_process is not None
        spec = {**self.oci_process, "args": argv}
        path = self.bundle.directory / f"exec-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps(spec))
        try:
            return await asyncio.create_subprocess_exec(
                self.runc,
                "exec",
                "--process",
                str(path),
                self.bundle.id,
                stdin=stdin_pipe,
                stdout=pipe,
                stderr=pipe,
                start_new_session=True,
            )
        finally:
            asyncio.get_running_loop().call_later(5, lambda: path.unlink(missing_ok=True))

    async def exec_code(self, argv: list[str], limit: float) -> int:
        """Run ``argv`` in the container (an exec probe) for at most ``limit`` s; its exit code."""
        process = await self.exec(argv)
        try:
            await asyncio.wait_for(process.communicate(), limit)
        finally:  # a timeout, or the probe cancelled because the container exited
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.shield(process.wait())
        return process.returncode if process.returncode is not None else -1

    async def signal(self, sig: signal.Signals) -> None:
        if self.process.returncode is not None:
            return
        if self.bundle is not None:
            runc = await asyncio.create_subprocess_exec(
                self.runc,
                "kill",
                self.bundle.id,
                sig.name.removeprefix("SIG"),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await runc.wait()
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    async def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; then clean up the bundle."""
        await self.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        try:
            await asyncio.wait_for(self.process.wait(), max(deadline - time.monotonic(), 0.05))
        except TimeoutError:
            await self.signal(signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # runc itself, when the kill failed
            await self.process.wait()
        await self.cleanup()

    async def cleanup(self) -> None:
        if self.bundle is not None:
            await self.bundle.cleanup(self.runc)


def host_environment(
    env: dict[str, str], scratch: Path, pod_name: str, extra: dict[str, str], inherit: bool
) -> dict[str, str]:
    full = dict(os.environ) if inherit else {}
    full.update(
        PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
        HOME=str(scratch),
        LANG="C.UTF-8",
        HOSTNAME=pod_name,
    )
    full.update(extra)
    full.update(env)
    return full


async def start_process(
    name: str, argv: list[str], env: dict[str, str], scratch: Path, log: Path, started: str
) -> RunningContainer:
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            cwd=scratch,
            stdout=out,
            stderr=out,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    return RunningContainer(name, process, log, started, host_env=env, cwd=scratch)


async def start_oci(
    name: str,
    runc: str,
    bundle: Bundle,
    spec: dict[str, Any],
    log: Path,
    started: str,
    stdin: bool = False,
) -> RunningContainer:
    bundle.write(spec)
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            runc,
            "run",
            "--no-pivot",
            "-b",
            str(bundle.directory),
            bundle.id,
            stdout=out,
            stderr=out,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    return RunningContainer(
        name,
        process,
        log,
        started,
        bundle=bundle,
        oci_process=spec["process"],
        runc=runc,
        stdin=stdin,
    )
