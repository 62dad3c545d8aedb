"""RBAC as the API server's authorizer applies it: rules, bindings, decisions, wording.

The emulator keeps ``rbac.authorization.k8s.io/v1`` Roles, ClusterRoles,
RoleBindings and ClusterRoleBindings in its store; :class:`RbacAuthorizer`
decides each request from them, as Kubernetes' RBAC authorizer does
(``plugin/pkg/auth/authorizer/rbac``): a request is allowed when some rule of
some role bound to the user (by name, group or service account) matches its
API group, resource (with ``*/subresource``), verb and resource name, or its
non-resource path. Members of ``system:masters`` are allowed everything, as the
API server's privileged-group shortcut does. A denied request gets the
apiserver's 403 ``Status`` (:func:`forbidden`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .resources import ResourceType
from .status import ApiError

if TYPE_CHECKING:
    from .store import ObjectStore

__all__ = [
    "RBAC_GROUP",
    "RBAC_RESOURCES",
    "VERBS",
    "Attributes",
    "RbacAuthorizer",
    "UserInfo",
    "bootstrap_rbac_objects",
    "forbidden",
    "forbidden_message",
    "rbac_object_causes",
    "rule_allows",
]

RBAC_GROUP = "rbac.authorization.k8s.io"
_RBAC_VERSION = f"{RBAC_GROUP}/v1"

#: The verbs of resource requests (``*`` in a rule matches every one, and any other).
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")

#: Privileged group: the API server allows its members everything, before RBAC.
SUPERUSER_GROUP = "system:masters"

RBAC_RESOURCES: dict[str, ResourceType] = {
    r.plural: r
    for r in (
        ResourceType("roles", "Role", api_version=_RBAC_VERSION, path_segment_name=True),
        ResourceType(
            "rolebindings", "RoleBinding", api_version=_RBAC_VERSION, path_segment_name=True
        ),
        ResourceType(
            "clusterroles",
            "ClusterRole",
            namespaced=False,
            api_version=_RBAC_VERSION,
            path_segment_name=True,
        ),
        ResourceType(
            "clusterrolebindings",
            "ClusterRoleBinding",
            namespaced=False,
            api_version=_RBAC_VERSION,
            path_segment_name=True,
        ),
    )
}


@dataclass(frozen=True)
class UserInfo:
    """An authenticated (or anonymous) user: what RBAC subjects are matched against."""

    name: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do, as the API server's RequestInfo describes it."""

    user: UserInfo
    verb: str
    resource_request: bool = True
    api_group: str = ""
    api_version: str = "v1"
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def _quote(text: str) -> str:
    """Go's ``%q`` for the names in these messages (JSON string quoting agrees with it)."""
    return json.dumps(text, ensure_ascii=False)


def forbidden_message(attrs: Attributes) -> str:
    """``forbiddenMessage`` of k8s.io/apiserver's responsewriters, word for word."""
    user = _quote(attrs.user.name)
    if not attrs.resource_request:
        return f"User {user} cannot {attrs.verb} path {_quote(attrs.path)}"
    what = f"resource {_quote(attrs.combined_resource)} in API group {_quote(attrs.api_group)}"
    if attrs.namespace:
        return f"User {user} cannot {attrs.verb} {what} in the namespace {_quote(attrs.namespace)}"
    return f"User {user} cannot {attrs.verb} {what} at the cluster scope"


def forbidden(attrs: Attributes, reason: str = "") -> ApiError:
    """The 403 the API server sends (``responsewriters.Forbidden`` + ``errors.NewForbidden``)."""
    message = forbidden_message(attrs)
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        message = message.replace(char, entity)
    if reason:
        message = f"{message}: {reason}"
    if not attrs.resource_request:
        qualified = ""
    elif attrs.api_group:
        qualified = f"{attrs.resource}.{attrs.api_group}"
    else:
        qualified = attrs.resource
    if not qualified:
        text = f"forbidden: {message}"
    elif attrs.name:
        text = f"{qualified} {_quote(attrs.name)} is forbidden: {message}"
    else:
        text = f"{qualified} is forbidden: {message}"
    details: dict[str, Any] = {}
    if attrs.resource_request:
        details = {"group": attrs.api_group, "kind": attrs.resource, "name": attrs.name}
        details = {k: v for k, v in details.items() if v}
    return ApiError(403, text, "Forbidden", details or None)


# -- rule matching (k8s.io/component-helpers/auth/rbac/validation) ------------------------


def _has(values: Iterable[str], wanted: str) -> bool:
    return any(value == "*" or value == wanted for value in values)


