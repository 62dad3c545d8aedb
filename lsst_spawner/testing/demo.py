"""The one-command demo: a real JupyterHub with LSSTSpawner on one machine, no cluster.

``python -m lsst_spawner.testing.demo`` starts, all on loopback:

- the Kubernetes API emulator (:class:`~lsst_spawner.testing.kube.KubeEmulator`, in a thread)
  and a process kubelet that runs each lab pod's ``jupyterhub-singleuser`` as a local process;
- a fake GitHub (:class:`DemoGitHub`) whose authorize page lets you pick one of the demo users;
- a real ``jupyterhub`` process on http://127.0.0.1:8000 with ``LSSTGitHubOAuthenticator``
  pointed at the fake GitHub, and ``LSSTSpawner`` with a static menu of Rubin-style image tags.

It prints where to go and who can log in, and stops everything on Ctrl-C or SIGTERM. All
state lives in a temporary directory, removed at exit unless ``--keep`` is given.
:class:`Demo` is also what the browser end-to-end tests start.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from tornado import web
from tornado.escape import xhtml_escape

from ..operator.manifests import HUB_OPERATOR_ROLE_RULES
from ..rbac import Z2JH_HUB_ROLE_RULES as Z2JH
from .hub.process import HubError, HubProcess
from .kube import KubeEmulator
from .kube.hub_role import write_hub_kubeconfig
from .kube.images import publish_image
from .kube.kopf_process import (
    OPERATOR_COMMAND,
    TEMPLATES,
    KopfProcess,
    install_operator_mode,
    lab_template_from_config,
)
from .kube.kubelet import FakeNode, ProcessKubelet
from .oauth.github import FakeGitHub, GitHubEmail, GitHubOrg, GitHubTeam, GitHubUser
from .oauth.github import _Handler as _GitHubHandler
from .ports import free_port
from .registry.local import LocalRegistry

__all__ = [
    "DEMO_DIGEST",
    "DEMO_IMAGE_BASE",
    "DEMO_TAGS",
    "Demo",
    "DemoGitHub",
    "demo_users",
    "main",
]

#: Where the demo's (never pulled) images would come from.
DEMO_IMAGE_BASE = "registry.example.org/sciplat/sciplat-lab"

#: The static menu: recommended (an alias of the newest weekly, same digest), weeklies,
#: dailies, releases, a release candidate and an experimental build.
DEMO_TAGS = [
    "recommended",
    "w_2026_46",
    "w_2026_45",
    "w_2026_44",
    "w_2026_43",
    "d_2026_11_20",
    "d_2026_11_19",
    "d_2026_11_18",
    "r28_0_1",
    "r27_0_0",
    "r29_0_0_rc1",
    "exp_w_2026_46_newpipe",
]
DEMO_DIGEST = "sha256:" + "3f9a1c" * 10 + "b2e4"
DEMO_DIGESTS = {"recommended": DEMO_DIGEST, "w_2026_46": DEMO_DIGEST}

#: Lab sizes offered on the form (container limits; nothing is enforced by the process kubelet).
DEMO_SIZES = [
    {"name": "small", "cpu": 1, "memory": "4Gi"},
    {"name": "medium", "cpu": 2, "memory": "8Gi"},
    {"name": "large", "cpu": 4, "memory": "16Gi"},
]


def demo_users() -> list[GitHubUser]:
    """The demo's GitHub accounts, in different organizations and teams."""
    sqre = GitHubOrg("lsst-sqre", 31001)
    dm = GitHubOrg("lsst-dm", 31002)
    community = GitHubOrg("rubin-community", 31003)
    return [
        GitHubUser(
            "vera",
            52001,
            name="Vera Rubin",
            emails=[GitHubEmail("vera@example.org", primary=True)],
            orgs=[sqre, dm],
            teams=[GitHubTeam(sqre, "square", 41001, "SQuaRE")],
        ),
        GitHubUser(
            "annie",
            52002,
            name="Annie Jump Cannon",
            emails=[GitHubEmail("annie@example.org", primary=True)],
            orgs=[dm],
            teams=[GitHubTeam(dm, "pipelines", 41002, "Pipelines")],
        ),
        GitHubUser(
            "henrietta",
            52003,
            name="Henrietta Leavitt",
            emails=[GitHubEmail("henrietta@example.org", primary=True)],
            orgs=[community],
        ),
    ]


