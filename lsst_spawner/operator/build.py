"""From a LabServer to the lab's objects, with the policy the operator enforces; no I/O.

Whoever created the resource (the hub or ``kubectl``), the operator builds the lab
only from what the site allows: the template's settings and pod, the site's menu,
the identity rules, and nothing else. Every refusal is a :class:`Rejected` with a
reason (used for the status condition and the ``Warning`` Event) and a message.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError
from traitlets.config import Config

from ..crd.declare import API_TOKEN_KEY, GIT_TOKEN_KEY
from ..crd.models import API_VERSION, LabServer, LabTemplate
from ..crd.settings import TemplateSettings, settings_from_template
from ..crd.template import HUB_ENV_PATTERN, expand_pod_template
from ..form.image import lab_request
from ..form.options import (
    LabOptions,
    OptionsCatalog,
    OptionsError,
    OptionsOrigin,
    SizeChoice,
    parse_user_options,
)
from ..identity import Identity, IdentityError, unsafe_character
from ..images.model import ImageMenu
from ..lab.security import check_lab_identity, drop_system_groups
from ..lab.sizes import describe_size
from ..lab.spec import LabObjects, LabSettings, apply_lab_spec, build_lab_spec

__all__ = [
    "API_TOKEN_KEY",
    "GIT_TOKEN_KEY",
    "MENU_DB_URL_ENV",
    "SERVER_LABEL",
    "Policed",
    "Rejected",
    "SiteTemplate",
    "TemplateMenu",
    "build_server_objects",
    "check_references",
    "parse_lab_server",
    "police",
    "read_template",
]

#: Label on every object the operator makes for a LabServer: the LabServer's name.
SERVER_LABEL = "lab.lsst-spawner.io/server"
#: The operator's environment variable holding the lab menu database's URL (from a Secret).
MENU_DB_URL_ENV = "LSST_SPAWNER_MENU_DB_URL"
_LOG = logging.getLogger(__name__)
#: Longest value of one hub variable.
_MAX_HUB_VALUE = 8192


class Rejected(Exception):
    """The operator will not build this LabServer: ``reason`` (CamelCase) and a message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def _pydantic_problems(error: ValidationError, prefix: str) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            parts.append(f"{prefix}.{where} is not a field a LabServer may set")
        else:
            parts.append(f"{prefix}.{where}: {item['msg']}")
    return "; ".join(parts)


def parse_lab_server(body: Mapping[str, Any]) -> LabServer:
    """The LabServer model of a resource body; unknown spec fields (pod fields) are refused."""
    data = {key: body[key] for key in ("apiVersion", "kind", "metadata", "spec") if key in body}
    try:
        return LabServer.model_validate(data)
    except ValidationError as error:
        extra = any(item["type"] == "extra_forbidden" for item in error.errors())
        reason = "ForbiddenFields" if extra else "InvalidSpec"
        raise Rejected(reason, _pydantic_problems(error, "LabServer")) from None


def check_references(server: LabServer, namespace: str) -> None:
    """Every reference stays in the LabServer's own namespace."""
    for field, ref in (
        ("templateRef", server.spec.template_ref),
        ("secretRef", server.spec.secret_ref),
    ):
        if ref.namespace is not None and ref.namespace != namespace:
            raise Rejected(
                "ForeignNamespace",
                f"spec.{field} names namespace {ref.namespace!r}; a LabServer may refer only "
                f"to objects in its own namespace {namespace!r}",
            )


class TemplateMenu:
    """A template's ``spec.labMenu`` with the operator's database URL, as ``c.LabMenu``: what
    :class:`~lsst_spawner.menu.hub.LiveMenus` reads, as it reads a spawner's."""

    def __init__(self, config: Config, log: logging.Logger) -> None:
        self.config = config
        self.log = log


@dataclass(frozen=True)
class SiteTemplate:
    """A LabTemplate read into the one settings model, with its frozen lab settings."""

    template: LabTemplate
    traits: TemplateSettings
    lab: LabSettings
    #: The admin-edited lab menu's settings; ``None`` when the template has no ``labMenu``.
    lab_menu: TemplateMenu | None = None

    def catalog(self, menu: ImageMenu) -> OptionsCatalog:
        sizes = tuple(SizeChoice(size.name, describe_size(size)) for size in self.lab.sizes)
        return OptionsCatalog(menu=menu, sizes=sizes, default_size=self.lab.default_size)