def _resource_matches(rule: Mapping[str, Any], combined: str, subresource: str) -> bool:
    for resource in rule.get("resources") or ():
        if resource in ("*", combined):
            return True
        if subresource and resource == f"*/{subresource}":
            return True
    return False


def _path_matches(rule: Mapping[str, Any], path: str) -> bool:
    for url in rule.get("nonResourceURLs") or ():
        if url == "*" or url == path or (url.endswith("*") and path.startswith(url[:-1])):
            return True
    return False


def rule_allows(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    """Whether one PolicyRule allows the request (``RuleAllows`` of the RBAC authorizer)."""
    if not _has(rule.get("verbs") or (), attrs.verb):
        return False
    if not attrs.resource_request:
        return _path_matches(rule, attrs.path)
    names = rule.get("resourceNames") or ()
    return (
        _has(rule.get("apiGroups") or (), attrs.api_group)
        and _resource_matches(rule, attrs.combined_resource, attrs.subresource)
        and (not names or attrs.name in names)
    )


def _applies_to(subject: Mapping[str, Any], user: UserInfo, namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return bool(user.name == name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_namespace = subject.get("namespace") or namespace
        return bool(sa_namespace) and user.name == f"system:serviceaccount:{sa_namespace}:{name}"
    return False


@dataclass
class RbacAuthorizer:
    """Decides requests from the RBAC objects in ``store`` (read at every request)."""

    store: ObjectStore
    superuser_group: str = SUPERUSER_GROUP
    #: Requests decided so far, by outcome (``allowed``/``denied``), for tests and reports.
    decisions: dict[str, int] = field(default_factory=lambda: {"allowed": 0, "denied": 0})
    #: The requests denied so far (the last 1,000), for tests that ask what was refused.
    denied: list[Attributes] = field(default_factory=list)

    def _role_rules(
        self, ref: Mapping[str, Any], namespace: str, errors: list[str]
    ) -> list[Mapping[str, Any]]:
        kind, name = ref.get("kind"), ref.get("name", "")
        if kind == "ClusterRole":
            role = self.store.objects["clusterroles"].get(("", name))
            missing = f'clusterrole.{RBAC_GROUP} "{name}" not found'
        elif kind == "Role" and namespace:
            role = self.store.objects["roles"].get((namespace, name))
            missing = f'role.{RBAC_GROUP} "{name}" not found'
        else:
            return []
        if role is None:
            errors.append(missing)
            return []
        return list(role.get("rules") or ())

    def rules_for(
        self, user: UserInfo, namespace: str, errors: list[str] | None = None
    ) -> Iterator[Mapping[str, Any]]:
        """Every rule that applies to ``user`` in ``namespace`` ("" for cluster-wide only)."""
        errors = [] if errors is None else errors
        for binding in self.store.objects["clusterrolebindings"].values():
            if any(_applies_to(s, user, "") for s in binding.get("subjects") or ()):
                yield from self._role_rules(binding.get("roleRef") or {}, "", errors)
        if not namespace:
            return
        for (ns, _), binding in self.store.objects["rolebindings"].items():
            if ns != namespace:
                continue
            if any(_applies_to(s, user, ns) for s in binding.get("subjects") or ()):
                yield from self._role_rules(binding.get("roleRef") or {}, ns, errors)

    def allowed(self, attrs: Attributes) -> tuple[bool, str]:
        """``(allowed, reason)``; the reason names bindings whose role is missing."""
        if self.superuser_group in attrs.user.groups:
            return True, ""
        errors: list[str] = []
        for rule in self.rules_for(attrs.user, attrs.namespace, errors):
            if rule_allows(rule, attrs):
                return True, ""
        return False, (f"RBAC: {', '.join(errors)}" if errors else "")

    def authorize(self, attrs: Attributes) -> None:
        """Raise the API server's 403 unless ``attrs`` is allowed."""
        ok, reason = self.allowed(attrs)
        self.decisions["allowed" if ok else "denied"] += 1
        if not ok:
            self.denied.append(attrs)
            del self.denied[:-1000]
            raise forbidden(attrs, reason)


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": _RBAC_VERSION,
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        },
        "rules": rules,
    }


def _cluster_binding(name: str, group: str) -> dict[str, Any]:
    return {
        "apiVersion": _RBAC_VERSION,
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        },
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": group}],
    }