_CHOOSER_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Fake GitHub: sign in</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 36em; margin: 3em auto; color: #24292f; }}
 h1 {{ font-size: 1.4em; }} .note {{ color: #57606a; }}
 a.user {{ display: block; padding: .8em 1em; margin: .6em 0; border: 1px solid #d0d7de;
          border-radius: 6px; text-decoration: none; color: inherit; }}
 a.user:hover {{ background: #f6f8fa; }} .login {{ font-weight: bold; }}
</style></head>
<body><h1>Fake GitHub: sign in to authorize the demo hub</h1>
<p class="note">This page stands in for github.com. Pick the account to log in as.</p>
{users}
</body></html>
"""


class _ChooserAuthorizeHandler(_GitHubHandler):
    """``/login/oauth/authorize``: a page of demo users; choosing one approves as them."""

    def get(self) -> None:
        fake = self.fake
        if self.get_argument("client_id", "") != fake.client_id:
            self.send_json({"error": "unknown client_id"}, 404)
            return
        login = self.get_argument("login", None)
        if login is None:
            self.finish(self._chooser())
            return
        if login.lower() not in fake.users:
            self.send_json({"error": f"no such demo user: {login}"}, 404)
            return
        self.approve_as(login)

    def _chooser(self) -> str:
        arguments = {k: self.get_argument(k) for k in self.request.arguments if k != "login"}
        entries = []
        for user in self.fake.users.values():
            href = f"{self.request.path}?{urlencode({**arguments, 'login': user.login})}"
            orgs = ", ".join(org.login for org in user.orgs) or "no organization"
            login = xhtml_escape(user.login)
            entries.append(
                f'<a class="user" id="login-{login}" href="{xhtml_escape(href)}">'
                f'<span class="login">{login}</span> '
                f"({xhtml_escape(user.name or user.login)}) &mdash; {xhtml_escape(orgs)}</a>"
            )
        return _CHOOSER_PAGE.format(users="\n".join(entries))


class DemoGitHub(FakeGitHub):
    """The fake GitHub, with an authorize page that asks which demo user logs in."""

    def make_app(self) -> web.Application:
        app = super().make_app()
        # Ahead of the auto-approving handler, which matches the same path.
        rule = app.wildcard_router.process_rule(
            web.url(r"/login/oauth/authorize", _ChooserAuthorizeHandler)
        )
        app.wildcard_router.rules.insert(0, rule)
        return app


class Demo:
    """Emulator, process kubelet, fake GitHub and a real JupyterHub; ``with Demo() as demo``."""

    namespace = "labs"

    def __init__(
        self,
        *,
        port: int = 8000,
        workdir: str | os.PathLike[str] | None = None,
        step_delay: float = 0.4,
        log_level: str = "INFO",
        users: list[GitHubUser] | None = None,
        extra_config: str = "",
        kubelet_mode: Literal["process", "oci"] = "process",
        nodes: Iterable[str | FakeNode] = ("demo-node-1", "demo-node-2"),
        lab_backend: Literal["hub", "operator"] = "hub",
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="lsst-spawner-demo-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.step_delay = step_delay
        self.log_level = log_level
        self.extra_config = extra_config
        #: The kubelet's nodes (a :class:`FakeNode` carries labels node selectors match).
        self.nodes = tuple(nodes)
        self.github = DemoGitHub(users if users is not None else demo_users())
        self.emulator: KubeEmulator | None = None
        self.kubelet: ProcessKubelet | None = None
        self.hub: HubProcess | None = None
        #: ``oci``: labs run in runc as their user, from images in a real local registry.
        self.kubelet_mode = kubelet_mode
        self.registry: LocalRegistry | None = None
        self.image_base = DEMO_IMAGE_BASE
        self.image_digests = dict(DEMO_DIGESTS)
        #: ``operator``: the hub declares LabServers under operator mode's hub Role, and
        #: ``lsst-spawner operator`` (a process, its log in the workdir) builds the labs.
        self.lab_backend = lab_backend
        self.operator: KopfProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hub_config(self, kubeconfig: Path) -> str:
        """The demo's ``jupyterhub_config.py`` body (HubProcess adds the loopback basics)."""
        github = self.github
        admin = next(iter(github.users.values())).login if github.users else ""
        labs = self.workdir / "labs"
        return f"""
c.JupyterHub.authenticator_class = "lsst_spawner.auth.github.LSSTGitHubOAuthenticator"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{{admin!r}}}
c.LSSTGitHubOAuthenticator.github_url = {github.url!r}
c.LSSTGitHubOAuthenticator.client_id = {github.client_id!r}
c.LSSTGitHubOAuthenticator.client_secret = {github.client_secret!r}
c.LSSTGitHubOAuthenticator.oauth_callback_url = "{self.url}/hub/oauth_callback"
c.LSSTGitHubOAuthenticator.teams_as_groups = True
c.LSSTGitHubOAuthenticator.login_service = "GitHub (fake)"

c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.namespace = {self.namespace!r}
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = {self.image_base!r}
c.LSSTSpawner.static_image_tags = {DEMO_TAGS!r}
c.LSSTSpawner.static_image_digests = {self.image_digests!r}
c.LSSTSpawner.image_recommended_tag = "recommended"
c.LSSTSpawner.lab_sizes = {DEMO_SIZES!r}
c.LSSTSpawner.lab_default_size = "medium"
# The pod's command as given: the demo's images have no entrypoint (PATH finds it).
c.LSSTSpawner.cmd = ["jupyterhub-singleuser"]
c.LSSTSpawner.args = {self._singleuser_args()!r}
c.LSSTSpawner.lab_home_directory = "{labs}/home/{{username}}"
c.LSSTSpawner.lab_runtime_directory = "{labs}/run"
c.LSSTSpawner.start_timeout = 90
c.LSSTSpawner.http_timeout = 60
c.LSSTSpawner.lab_backend = {self.lab_backend!r}
{self.extra_config}
"""

    @staticmethod
    def _singleuser_args() -> list[str]:
        args = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        return args

    def start(self) -> Demo:
        """Start every component; on failure stop what started and re-raise."""
        try:
            self.github.start()
            self.emulator = KubeEmulator(namespaces=("default", self.namespace)).start_in_thread()
            # The hub is bound to z2jh's hub Role, as on a stock deployment (in operator
            # mode to the Role manifests --operator prints for it).
            rules = HUB_OPERATOR_ROLE_RULES if self.lab_backend == "operator" else None
            kubeconfig = write_hub_kubeconfig(
                self.emulator, self.workdir / "kubeconfig", self.namespace, rules or Z2JH
            )
            if self.kubelet_mode == "oci":
                self._publish_images()
            self.kubelet = ProcessKubelet(
                self.emulator,
                nodes=self.nodes,
                workdir=self.workdir / "kubelet",
                step_delay=self.step_delay,
                mode=self.kubelet_mode,
            )
            self.emulator.run(self.kubelet.start())
            if self.lab_backend == "operator":
                self._start_operator(kubeconfig)
            self.hub = HubProcess(
                self.workdir / "hub",
                self.hub_config(kubeconfig),
                env={"KUBECONFIG": str(kubeconfig)},
                log_level=self.log_level,
                port=self.port,
            )
            self.hub.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_operator(self, hub_kubeconfig: Path) -> None:
        """Operator mode's CRDs, the LabTemplate from the hub's configuration, the operator."""
        assert self.emulator is not None
        kubeconfig = install_operator_mode(
            self.emulator, self.namespace, self.workdir / "operator.kubeconfig"
        )
        template = self.emulator.run(
            lab_template_from_config(
                self.hub_config(hub_kubeconfig), self.workdir / "template_config.py", self.namespace
            )
        )
        self.emulator.create_object(TEMPLATES, template, self.namespace)
        args = ["--namespace", self.namespace, "--standalone"]
        args += ["--liveness", f"http://127.0.0.1:{free_port()}/healthz"]
        self.operator = KopfProcess(
            args, kubeconfig, self.workdir / "operator.log", command=OPERATOR_COMMAND
        ).start()

    def _publish_images(self) -> None:
        """Start a real registry holding every menu tag (one image: its config's PATH)."""
        self.registry = LocalRegistry().start()
        url = self.registry.url

        async def publish() -> dict[str, str]:
            return {tag: await publish_image(url, "sciplat/sciplat-lab", tag) for tag in DEMO_TAGS}

        assert self.emulator is not None
        references = self.emulator.run(publish())  # its loop: the caller may be running one
        self.image_base = f"{self.registry.host_port}/sciplat/sciplat-lab"
        self.image_digests = {
            tag: references[tag].rsplit("@", 1)[1] for tag in DEMO_DIGESTS if tag in references
        }

    def stop(self) -> None:
        """Stop the hub (which stops running labs), the kubelet, the emulator and GitHub."""
        if self.hub is not None:
            proxy_pid = self._proxy_pid()
            self.hub.stop()
            if proxy_pid is not None:
                _terminate(proxy_pid)
            self.hub = None
        if self.operator is not None:
            self.operator.stop()
            self.operator = None
        if self.kubelet is not None and self.emulator is not None:
            with contextlib.suppress(Exception):
                self.emulator.run(self.kubelet.stop())
        self.kubelet = None
        if self.emulator is not None:
            self.emulator.stop_thread()
            self.emulator = None
        self.github.stop()
        if self.registry is not None:
            self.registry.stop()
            self.registry = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _proxy_pid(self) -> int | None:
        assert self.hub is not None
        try:
            return int((self.hub.workdir / "proxy.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def lab_objects(self, username: str | None = None) -> dict[str, list[str]]:
        """Names of the pods, configmaps and secrets in the lab namespace (of one user's lab)."""
        assert self.emulator is not None
        found: dict[str, list[str]] = {}
        for resource in ("pods", "configmaps", "secrets"):
            names = [
                o["metadata"]["name"] for o in self.emulator.list_objects(resource, self.namespace)
            ]
            if username is not None:
                names = [n for n in names if username in n]
            found[resource] = names
        return found

    def banner(self) -> str:
        github = self.github
        lines = [
            "",
            "LSST spawner demo is running.",
            "",
            f"  Open {self.url}/ and sign in with the (fake) GitHub.",
            "  The fake GitHub asks which demo user you are:",
        ]
        for user in github.users.values():
            orgs = ", ".join(o.login for o in user.orgs)
            teams = ", ".join(f"{t.org.login}/{t.slug}" for t in user.teams)
            extra = f"; teams {teams}" if teams else ""
            admin = " [hub admin]" if user.login == next(iter(github.users.values())).login else ""
            lines.append(f"    {user.login:<10} {user.name or '':<20} orgs {orgs}{extra}{admin}")
        lines += [
            "",
            f"  Switch user: Logout ({self.url}/hub/logout), sign in again, pick another user.",
            f"  Kubernetes API emulator: {self.emulator.url if self.emulator else '-'}"
            f" (kubeconfig {self.workdir / 'kubeconfig'})",
            f"  Fake GitHub: {github.url}   Hub log: {self.workdir / 'hub' / 'hub.log'}",
            f"  State: {self.workdir}" + ("" if not self._own_workdir else " (removed at exit)"),
            "",
            "  Press Ctrl-C to stop everything.",
            "",
        ]
        return "\n".join(lines)

    def __enter__(self) -> Demo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _terminate(pid: int, timeout: float = 5) -> None:
    """SIGTERM ``pid`` if it still runs, SIGKILL after ``timeout``."""
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lsst_spawner.testing.demo",
        description="Run JupyterHub with LSSTSpawner, a Kubernetes emulator and a fake GitHub.",
    )
    parser.add_argument("--port", type=int, default=8000, help="hub port on 127.0.0.1 (8000)")
    parser.add_argument(
        "--workdir",
        help="keep all state in this directory (default: a temporary one, removed at exit)",
    )
    parser.add_argument(
        "--step-delay",
        type=float,
        default=0.4,
        help="seconds between the kubelet's steps, so the progress page is visible (0.4)",
    )
    parser.add_argument("--log-level", default="INFO", help="the hub's log level (INFO)")
    parser.add_argument(
        "--kubelet",
        choices=("process", "oci"),
        default="process",
        help="run labs as local processes, or in runc as their user (needs root and runc)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    demo = Demo(
        port=args.port,
        workdir=args.workdir,
        step_delay=args.step_delay,
        log_level=args.log_level,
        kubelet_mode=args.kubelet,
    )
    try:
        print(f"Starting the demo in {demo.workdir} ...", flush=True)
        try:
            demo.start()
        except HubError as error:
            print(f"The demo could not start: {error}", file=sys.stderr)
            return 1
        print(demo.banner(), flush=True)
        while not stop.wait(1):
            if demo.hub is None or not demo.hub.running:
                print("The hub exited; stopping the demo.", file=sys.stderr)
                return 1
        print("Stopping: hub, labs, kubelet, emulator, fake GitHub ...", flush=True)
        return 0
    finally:
        demo.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        print("Demo stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
