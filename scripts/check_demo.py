"""Run the README's demo command from a fresh clone and use it as a new user would.

    python scripts/check_demo.py [--repo DIR] [--port PORT] [--timeout SECONDS]

What ``.ci/run`` calls after the test suite. Every step must pass, or it exits 1 saying which:

1. ``git clone`` the repository's HEAD into a temporary directory (so only committed files
   count, as on a new machine) and run ``bash scripts/demo.sh`` there; the clone gets its own
   ``.venv``, so a missing install step in demo.sh fails here.
2. Wait for the hub, then log a demo user in through the fake GitHub with a real HTTP client
   (cookies, redirects, the OAuth state check), start a lab through the hub's REST API,
   wait until it is ready, reach the lab's server through the proxy, and stop it.
3. Check that no lab object is left in the emulator, then stop the demo with SIGINT (what
   Ctrl-C sends to the terminal's process group) and check that it exits cleanly and that no
   process it started is left.

Uses only the standard library and PyYAML (for the demo's kubeconfig).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

DEMO_USER = "vera"
LAB_NAMESPACE = "labs"


class DemoCheckError(Exception):
    """A step of the check failed; the message says which and why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Browser:
    """A cookie-keeping HTTP client that follows redirects, like a browser without JavaScript."""

    def __init__(self) -> None:
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def open(
        self, url: str, *, method: str = "GET", body: Any = None, timeout: float = 30
    ) -> tuple[int, str, str]:
        """Return (status, final URL, text); HTTP errors are returned, not raised."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http only
        xsrf = self.cookie("_xsrf")
        if method != "GET" and xsrf:
            request.add_header("X-XSRFToken", xsrf)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self.opener.open(request, timeout=timeout) as reply:
                return reply.status, reply.geturl(), reply.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, error.geturl(), error.read().decode("utf-8", "replace")

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)


def wait_for(what: str, check: Any, timeout: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, urllib.error.URLError) as error:
            result, last = None, error
        if result:
            return result
        time.sleep(interval)
    raise DemoCheckError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last})")


class DemoRun:
    """The demo started from a fresh clone, with its output collected."""

    def __init__(self, clone: Path, port: int, workdir: Path) -> None:
        self.clone = clone
        self.port = port
        self.workdir = workdir
        self.output: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    @property
    def hub(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
        )
        self.process = subprocess.Popen(
            [
                "bash",
                "scripts/demo.sh",
                "--port",
                str(self.port),
                "--workdir",
                str(self.workdir),
                "--step-delay",
                "0.05",
            ],
            cwd=self.clone,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))

    def running_banner(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise DemoCheckError(f"the demo exited with {self.process.returncode} before it ran")
        return any("demo is running" in line for line in self.output)

    def interrupt(self, timeout: float = 90) -> int:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            message = f"the demo did not stop within {timeout:.0f} s of SIGINT"
            raise DemoCheckError(message) from None

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output[-lines:])


def log_in(browser: Browser, hub: str, user: str) -> None:
    """The OAuth login: hub → fake GitHub's chooser → pick ``user`` → hub callback."""
    status, url, page = browser.open(f"{hub}/hub/oauth_login")
    if status != 200 or "/login/oauth/authorize" not in url:
        raise DemoCheckError(f"login did not reach the fake GitHub's chooser ({status} at {url})")
    if f"login-{user}" not in page:
        raise DemoCheckError(f"the fake GitHub's chooser does not offer {user!r}")
    status, url, _ = browser.open(f"{url}&login={user}")
    if status != 200 or not url.startswith(f"{hub}/"):
        raise DemoCheckError(f"the OAuth callback did not log {user} in ({status} at {url})")
    status, _, body = browser.open(f"{hub}/hub/api/user")
    if status != 200 or json.loads(body).get("name") != user:
        raise DemoCheckError(f"after login the hub does not know {user} ({status}: {body[:200]})")
    # A hub page sets the _xsrf cookie that cookie-authenticated API writes must echo.
    browser.open(f"{hub}/hub/home")
    if not browser.cookie("_xsrf"):
        raise DemoCheckError("the hub set no _xsrf cookie on its home page")


def server_state(browser: Browser, hub: str, user: str) -> dict[str, Any] | None:
    status, _, body = browser.open(f"{hub}/hub/api/users/{user}")
    if status != 200:
        raise DemoCheckError(f"GET /hub/api/users/{user} answered {status}: {body[:200]}")
    servers: dict[str, Any] = json.loads(body).get("servers") or {}
    return servers.get("")