def bootstrap_rbac_objects() -> list[tuple[str, dict[str, Any]]]:
    """The API server's bootstrap policy that matters here, as ``(resource, object)`` pairs.

    ``cluster-admin`` for ``system:masters``; ``system:discovery`` and
    ``system:basic-user`` (discovery, and SelfSubject*Reviews, which ``kubectl auth
    can-i`` posts) for every authenticated user; ``system:public-info-viewer``
    (``/version``, health) for everyone, as in Kubernetes 1.30.
    """
    authorization = "authorization.k8s.io"
    roles = {
        "cluster-admin": (
            [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ],
            SUPERUSER_GROUP,
        ),
        "system:discovery": (
            [
                {
                    "nonResourceURLs": [
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/healthz",
                        "/livez",
                        "/openapi",
                        "/openapi/*",
                        "/readyz",
                        "/version",
                        "/version/",
                    ],
                    "verbs": ["get"],
                }
            ],
            "system:authenticated",
        ),
        "system:basic-user": (
            [
                {
                    "apiGroups": [authorization],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                }
            ],
            "system:authenticated",
        ),
        "system:public-info-viewer": (
            [
                {
                    "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                    "verbs": ["get"],
                }
            ],
            "system:unauthenticated",
        ),
    }
    objects: list[tuple[str, dict[str, Any]]] = []
    for name, (rules, group) in roles.items():
        objects.append(("clusterroles", _cluster_role(name, rules)))
        objects.append(("clusterrolebindings", _cluster_binding(name, group)))
    # system:public-info-viewer is bound to authenticated users too.
    objects[-1][1]["subjects"].insert(
        0, {"apiGroup": RBAC_GROUP, "kind": "Group", "name": "system:authenticated"}
    )
    return objects


# -- validation the schema cannot express (pkg/apis/rbac/validation) ----------------------

Cause = tuple[str, str, str]


def _rule_causes(rule: Mapping[str, Any], path: str, namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    if not rule.get("verbs"):
        causes.append(
            (
                "FieldValueRequired",
                f"{path}.verbs",
                "Required value: verbs must contain at least one value",
            )
        )
    urls = rule.get("nonResourceURLs") or []
    if urls:
        shown = json.dumps(list(urls))
        if namespaced:
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{path}.nonResourceURLs",
                    f"Invalid value: {shown}: namespaced rules cannot apply to non-resource URLs",
                )
            )
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{path}.nonResourceURLs",
                    f"Invalid value: {shown}: rules cannot apply to both regular resources and "
                    "non-resource URLs",
                )
            )
        return causes
    if not rule.get("apiGroups"):
        causes.append(
            (
                "FieldValueRequired",
                f"{path}.apiGroups",
                "Required value: resource rules must supply at least one api group",
            )
        )
    if not rule.get("resources"):
        causes.append(
            (
                "FieldValueRequired",
                f"{path}.resources",
                "Required value: resource rules must supply at least one resource",
            )
        )
    return causes


def _binding_causes(obj: Mapping[str, Any], cluster: bool) -> list[Cause]:
    causes: list[Cause] = []
    ref = obj.get("roleRef") or {}
    kinds = ("ClusterRole",) if cluster else ("Role", "ClusterRole")
    if ref.get("apiGroup") != RBAC_GROUP:
        causes.append(
            (
                "FieldValueNotSupported",
                "roleRef.apiGroup",
                f'Unsupported value: "{ref.get("apiGroup", "")}": supported values: "{RBAC_GROUP}"',
            )
        )
    if ref.get("kind") not in kinds:
        supported = ", ".join(f'"{k}"' for k in kinds)
        causes.append(
            (
                "FieldValueNotSupported",
                "roleRef.kind",
                f'Unsupported value: "{ref.get("kind", "")}": supported values: {supported}',
            )
        )
    if not ref.get("name"):
        causes.append(("FieldValueRequired", "roleRef.name", "Required value"))
    for index, subject in enumerate(obj.get("subjects") or []):
        path = f"subjects[{index}]"
        kind = subject.get("kind")
        if kind not in ("ServiceAccount", "User", "Group"):
            causes.append(
                (
                    "FieldValueNotSupported",
                    f"{path}.kind",
                    f'Unsupported value: "{kind or ""}": supported values: "ServiceAccount", '
                    '"User", "Group"',
                )
            )
        if not subject.get("name"):
            causes.append(("FieldValueRequired", f"{path}.name", "Required value"))
        if kind == "ServiceAccount" and cluster and not subject.get("namespace"):
            causes.append(("FieldValueRequired", f"{path}.namespace", "Required value"))
    return causes


def rbac_object_causes(obj: Mapping[str, Any]) -> list[Cause]:
    """What the API server's RBAC validation refuses in ``obj`` (any kind; [] for others)."""
    kind = obj.get("kind")
    if kind in ("Role", "ClusterRole"):
        return [
            cause
            for index, rule in enumerate(obj.get("rules") or [])
            for cause in _rule_causes(rule, f"rules[{index}]", kind == "Role")
        ]
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        return _binding_causes(obj, kind == "ClusterRoleBinding")
    return []
