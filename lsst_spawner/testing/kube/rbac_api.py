"""The emulator's access control at the HTTP edge, and the API groups that go with it.

:class:`AccessControl` runs first for every request: it authenticates the bearer
token (:mod:`.authn`), works out what the request asks, as the API server's
RequestInfo does (:func:`request_attributes`), and lets :mod:`.rbac` decide.
It also serves ``rbac.authorization.k8s.io/v1`` (Roles, ClusterRoles and their
bindings, from the store) and ``authorization.k8s.io/v1``'s
SelfSubjectAccessReview and SelfSubjectRulesReview, which ``kubectl auth
can-i`` posts. Watching RBAC objects is not served (405).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .authn import ADMIN, TokenAuthenticator, service_account_user
from .rbac import (
    RBAC_GROUP,
    RBAC_RESOURCES,
    Attributes,
    RbacAuthorizer,
    UserInfo,
    bootstrap_rbac_objects,
)
from .resources import ResourceType
from .status import ApiError
from .wire import read_body as read_json_body

if TYPE_CHECKING:
    from .server import KubeEmulator

__all__ = ["API_GROUPS", "AccessControl", "request_attributes"]

AUTHORIZATION_GROUP = "authorization.k8s.io"
_ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
_REVIEWS = {
    "selfsubjectaccessreviews": "SelfSubjectAccessReview",
    "selfsubjectrulesreviews": "SelfSubjectRulesReview",
}
#: The API groups whose objects this module serves from the store, by resource (the
#: other groups, networking's and the CRDs' included, are routed by apis.py).
GROUP_RESOURCES: dict[str, dict[str, ResourceType]] = {RBAC_GROUP: RBAC_RESOURCES}
#: The API groups this module serves: name -> resources for discovery.
API_GROUPS: dict[str, list[dict[str, Any]]] = {
    **{
        group: [
            {
                "name": r.plural,
                "singularName": r.kind.lower(),
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": _ALL_VERBS,
            }
            for r in resources.values()
        ]
        for group, resources in GROUP_RESOURCES.items()
    },
    AUTHORIZATION_GROUP: [
        {
            "name": plural,
            "singularName": kind.lower(),
            "namespaced": False,
            "kind": kind,
            "verbs": ["create"],
        }
        for plural, kind in _REVIEWS.items()
    ],
}
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json"
    )


def request_attributes(
    user: UserInfo, method: str, path: str, query: Mapping[str, str]
) -> Attributes:
    """What the request asks for, as k8s.io/apiserver's ``RequestInfoFactory`` reads it."""
    parts = [p for p in path.strip("/").split("/") if p] if path.strip("/") else []
    non_resource = Attributes(user, method.lower(), resource_request=False, path=path)
    if not parts or parts[0] not in ("api", "apis"):
        return non_resource
    group_parts = 3 if parts[0] == "apis" else 2
    if len(parts) <= group_parts:  # discovery: /api, /api/v1, /apis/<group>/<version>
        return non_resource
    group, version = (parts[1], parts[2]) if parts[0] == "apis" else ("", parts[1])
    verb = _METHOD_VERBS.get(method.upper(), "")
    rest = parts[group_parts:]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if str(query.get("watch", "")).lower() in ("true", "1") else "list"
        selector = query.get("fieldSelector") or ""
        for term in selector.split(","):
            key, _, value = term.partition("=")
            if key.strip() == "metadata.name" and value and not value.startswith("="):
                name = value.strip()
    elif not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(
        user,
        verb,
        api_group=group,
        api_version=version,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
        path=path,
    )