def start_and_stop_lab(browser: Browser, hub: str, user: str) -> None:
    status, _, body = browser.open(f"{hub}/hub/api/users/{user}/server", method="POST", body={})
    if status not in (201, 202):
        raise DemoCheckError(f"starting the lab was answered {status}: {body[:300]}")

    def ready() -> bool:
        server = server_state(browser, hub, user)
        return bool(server and server.get("ready"))

    wait_for("the lab to be ready", ready, timeout=120)
    status, _, body = browser.open(f"{hub}/user/{user}/api")
    if status != 200 or "version" not in body:
        raise DemoCheckError(f"the lab's server did not answer through the proxy ({status})")
    status, _, body = browser.open(f"{hub}/hub/api/users/{user}/server", method="DELETE")
    if status not in (202, 204):
        raise DemoCheckError(f"stopping the lab was answered {status}: {body[:300]}")
    wait_for("the lab to stop", lambda: server_state(browser, hub, user) is None, timeout=60)


def lab_objects_left(kubeconfig: Path, user: str) -> list[str]:
    """The demo user's pods, secrets and configmaps still in the emulator."""
    config = yaml.safe_load(kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    token = config["users"][0]["user"].get("token")
    left = []
    for resource in ("pods", "secrets", "configmaps"):
        url = f"{server}/api/v1/namespaces/{LAB_NAMESPACE}/{resource}"
        request = urllib.request.Request(url)  # noqa: S310 - the emulator's http URL
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
                items = json.load(reply)["items"]
        except urllib.error.HTTPError as error:
            if resource == "configmaps" and error.code == 403:
                continue  # the hub's Role cannot create (or list) them: none can be the lab's
            message = f"listing {resource} in the emulator answered {error.code}"
            raise DemoCheckError(message) from None
        left += [
            f"{resource}/{o['metadata']['name']}" for o in items if user in o["metadata"]["name"]
        ]
    return left


def processes_under(*roots: Path) -> list[str]:
    """Processes (other than this one) whose working directory or command line is under roots."""
    found = []
    prefixes = tuple(str(r) for r in roots)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(prefixes) or any(p in cmdline for p in prefixes):
            found.append(f"{entry.name}: {cmdline.strip()[:160]} (cwd {cwd})")
    return found


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def run(repo: Path, port: int, timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="lsst-demo-check-") as tmp:
        root = Path(tmp)
        clone, workdir = root / "clone", root / "state"
        print(f"==> git clone {repo} (HEAD) into {clone}", flush=True)
        subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
        demo = DemoRun(clone, port, workdir)
        print("==> bash scripts/demo.sh (installs into the clone's own .venv)", flush=True)
        demo.start()
        try:
            wait_for("the demo's banner", demo.running_banner, timeout=timeout, interval=1)
            print("==> log in through the fake GitHub, start a lab, stop it", flush=True)
            browser = Browser()
            log_in(browser, demo.hub, DEMO_USER)
            start_and_stop_lab(browser, demo.hub, DEMO_USER)
            left = lab_objects_left(workdir / "kubeconfig", DEMO_USER)
            if left:
                raise DemoCheckError(f"lab objects left after the stop: {', '.join(left)}")
        except BaseException:
            print(f"---- the demo's output (last lines) ----\n{demo.tail()}", file=sys.stderr)
            if demo.process is not None and demo.process.poll() is None:
                demo.interrupt()
            raise
        print("==> SIGINT the demo", flush=True)
        code = demo.interrupt()
        if code != 0:
            raise DemoCheckError(f"the demo exited with {code} after SIGINT:\n{demo.tail()}")
        if not any("Demo stopped." in line for line in demo.output):
            raise DemoCheckError(f"the demo did not say it stopped:\n{demo.tail()}")
        time.sleep(1)  # children reaped by their parents' exit
        stray = processes_under(clone, workdir)
        if stray:
            raise DemoCheckError("processes left after the demo stopped:\n" + "\n".join(stray))
        if not port_is_free(port):
            raise DemoCheckError(f"something still listens on the hub's port {port}")
    print("OK: the demo installed, ran a lab for a logged-in user and stopped cleanly", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--port", type=int, default=0, help="hub port (default: a free one)")
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds for install and start (600)"
    )
    args = parser.parse_args(argv)
    try:
        run(Path(args.repo), args.port or free_port(), args.timeout)
    except DemoCheckError as error:
        print(f"check_demo: FAILED: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
