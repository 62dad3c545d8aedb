"""The menu editor's tornado application: pages, the JSON API and JupyterHub OAuth.

Everyone JupyterHub lets through (``access:services!service=<name>``) reads the
menu; saving and rolling back need :data:`WRITE_SCOPE` (or JupyterHub admin),
else 403. Browser forms carry JupyterHub's XSRF token; API calls with a token
in the ``Authorization`` header need none, as in JupyterHub itself.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape
from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web

from ..menu.diff import diff_menus
from ..menu.form_check import SpawnForms
from ..menu.image_check import DigestResolver, check_save
from ..menu.image_sizes import ImageSizes, UnknownImageSizes
from ..menu.model import NodeGroup
from ..menu.profile_list import build_profile_list
from ..menu.storage import MenuConflictError, MenuRevision, MenuStore, MenuStoreError
from ..menu.validate import MenuInvalidError, MenuProblem
from . import forms

__all__ = ["WRITE_SCOPE", "EditorContext", "make_editor_app"]

#: The custom scope that allows saving and rolling back the menu.
WRITE_SCOPE = "custom:lab-menu:write"
_TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class EditorContext:
    """What every handler shares: the store, the node groups, the URL prefix, templates."""

    store: MenuStore
    prefix: str
    node_groups: dict[str, NodeGroup] = field(default_factory=dict)
    image_repository: str | None = None
    #: The registry every offered image is checked against on save (None: not checked).
    image_source: DigestResolver | None = None
    #: Renders the spawn form a revision gives some groups: the preview page and the
    #: save's check that the form renders (None: neither).
    preview: SpawnForms | None = None
    #: The compressed sizes of the images shown on the menu page.
    image_sizes: ImageSizes | UnknownImageSizes = field(
        default_factory=lambda: UnknownImageSizes("the editor was not given a registry")
    )
    #: The labs' namespace, for the running-labs view (None: no such view).
    lab_namespace: str | None = None
    templates: Environment = field(
        default_factory=lambda: Environment(
            loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(default=True)
        )
    )


def _revision_json(revision: MenuRevision) -> dict[str, Any]:
    return {
        "revision": revision.number,
        "author": revision.author,
        "created": revision.created.isoformat(),
        "comment": revision.comment,
        "restored_from": revision.restored_from,
        "menu": revision.document.to_json_data(),
    }


class _Base(HubOAuthenticated, web.RequestHandler):
    @property
    def editor(self) -> EditorContext:
        context: EditorContext = self.settings["editor"]
        return context

    def check_xsrf_cookie(self) -> None:
        # tornado checks XSRF before anyone asks for the user: identify a request with a
        # token (header or URL) first, so that it is exempt, as in JupyterHub. Cookie
        # requests are not identified here: HubOAuth calls this check itself for them.
        if not hasattr(self, "_cached_hub_user") and self.hub_auth.get_token(self, in_cookie=False):
            _ = self.current_user
        super().check_xsrf_cookie()

    def can_write(self) -> bool:
        user = self.current_user or {}
        return WRITE_SCOPE in set(user.get("scopes", ())) or bool(user.get("admin"))

    def require_writer(self) -> None:
        if not self.can_write():
            raise web.HTTPError(403, f"changing the menu needs the {WRITE_SCOPE} scope")

    def current_revision(self) -> MenuRevision:
        revision = self.editor.store.current()
        if revision is None:
            raise web.HTTPError(503, "the menu database is empty; it is seeded at service start")
        return revision

    def render_page(self, name: str, status: int = 200, **values: Any) -> None:
        self.set_status(status)
        template = self.editor.templates.get_template(name)
        self.finish(
            template.render(
                prefix=self.editor.prefix,
                user=self.current_user,
                can_write=self.can_write(),
                xsrf_form_html=self.xsrf_form_html(),
                **values,
            )
        )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, web.HTTPError) and error.log_message:
            reason = error.log_message
        if self.request.path.startswith(url_path_join(self.editor.prefix, "api")):
            self.finish({"error": reason, "status": status_code})
        else:
            self.set_header("Content-Type", "text/html; charset=utf-8")
            template = self.editor.templates.get_template("error.html.j2")
            self.finish(
                template.render(prefix=self.editor.prefix, status=status_code, reason=reason)
            )


class MenuPage(_Base):
    @web.authenticated
    async def get(self) -> None:
        revision = self.current_revision()
        sizes = await self.editor.image_sizes.sizes(i.tag for i in revision.document.images)
        self.render_page(
            "menu.html.j2", revision=revision, node_groups=self.editor.node_groups, sizes=sizes
        )


class EditPage(_Base):
    @web.authenticated
    def get(self) -> None:
        self.require_writer()
        revision = self.current_revision()
        if self.get_query_argument("format", "form") == "yaml":
            text = yaml.safe_dump(revision.document.to_json_data(), sort_keys=False)
            self.render_page(
                "edit.html.j2", base=revision.number, text=text, comment="", problems=[]
            )
        else:
            self.render_form(revision.number, forms.rows(revision.document))

    def render_form(
        self,
        base: int,
        values: forms.FormRows,
        *,
        status: int = 200,
        comment: str = "",
        problems: dict[str, list[str]] | None = None,
        conflict: MenuConflictError | None = None,
    ) -> None:
        self.render_page(
            "form.html.j2",
            status=status,
            base=base,
            values=values,
            comment=comment,
            problems=problems or {},
            conflict=conflict,
            node_groups=sorted(self.editor.node_groups),
            profile_fields=forms.PROFILE_FIELDS,
            image_fields=forms.IMAGE_FIELDS,
            policy_fields=forms.POLICY_FIELDS,
        )

    async def _save(self, data: Any, base: int, comment: str) -> MenuConflictError | None:
        """Validate, check the images exist and the form renders, save; None when saved,
        else the conflict."""
        where = self.editor.image_repository or "the registry"
        document = await check_save(  # MenuInvalidError
            data,
            self.editor.store.node_groups,
            self.editor.image_source,
            where,
            forms=self.editor.preview,
            revision=base + 1,
        )
        try:
            self.editor.store.save(
                document, base=base, author=self.current_user["name"], comment=comment
            )
        except MenuConflictError as conflict:
            return conflict
        except MenuStoreError as error:
            raise web.HTTPError(400, str(error)) from None
        return None

    async def post_form(self, base: int, comment: str) -> None:
        form = {name: self.get_body_argument(name) for name in self.request.body_arguments}
        try:
            data, row_of = forms.form_to_data(form)
        except ValueError:
            raise web.HTTPError(400, "the form's row counts are not numbers") from None
        try:
            conflict = await self._save(data, base, comment)
        except MenuInvalidError as invalid:
            placed = forms.problems_by_field(invalid.problems, row_of)
            values = forms.values_from_form(form)
            self.render_form(base, values, status=400, comment=comment, problems=placed)
            return
        if conflict is None:
            self.redirect(self.editor.prefix)
            return
        values = forms.values_from_form(form)
        self.render_form(base, values, status=409, comment=comment, conflict=conflict)

    @web.authenticated
    async def post(self) -> None:
        self.require_writer()
        text = self.get_body_argument("menu", "")
        comment = self.get_body_argument("comment", "")
        try:
            base = int(self.get_body_argument("base"))
        except ValueError:
            raise web.HTTPError(400, "base must be a revision number") from None
        if self.get_body_argument("format", "yaml") == "form":
            await self.post_form(base, comment)
            return
        problems: list[MenuProblem] = []
        conflict: MenuConflictError | None = None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            problems = [MenuProblem("", f"not YAML: {error}")]
        else:
            try:
                conflict = await self._save(data, base, comment)
            except MenuInvalidError as invalid:
                problems = invalid.problems
            if not problems and conflict is None:
                self.redirect(self.editor.prefix)
                return
        self.render_page(
            "edit.html.j2",
            status=409 if conflict else 400,
            base=base,
            text=text,
            comment=comment,
            problems=problems,
            conflict=conflict,
        )


class HistoryPage(_Base):
    @web.authenticated
    def get(self) -> None:
        history = self.editor.store.history()
        old = self.get_query_argument("old", None)
        new = self.get_query_argument("new", None)
        diff: list[str] | None = None
        if old and new:
            try:
                diff = self.editor.store.diff(int(old), int(new))
            except (ValueError, MenuStoreError) as error:
                raise web.HTTPError(400, str(error)) from None
        # The audit trail: what each revision changed from the one before it.
        changes = {
            later.number: diff_menus(earlier.document, later.document)
            for later, earlier in itertools.pairwise(history)
        }
        self.render_page(
            "history.html.j2", history=history, changes=changes, diff=diff, old=old, new=new
        )


class RollbackHandler(_Base):
    @web.authenticated
    async def post(self) -> None:
        self.require_writer()
        try:
            number = int(self.get_body_argument("revision"))
            base = int(self.get_body_argument("base"))
        except ValueError:
            raise web.HTTPError(400, "revision and base must be revision numbers") from None
        forms = self.editor.preview
        if forms is not None:
            try:
                old = self.editor.store.get(number)
            except MenuStoreError as error:
                raise web.HTTPError(404, str(error)) from None
            broken = await forms.problems(old.document, base + 1)
            if broken:
                reasons = "; ".join(str(p) for p in broken)
                raise web.HTTPError(400, f"revision {number} is no longer valid: {reasons}")
        try:
            self.editor.store.rollback(number, base=base, author=self.current_user["name"])
        except MenuConflictError as conflict:
            raise web.HTTPError(409, str(conflict)) from None
        except MenuInvalidError as invalid:
            raise web.HTTPError(400, f"revision {number} is no longer valid: {invalid}") from None
        except MenuStoreError as error:
            raise web.HTTPError(404, str(error)) from None
        self.redirect(url_path_join(self.editor.prefix, "history"))


class PreviewPage(_Base):
    """The spawn form of a revision (the current one by default) as a group or a user sees it."""

    @web.authenticated
    async def get(self) -> None:
        preview = self.editor.preview
        if preview is None:
            raise web.HTTPError(404, "the preview needs the spawner's image source")
        number = self.get_query_argument("revision", "")
        try:
            revision = self.editor.store.get(int(number)) if number else self.current_revision()
        except (ValueError, MenuStoreError):
            raise web.HTTPError(404, f"no revision {number!r}") from None
        groups = sorted({g.strip() for g in self.get_query_argument("groups", "").split(",")})
        groups = [group for group in groups if group]
        as_user = self.get_query_argument("user", "").strip()
        problem = ""
        if as_user:
            groups, problem = await self._user_groups(as_user)
        form_html = ""
        if not problem:
            try:
                form_html = await preview.render(
                    revision.document, groups, revision=revision.number
                )
            except ValueError as error:  # MenuUnusable: nothing to offer these groups
                problem = str(error)
        self.render_page(
            "preview.html.j2",
            revision=revision,
            groups=groups,
            as_user=as_user,
            form_html=form_html,
            problem=problem,
        )

    async def _user_groups(self, name: str) -> tuple[list[str], str]:
        """A user's JupyterHub groups, asked of the hub with the service's token."""
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError

        url = url_path_join(self.hub_auth.api_url, "users", quote(name, safe=""))
        headers = {"Authorization": f"token {self.hub_auth.api_token}"}
        try:
            response = await AsyncHTTPClient().fetch(url, headers=headers, request_timeout=10)
        except HTTPClientError as error:
            if error.code == 404:
                return [], f"the hub has no user {name!r}"
            return [], (
                f"the hub answered {error.code} when asked for {name!r}'s groups: give this "
                "service the read:users:groups scope through a role"
            )
        model = json.loads(response.body)
        return sorted(model.get("groups") or []), ""


class LabsPage(_Base):
    """Admins: every running server with its image tag and digest, profile, node and activity."""

    @web.authenticated
    async def get(self) -> None:
        self.require_writer()
        namespace = self.editor.lab_namespace
        if namespace is None:
            raise web.HTTPError(404, "the running-labs view needs the spawner's namespace")
        from datetime import UTC, datetime

        from tornado.httpclient import HTTPClientError

        from .labs import fetch_running_labs

        problem = ""
        try:
            labs = await fetch_running_labs(
                self.hub_auth.api_url, self.hub_auth.api_token, namespace
            )
        except HTTPClientError as error:
            labs, problem = (
                [],
                (
                    f"the hub answered {error.code} when asked for its users' servers: give this "
                    "service the list:users and read:servers scopes through a role"
                ),
            )
        except Exception as error:  # Kubernetes unreachable, no credentials
            labs, problem = [], f"the lab pods could not be listed: {type(error).__name__}: {error}"
        self.render_page("labs.html.j2", labs=labs, problem=problem, now=datetime.now(UTC))


class _API(_Base):
    def prepare(self) -> None:
        # An API answers 403, where a page redirects to the hub's login.
        if self.current_user is None:
            raise web.HTTPError(403, "a JupyterHub token or login is required")


class MenuAPI(_API):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(_revision_json(self.current_revision())))


class ProfileListAPI(_API):
    def get(self) -> None:
        revision = self.current_revision()
        profiles = build_profile_list(
            revision.document,
            self.editor.node_groups,
            image_repository=self.editor.image_repository,
        )
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(profiles))


def make_editor_app(
    context: EditorContext, hub_auth: HubOAuth, cookie_secret: bytes
) -> web.Application:
    """The tornado application serving the editor under ``context.prefix``."""
    prefix = context.prefix
    routes: list[Any] = [
        (prefix, MenuPage),
        (url_path_join(prefix, "edit"), EditPage),
        (url_path_join(prefix, "history"), HistoryPage),
        (url_path_join(prefix, "preview"), PreviewPage),
        (url_path_join(prefix, "labs"), LabsPage),
        (url_path_join(prefix, "rollback"), RollbackHandler),
        (url_path_join(prefix, "api/menu"), MenuAPI),
        (url_path_join(prefix, "api/profile-list"), ProfileListAPI),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
    ]
    return web.Application(
        routes,
        hub_auth=hub_auth,
        editor=context,
        cookie_secret=cookie_secret,
        xsrf_cookies=True,
        login_url=hub_auth.login_url,
    )