class AccessControl:
    """Authentication, RBAC authorization and the RBAC/authorization API groups."""

    def __init__(self, emulator: KubeEmulator, *, enabled: bool = True) -> None:
        self.emulator = emulator
        self.store = emulator.store
        #: When False, every request is served as the administrator's (no 401, no 403).
        self.enabled = enabled
        self.authn = TokenAuthenticator()
        self.authorizer = RbacAuthorizer(self.store)
        for resource, obj in bootstrap_rbac_objects():
            self.store.create(resource, None, obj)

    # -- fixtures' helpers (direct, no HTTP) -----------------------------------------------

    def grant_role(
        self,
        namespace: str,
        role: str,
        rules: Iterable[Mapping[str, Any]],
        *,
        service_account: tuple[str, str],
    ) -> str:
        """Make (or replace) Role ``role`` in ``namespace``, bind it to a service account.

        Returns a new token for the service account (``(namespace, name)``).
        """
        body = {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "Role",
            "metadata": {"name": role, "namespace": namespace},
            "rules": [dict(rule) for rule in rules],
        }
        self.set_object("roles", namespace, body)
        sa_namespace, sa_name = service_account
        binding = {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "RoleBinding",
            "metadata": {"name": role, "namespace": namespace},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": sa_namespace}],
        }
        self.set_object("rolebindings", namespace, binding)
        return self.authn.issue(service_account_user(sa_namespace, sa_name))

    def set_object(self, resource: str, namespace: str | None, body: dict[str, Any]) -> None:
        """Create ``body``, or replace the object of that name."""
        name = body["metadata"]["name"]
        key = (namespace or "", name)
        if key in self.store.objects[resource]:
            self.store.replace(resource, namespace, name, body)
        else:
            self.store.create(resource, namespace, body)

    # -- the HTTP edge ---------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse | None:
        """Answer the request (a 401/403, or an RBAC/authorization call), or None to go on."""
        try:
            return await self._handle(request)
        except ApiError as exc:
            return web.Response(
                body=json.dumps(exc.body).encode(),
                status=exc.code,
                content_type="application/json",
                headers=exc.headers,
            )

    async def _handle(self, request: web.Request) -> web.StreamResponse | None:
        path = request.path
        ours = next(
            (g for g in API_GROUPS if path == f"/apis/{g}" or path.startswith(f"/apis/{g}/")), None
        )
        if self.emulator.unavailable:
            if ours is None:
                return None  # api.py answers 503 as for every other request
            raise ApiError(503, "the server is currently unable to handle the request")
        if self.enabled:
            user = self.authn.authenticate(request.headers)
            attrs = request_attributes(user, request.method, path, request.query)
            if (
                attrs.resource_request
                and attrs.api_group == ""
                and any(attrs.resource in group for group in GROUP_RESOURCES.values())
            ):
                raise ApiError(404, "the server could not find the requested resource")
            self.authorizer.authorize(attrs)
        else:
            attrs = request_attributes(ADMIN, request.method, path, request.query)
        if ours is None:
            return None
        return await self._serve(ours, attrs, request)

    async def _serve(self, group: str, attrs: Attributes, request: web.Request) -> web.Response:
        prefix = f"/apis/{group}"
        if request.path.rstrip("/") == prefix:
            return _json(
                {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group)},
            )
        if request.path.rstrip("/") == f"{prefix}/v1":
            return _json(
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": f"{group}/v1",
                    "resources": API_GROUPS[group],
                }
            )
        if attrs.api_version != "v1" or not attrs.resource_request:
            raise ApiError(404, "the server could not find the requested resource")
        body = await read_json_body(request, patch=request.method == "PATCH")
        if group == AUTHORIZATION_GROUP:
            return self._review(attrs, body)
        return self._group_object(GROUP_RESOURCES[group], group, attrs, body, request)

    def api_groups(self) -> list[dict[str, Any]]:
        """The ``groups`` entries of ``/apis`` for the groups served here."""
        return [_group_entry(group) for group in API_GROUPS]

    def _review(self, attrs: Attributes, body: Any) -> web.Response:
        kind = _REVIEWS.get(attrs.resource)
        if kind is None or attrs.name or attrs.subresource:
            raise ApiError(404, "the server could not find the requested resource")
        if attrs.verb != "create":
            raise ApiError(405, "the server does not allow this method on the requested resource")
        review = _check_review_body(body, kind)
        spec = review.get("spec") or {}
        if kind == "SelfSubjectAccessReview":
            allowed = self.can(attrs.user, spec)
            review["status"] = {"allowed": allowed}
            if not allowed:
                review["status"]["reason"] = ""
        else:
            review["status"] = self.rules_review(attrs.user, str(spec.get("namespace") or ""))
        review.setdefault("metadata", {})["creationTimestamp"] = None
        return _json(review, 201)

    def can(self, user: UserInfo, spec: Mapping[str, Any]) -> bool:
        """A SelfSubjectAccessReview's answer for ``spec``."""
        resource = spec.get("resourceAttributes")
        other = spec.get("nonResourceAttributes")
        if (resource is None) == (other is None):
            raise ApiError.invalid(
                "SelfSubjectAccessReview",
                "",
                [
                    (
                        "FieldValueRequired",
                        "spec.resourceAttributes",
                        "Required value: exactly one of nonResourceAttributes or "
                        "resourceAttributes must be specified",
                    )
                ],
            )
        if resource is not None:
            attrs = Attributes(
                user,
                str(resource.get("verb") or ""),
                api_group=str(resource.get("group") or ""),
                api_version=str(resource.get("version") or ""),
                resource=str(resource.get("resource") or ""),
                subresource=str(resource.get("subresource") or ""),
                namespace=str(resource.get("namespace") or ""),
                name=str(resource.get("name") or ""),
            )
        else:
            assert other is not None
            attrs = Attributes(
                user,
                str(other.get("verb") or ""),
                resource_request=False,
                path=str(other.get("path") or ""),
            )
        return self.authorizer.allowed(attrs)[0] if self.enabled else True

    def rules_review(self, user: UserInfo, namespace: str) -> dict[str, Any]:
        """A SelfSubjectRulesReview's status: the rules that apply in ``namespace``."""
        resource_rules: list[dict[str, Any]] = []
        non_resource_rules: list[dict[str, Any]] = []
        for rule in self.authorizer.rules_for(user, namespace):
            if rule.get("nonResourceURLs"):
                non_resource_rules.append(
                    {"verbs": list(rule["verbs"]), "nonResourceURLs": list(rule["nonResourceURLs"])}
                )
            else:
                entry = {k: list(v) for k, v in rule.items() if v}
                entry.setdefault("verbs", [])
                resource_rules.append(entry)
        return {
            "resourceRules": resource_rules,
            "nonResourceRules": non_resource_rules,
            "incomplete": False,
        }

    def _group_object(
        self,
        resources: dict[str, ResourceType],
        group: str,
        attrs: Attributes,
        body: Any,
        request: web.Request,
    ) -> web.Response:
        """An RBAC object: create, read, list, update, patch, delete."""
        rtype = resources.get(attrs.resource)
        if rtype is None or attrs.subresource:
            raise ApiError(404, "the server could not find the requested resource")
        namespace = attrs.namespace or None
        if rtype.namespaced and namespace is None and attrs.verb not in ("list", "watch"):
            raise ApiError(404, "the server could not find the requested resource")
        if not rtype.namespaced and namespace is not None:
            raise ApiError(404, "the server could not find the requested resource")
        store, query = self.store, request.query
        if attrs.verb == "watch":
            raise ApiError(405, f"the emulator does not serve watches of {group} objects")
        if attrs.verb == "list":
            items, rv = store.list(
                rtype.plural, namespace, query.get("labelSelector"), query.get("fieldSelector")
            )
            return _json(
                {
                    "kind": f"{rtype.kind}List",
                    "apiVersion": rtype.api_version,
                    "metadata": {"resourceVersion": str(rv)},
                    "items": items,
                }
            )
        if attrs.verb == "get":
            return _json(store.get(rtype.plural, namespace, attrs.name))
        validation = query.get("fieldValidation")
        if attrs.verb == "create":
            if request.path.rstrip("/").rsplit("/", 1)[-1] != rtype.plural:
                raise ApiError(
                    405, "the server does not allow this method on the requested resource"
                )
            obj, _ = store.create(
                rtype.plural,
                namespace,
                body,
                field_validation=validation,
                dry_run=bool(query.get("dryRun")),
            )
            return _json(obj, 201)
        if attrs.verb == "update":
            obj, _ = store.replace(
                rtype.plural, namespace, attrs.name, body, field_validation=validation
            )
            return _json(obj)
        if attrs.verb == "patch":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            obj, _ = store.patch(
                rtype.plural, namespace, attrs.name, body, content_type, field_validation=validation
            )
            return _json(obj)
        if attrs.verb == "deletecollection":
            deleted = store.delete_collection(
                rtype.plural, namespace, query.get("labelSelector"), query.get("fieldSelector")
            )
            return _json(
                {
                    "kind": f"{rtype.kind}List",
                    "apiVersion": rtype.api_version,
                    "metadata": {"resourceVersion": str(store.rv)},
                    "items": deleted,
                }
            )
        obj = store.delete(rtype.plural, namespace, attrs.name)
        return _json(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": attrs.name,
                    "group": group,
                    "kind": rtype.plural,
                    "uid": obj["metadata"]["uid"],
                },
            }
        )


def _group_entry(group: str) -> dict[str, Any]:
    version = {"groupVersion": f"{group}/v1", "version": "v1"}
    return {"name": group, "versions": [version], "preferredVersion": version}


def _check_review_body(body: Any, kind: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError.bad_request("the request body must be a JSON object")
    api_version = body.get("apiVersion", f"{AUTHORIZATION_GROUP}/v1")
    if api_version != f"{AUTHORIZATION_GROUP}/v1" or body.get("kind", kind) != kind:
        raise ApiError.bad_request(
            f"the kind in the data ({body.get('kind')}, {api_version}) does not match the "
            f"expected kind ({kind}, {AUTHORIZATION_GROUP}/v1)"
        )
    review = dict(body)
    review["apiVersion"], review["kind"] = f"{AUTHORIZATION_GROUP}/v1", kind
    return review