def _template_menu(template: LabTemplate, name: str, db_url: str | None) -> TemplateMenu | None:
    """``spec.labMenu`` through ``LabMenu``'s own checks; :class:`Rejected` if faulty."""
    spec = template.spec.lab_menu
    if spec is None:
        return None
    if not db_url:
        raise Rejected(
            "InvalidTemplate",
            f"LabTemplate {name} sets spec.labMenu but the operator has no menu database: set "
            f"{MENU_DB_URL_ENV} from a Secret (docs/operator.md)",
        )
    from ..menu.traits import LabMenu

    config = Config()
    config.LabMenu.db_url = db_url
    config.LabMenu.node_groups = [dict(group) for group in spec.node_groups]
    config.LabMenu.revision_check_interval = spec.revision_check_interval
    problems = LabMenu(config=config).config_problems()
    if problems:
        lines = "; ".join(
            f"{p.where.replace('LabMenu.', 'spec.labMenu.')}: {p.message}" for p in problems[:10]
        )
        raise Rejected("InvalidTemplate", f"LabTemplate {name}: {lines}")
    return TemplateMenu(config, _LOG)


def read_template(body: Mapping[str, Any], menu_db_url: str | None = None) -> SiteTemplate:
    """A LabTemplate's settings through the spawner's own checks; :class:`Rejected` if faulty.

    ``menu_db_url`` is the lab menu database's URL (the operator's
    :data:`MENU_DB_URL_ENV`), needed when the template sets ``spec.labMenu``.
    """
    name = (body.get("metadata") or {}).get("name", "?")
    try:
        template = LabTemplate.model_validate(
            {key: body[key] for key in ("apiVersion", "kind", "metadata", "spec") if key in body}
        )
    except ValidationError as error:
        raise Rejected("InvalidTemplate", _pydantic_problems(error, "LabTemplate")) from None
    traits, problems = settings_from_template(template.spec.settings, f"LabTemplate {name}")
    if traits is None:
        lines = "; ".join(str(problem) for problem in problems[:10])
        raise Rejected(
            "InvalidTemplate", f"LabTemplate {name} has {len(problems)} problem(s): {lines}"
        )
    return SiteTemplate(
        template=template,
        traits=traits,
        lab=traits.lab_settings(),
        lab_menu=_template_menu(template, name, menu_db_url),
    )


def _identity(server: LabServer, git_token: str | None) -> Identity:
    data = server.spec.identity.model_dump(exclude_none=True)
    data["groups"] = [group.model_dump() for group in server.spec.identity.groups]
    if git_token:
        data["git_token"] = git_token
    if "gid" not in data:
        raise Rejected("IdentityRejected", "spec.identity has no gid: a lab needs a primary group")
    try:
        return Identity.from_dict(data)
    except IdentityError as error:
        raise Rejected("IdentityRejected", f"spec.identity: {error}") from None


def _check_identity_rules(identity: Identity, settings: LabSettings) -> None:
    """The lab's identity rules (uid and gid minimums, group count), as the builder applies them."""
    kept = drop_system_groups(identity, settings, _LOG)
    try:
        check_lab_identity(
            kept,
            minimum_uid=settings.minimum_uid,
            minimum_gid=settings.minimum_gid,
            max_groups=settings.max_groups,
        )
    except IdentityError as error:
        raise Rejected("IdentityRejected", f"spec.identity: {error}") from None


def _hub_env(server: LabServer) -> dict[str, str]:
    env = server.spec.hub.env
    for name, value in env.items():
        if not HUB_ENV_PATTERN.fullmatch(name) or name == "JUPYTERHUB_API_TOKEN":
            raise Rejected(
                "ForbiddenFields",
                f"spec.hub.env may hold only JupyterHub's JUPYTERHUB_* variables (not the API "
                f"token), not {name[:64]!r}",
            )
        bad = unsafe_character(value)
        if len(value) > _MAX_HUB_VALUE or bad:
            raise Rejected("InvalidSpec", f"spec.hub.env[{name!r}] is too long or holds {bad}")
    return dict(env)


