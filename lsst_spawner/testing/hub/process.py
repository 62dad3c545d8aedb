"""A real JupyterHub process on loopback, for integration tests, the demo and benchmarks.

:class:`HubProcess` writes a ``jupyterhub_config.py`` made of a small base
(loopback addresses, its own database and cookie secret, an admin service
token) followed by the caller's configuration text, starts ``jupyterhub`` with
it and waits until the REST API answers. ``configurable-http-proxy`` must be on
``PATH`` (``npm install -g configurable-http-proxy``): when it is missing,
:meth:`HubProcess.start` raises :class:`HubError` saying so, and tests fail.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from ..loopback import LoopbackServer
from ..ports import free_port

__all__ = ["HubError", "HubProcess", "free_port", "spawn_body"]

#: Scopes of the service token :class:`HubProcess` uses for :meth:`HubProcess.request`.
ADMIN_SCOPES = [
    "admin:users",
    "admin:servers",
    "admin:auth_state",
    "tokens",
    "read:hub",
    "read:metrics",
]


def spawn_body(version: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The body of ``POST /users/{name}/server`` for ``options``, for JupyterHub ``version``.

    JupyterHub 6 takes ``{"user_options": {...}}`` (beside ``display_name``);
    JupyterHub 5 takes the options themselves as the body.
    """
    major = int(version.split(".")[0])
    return {"user_options": dict(options)} if major >= 6 else dict(options)


class HubError(RuntimeError):
    """The hub could not be started, or stopped answering."""


class HubProcess(LoopbackServer):
    """One ``jupyterhub`` process; ``with HubProcess(...) as hub:`` starts and stops it."""

    def __init__(
        self,
        workdir: Path,
        config: str,
        *,
        env: dict[str, str] | None = None,
        log_level: str = "INFO",
        port: int | None = None,
        python: str = sys.executable,
        python_path: Sequence[str | Path] = (),
    ) -> None:
        super().__init__("127.0.0.1", port or 0)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.reserve_port()
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self._start_timeout = 60.0
        self._stop_kill, self._stop_timeout = False, 30.0
        self.token = secrets.token_hex(24)
        self.crypt_key = secrets.token_hex(32)
        self.log_path = self.workdir / "hub.log"
        self.config_path = self.workdir / "jupyterhub_config.py"
        self.db_path = self.workdir / "jupyterhub.sqlite"
        self._python = python
        self._extra_env = dict(env or {})
        self._python_path = [str(p) for p in python_path]
        self._process: subprocess.Popen[bytes] | None = None
        self.config_path.write_text(self._base_config(log_level) + "\n" + config)

    def _base_config(self, log_level: str) -> str:
        roles = [{"name": "tester", "scopes": ADMIN_SCOPES, "services": ["tester"]}]
        return f"""
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = {self.url!r}
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{self.hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = {str(self.workdir / "proxy.pid")!r}
c.JupyterHub.pid_file = {str(self.workdir / "hub.pid")!r}
c.JupyterHub.db_url = "sqlite:///{self.db_path}"
c.JupyterHub.cookie_secret_file = {str(self.workdir / "cookie_secret")!r}
c.JupyterHub.log_level = {log_level!r}
c.Authenticator.enable_auth_state = True
c.JupyterHub.services = [{{"name": "tester", "api_token": {self.token!r}}}]
c.JupyterHub.load_roles = {json.dumps(roles)}
"""

    @property
    def env(self) -> dict[str, str]:
        """The hub's environment: this one, plus the crypt key and the caller's variables.

        ``PYTHONPATH`` starts with the directory holding the caller's own
        ``lsst_spawner``, so the hub runs the same code as the test that started it,
        followed by the ``python_path`` directories (modules the configuration names).
        """
        import lsst_spawner

        bin_dir = str(Path(self._python).parent)
        package_root = str(Path(lsst_spawner.__file__).resolve().parents[1])
        python_path = os.pathsep.join(
            p for p in (package_root, *self._python_path, os.environ.get("PYTHONPATH")) if p
        )
        return {
            **os.environ,
            "PYTHONPATH": python_path,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "JUPYTERHUB_CRYPT_KEY": self.crypt_key,
            "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(16),
            **self._extra_env,
        }

    def start(self, timeout: float = 60) -> Self:
        """Start the hub and wait until its REST API answers."""
        self._start_timeout = timeout
        return super().start()

    def _serve(self) -> None:
        timeout = self._start_timeout
        if shutil.which("configurable-http-proxy", path=self.env["PATH"]) is None:
            raise HubError(
                "configurable-http-proxy is not installed: npm install -g configurable-http-proxy"
            )
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [self._python, "-m", "jupyterhub", "-f", str(self.config_path)],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise HubError(
                    f"jupyterhub exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            try:
                status, _ = self.request("GET", "/", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self._close()
                raise HubError(f"jupyterhub did not answer within {timeout:g}s:\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self, *, kill: bool = False, timeout: float = 30) -> None:
        """Stop the hub (SIGTERM, or SIGKILL with ``kill``) and its proxy."""
        self._stop_kill, self._stop_timeout = kill, timeout
        super().stop()

    def _close(self) -> None:
        kill, timeout = self._stop_kill, self._stop_timeout
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    @property
    def running(self) -> bool:
        """Whether the ``jupyterhub`` process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def log_tail(self, characters: int = 4000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-characters:]

    def spawn_body(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The body of ``POST /users/{name}/server`` for ``options``, as this hub reads it."""
        status, info = self.request("GET", "/")
        if status != 200:
            raise HubError(f"GET /hub/api answered {status}: {info}")
        return spawn_body(str(info["version"]), options)

    def request(
        self, method: str, path: str, body: Any = None, *, timeout: float = 30
    ) -> tuple[int, Any]:
        """Call the REST API (``/hub/api`` + ``path``) with the admin service token.

        ``body`` is sent as JSON, or as it is when it is ``bytes`` (a malformed body).
        """
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback URL built here
            f"{self.url}/hub/api{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                text = response.read().decode()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, text