async def _catalog(
    site: SiteTemplate, offered: OptionsCatalog, identity: Identity
) -> OptionsCatalog:
    catalog = await site.traits.quota_catalog(offered, identity)
    if catalog is None:
        raise Rejected("SizeRejected", "the user's groups allow none of the lab sizes")
    return catalog


def _owner(server: LabServer) -> dict[str, Any]:
    metadata = server.metadata
    return {
        "apiVersion": API_VERSION,
        "kind": "LabServer",
        "name": metadata["name"],
        "uid": metadata.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


@dataclass(frozen=True)
class Policed:
    """A LabServer the policy accepts: its identity (no git token yet), options and hub env."""

    identity: Identity
    options: LabOptions
    hub_env: dict[str, str]


async def police(
    server: LabServer,
    site: SiteTemplate,
    menu: ImageMenu,
    *,
    namespace: str,
    catalog: OptionsCatalog | None = None,
) -> Policed:
    """Every rule a LabServer must pass, before any of its secrets is read; or :class:`Rejected`.

    ``catalog`` is the lab menu's for this identity's groups (its current revision), which
    replaces ``menu`` and the template's sizes; the size quota applies to either, as in the
    hub.
    """
    check_references(server, namespace)
    identity = _identity(server, None)
    _check_identity_rules(identity, site.lab)
    hub_env = _hub_env(server)
    offered = catalog if catalog is not None else site.catalog(menu)
    catalog = await _catalog(site, offered, identity)
    raw_options = {
        "image": server.spec.image,
        "size": server.spec.size,
        "enable_debug": server.spec.options.enable_debug,
        "reset_user_env": server.spec.options.reset_user_env,
    }
    try:
        options = parse_user_options(raw_options, catalog, origin=OptionsOrigin.API, reused=False)
    except OptionsError as error:
        reason = {"image": "ImageRejected", "size": "SizeRejected"}.get(
            error.field or "", "OptionsRejected"
        )
        raise Rejected(reason, error.message) from None
    return Policed(identity=identity, options=options, hub_env=hub_env)


async def build_server_objects(
    server: LabServer,
    site: SiteTemplate,
    menu: ImageMenu,
    hub_secret: Mapping[str, str],
    *,
    namespace: str,
    environ: Mapping[str, str] | None = None,
    catalog: OptionsCatalog | None = None,
) -> LabObjects:
    """The lab's objects for ``server`` with the in-hub spawner's builders; or :class:`Rejected`.

    ``hub_secret`` is the decoded data of the Secret ``spec.secretRef`` names;
    site secrets (``lab_extra_secrets``) are read from the operator's environment.
    """
    policed = await police(server, site, menu, namespace=namespace, catalog=catalog)
    api_token = hub_secret.get(API_TOKEN_KEY, "")
    if not api_token:
        raise Rejected(
            "MissingSecret", f"Secret {server.spec.secret_ref.name} has no {API_TOKEN_KEY}"
        )
    identity, options, hub_env = policed.identity, policed.options, policed.hub_env
    git_token = hub_secret.get(GIT_TOKEN_KEY)
    if git_token:
        try:
            identity = replace(identity, git_token=git_token)
        except IdentityError as error:
            raise Rejected("InvalidSecret", f"the git token: {error}") from None
    base = expand_pod_template(
        site.template.spec.pod_template, server.spec.user.name, server.spec.user.server, hub_env
    )
    if not (base.get("spec") or {}).get("containers"):
        raise Rejected("InvalidTemplate", "the template's podTemplate has no containers")
    secrets = site.traits.lab_extra_secret_values(os.environ if environ is None else environ)
    try:
        spec = build_lab_spec(
            site.lab,
            identity,
            lab_request(options, server_name=server.spec.user.server),
            api_token=api_token,
            secret_values=secrets,
        )
        objects = apply_lab_spec(base, spec)
    except IdentityError as error:  # LabSpecError: the template's pod and the builders
        raise Rejected("BuildFailed", str(error)) from None
    owner = _owner(server)
    for obj in objects.as_list():
        metadata = obj["metadata"]
        metadata["namespace"] = namespace
        metadata.setdefault("labels", {})[SERVER_LABEL] = server.metadata["name"]
        metadata["ownerReferences"] = [dict(owner)]
    return objects
