"""RBAC in the emulator: authentication, every rule feature, the apiserver's 403 wording.

Each denial is compared with the message k8s.io/apiserver writes
(``responsewriters.forbiddenMessage`` wrapped by ``errors.NewForbidden``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lsst_spawner.rbac import Z2JH_HUB_ROLE_RULES
from lsst_spawner.testing.kube import KubeEmulator
from lsst_spawner.testing.kube.authn import ADMIN_TOKEN
from lsst_spawner.testing.kube.fixtures import KubeHandle

NS = "jhub"
HUB = f"system:serviceaccount:{NS}:hub"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str, token: str | None) -> None:
        self.session, self.url, self.token = session, url, token

    async def __call__(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        headers = {"Content-Type": content_type}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body)
        async with self.session.request(
            method, self.url + path, data=data, headers=headers
        ) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text.startswith("{") else text)


@pytest.fixture
async def emulator() -> AsyncIterator[KubeEmulator]:
    emu = KubeEmulator(namespaces=("default", NS, "other"))
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def hub_with(emulator: KubeEmulator, session: aiohttp.ClientSession, rules: Any) -> Client:
    token = emulator.access.grant_role(NS, "hub", rules, service_account=(NS, "hub"))
    return Client(session, emulator.url, token)


def admin(emulator: KubeEmulator, session: aiohttp.ClientSession) -> Client:
    return Client(session, emulator.url, ADMIN_TOKEN)


def forbidden(status: int, body: Any, message: str) -> None:
    assert status == 403, body
    assert body["kind"] == "Status"
    assert body["reason"] == "Forbidden"
    assert body["code"] == 403
    assert body["message"] == message


POD = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
CM = {"metadata": {"name": "c"}, "data": {"k": "v"}}


# -- each verb denied, worded as the API server words it --------------------------------


@pytest.mark.parametrize(
    ("verb", "method", "path", "body", "message"),
    [
        ("get", "GET", "/configmaps/c", None, 'configmaps "c" is forbidden'),
        ("list", "GET", "/configmaps", None, "configmaps is forbidden"),
        (
            "watch",
            "GET",
            "/configmaps?watch=true&timeoutSeconds=1",
            None,
            "configmaps is forbidden",
        ),
        ("create", "POST", "/configmaps", CM, "configmaps is forbidden"),
        ("update", "PUT", "/configmaps/c", CM, 'configmaps "c" is forbidden'),
        ("patch", "PATCH", "/configmaps/c", {"data": {}}, 'configmaps "c" is forbidden'),
        ("delete", "DELETE", "/configmaps/c", None, 'configmaps "c" is forbidden'),
        ("deletecollection", "DELETE", "/configmaps", None, "configmaps is forbidden"),
    ],
)
async def test_each_verb_is_denied_with_the_apiservers_words(
    emulator: KubeEmulator,
    session: aiohttp.ClientSession,
    verb: str,
    method: str,
    path: str,
    body: Any,
    message: str,
) -> None:
    emulator.store.create("configmaps", NS, dict(CM))
    # Every verb on pods, none on configmaps.
    hub = hub_with(emulator, session, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}])
    content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
    status, reply = await hub(method, f"/api/v1/namespaces/{NS}{path}", body, content_type)
    forbidden(
        status,
        reply,
        f'{message}: User "{HUB}" cannot {verb} resource "configmaps" in API group "" '
        f'in the namespace "{NS}"',
    )
    name = "c" if '"c"' in message else None
    assert reply.get("details") == (
        {"kind": "configmaps", "name": name} if name else {"kind": "configmaps"}
    )
    # The same request on pods (the verb granted) is not refused by RBAC.
    status, _ = await hub(
        method,
        f"/api/v1/namespaces/{NS}{path.replace('configmaps', 'pods')}",
        POD if body is not None and method != "PATCH" else body,
        content_type,
    )
    assert status != 403
    assert emulator.access.authorizer.decisions["denied"] == 1


async def test_the_issue_example_word_for_word(
    emulator: KubeEmulator, session: aiohttp.ClientSession
) -> None:
    hub = hub_with(emulator, session, Z2JH_HUB_ROLE_RULES)
    status, reply = await hub("POST", f"/api/v1/namespaces/{NS}/configmaps", CM)
    forbidden(
        status,
        reply,
        'configmaps is forbidden: User "system:serviceaccount:jhub:hub" cannot create resource '
        '"configmaps" in API group "" in the namespace "jhub"',
    )


# -- rule features ---------------------------------------------------------------------


async def test_verbs_are_matched_one_by_one_and_star_matches_all(
    emulator: KubeEmulator, session: aiohttp.ClientSession
) -> None:
    hub = hub_with(
        emulator, session, [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]
    )
    assert (await hub("POST", f"/api/v1/namespaces/{NS}/configmaps", CM))[0] == 201
    status, reply = await hub("GET", f"/api/v1/namespaces/{NS}/configmaps/c")
    forbidden(
        status,
        reply,
        f'configmaps "c" is forbidden: User "{HUB}" cannot get resource "configmaps" in API '
        f'group "" in the namespace "{NS}"',
    )
    hub = hub_with(
        emulator, session, [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]
    )
    assert (await hub("GET", f"/api/v1/namespaces/{NS}/configmaps/c"))[0] == 200
    assert (await hub("DELETE", f"/api/v1/namespaces/{NS}/configmaps/c"))[0] == 200


async def test_api_groups_must_match(
    emulator: KubeEmulator, session: aiohttp.ClientSession
) -> None:
    # A rule for another group does not grant the core group's pods.
    hub = hub_with(
        emulator, session, [{"apiGroups": ["apps"], "resources": ["pods"], "verbs": ["list"]}]
    )
    status, reply = await hub("GET", f"/api/v1/namespaces/{NS}/pods")
    forbidden(
        status,
        reply,
        f'pods is forbidden: User "{HUB}" cannot list resource "pods" in API group "" in the '
        f'namespace "{NS}"',
    )
    hub = hub_with(
        emulator, session, [{"apiGroups": ["*"], "resources": ["pods"], "verbs": ["list"]}]
    )
    assert (await hub("GET", f"/api/v1/namespaces/{NS}/pods"))[0] == 200
    # The RBAC group's resources are named with their group.
    status, reply = await hub("GET", f"{RBAC}/namespaces/{NS}/roles")
    forbidden(
        status,
        reply,
        f'roles.rbac.authorization.k8s.io is forbidden: User "{HUB}" cannot list resource '
        f'"roles" in API group "rbac.authorization.k8s.io" in the namespace "{NS}"',
    )
    assert reply["details"] == {"group": "rbac.authorization.k8s.io", "kind": "roles"}


async def test_resources_star_and_subresources(
    emulator: KubeEmulator, session: aiohttp.ClientSession
) -> None:
    emulator.store.create("pods", NS, json.loads(json.dumps(POD)))
    hub = hub_with(emulator, session, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}])
    # "pods" does not grant its subresources.
    status, reply = await hub("GET", f"/api/v1/namespaces/{NS}/pods/p/log")
    forbidden(
        status,
        reply,
        f'pods "p" is forbidden: User "{HUB}" cannot get resource "pods/log" in API group "" in '
        f'the namespace "{NS}"',
    )
    assert reply["details"] == {"kind": "pods", "name": "p"}
    status, reply = await hub("PUT", f"/api/v1/namespaces/{NS}/pods/p/status", POD)
    forbidden(
        status,
        reply,
        f'pods "p" is forbidden: User "{HUB}" cannot update resource "pods/status" in API group '
        f'"" in the namespace "{NS}"',
    )
    status, reply = await hub("POST", f"/api/v1/namespaces/{NS}/pods/p/exec?command=id")
    forbidden(
        status,
        reply,
        f'pods "p" is forbidden: User "{HUB}" cannot create resource "pods/exec" in API group '
        f'"" in the namespace "{NS}"',
    )
    hub = hub_with(
        emulator,
        session,
        [
            {"apiGroups": [""], "resources": ["pods/log", "*/status"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
        ],
    )
    assert (await hub("GET", f"/api/v1/namespaces/{NS}/pods/p/log"))[0] == 200
    assert (await hub("GET", f"/api/v1/namespaces/{NS}/pods/p/status"))[0] == 200
    # Allowed by RBAC; the emulator has no exec, so it answers 404 instead of 403.
    assert (await hub("POST", f"/api/v1/namespaces/{NS}/pods/p/exec?command=id"))[0] == 404
    # A subresource rule does not grant the resource itself.
    status, _ = await hub("GET", f"/api/v1/namespaces/{NS}/pods/p")
    assert status == 403
    hub = hub_with(emulator, session, [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}])
    for path in ("pods/p", "pods/p/log", "pods/p/status"):
        assert (await hub("GET", f"/api/v1/namespaces/{NS}/{path}"))[0] == 200, path


async def test_resource_names(emulator: KubeEmulator, session: aiohttp.ClientSession) -> None:
    for name in ("allowed", "other"):
        emulator.store.create("configmaps", NS, {"metadata": {"name": name}})
    hub = hub_with(
        emulator,
        session,
        [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["allowed"],
                "verbs": ["get", "list", "delete", "create"],
            }
        ],
    )
    assert (await hub("GET", f"/api/v1/namespaces/{NS}/configmaps/allowed"))[0] == 200
    status, reply = await hub("GET", f"/api/v1/namespaces/{NS}/configmaps/other")
    forbidden(
        status,
        reply,
        f'configmaps "other" is forbidden: User "{HUB}" cannot get resource "configmaps" in API '
        f'group "" in the namespace "{NS}"',
    )
    # A list has no name, so resourceNames never grant it, nor a create ...
    status, reply = await hub("GET", f"/api/v1/namespaces/{NS}/configmaps")
    assert status == 403
    assert reply["message"].startswith("configmaps is forbidden: ")
    assert (
        await hub("POST", f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": "allowed"}})
    )[0] == 403
    # ... except a list or watch narrowed to that name by a field selector (the apiserver reads it).
    selected = f"/api/v1/namespaces/{NS}/configmaps?fieldSelector=metadata.name%3Dallowed"
    assert (await hub("GET", selected))[0] == 200
    assert (await hub("DELETE", f"/api/v1/namespaces/{NS}/configmaps/allowed"))[0] == 200


async def test_cluster_scope_needs_a_cluster_role_binding(
    emulator: KubeEmulator, session: aiohttp.ClientSession
) -> None:
    hub = hub_with(
        emulator, session, [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["*"]}]
    )
    # A Role's rules apply in its namespace only: the namespace object itself is "in" it ...
    assert (await hub("GET", f"/api/v1/namespaces/{NS}"))[0] == 200
    status, reply = await hub("GET", "/api/v1/namespaces/other")
    forbidden(
        status,
        reply,
        f'namespaces "other" is forbidden: User "{HUB}" cannot get resource "namespaces" in API '
        'group "" in the namespace "other"',
    )
    # ... and listing namespaces is cluster-scoped.
    status, reply = await hub("GET", "/api/v1/namespaces")
    forbidden(
        status,
        reply,
        f'namespaces is forbidden: User "{HUB}" cannot list resource "namespaces" in API group '
        '"" at the cluster scope',
    )
    status, reply = await hub("GET", "/api/v1/pods")  # all namespaces: cluster scope too
    assert reply["message"].endswith(
        'cannot list resource "pods" in API group "" at the cluster scope'
    )
    root = admin(emulator, session)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "ns-reader"},
        "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}],
    }
    assert (await root("POST", f"{RBAC}/clusterroles", role))[0] == 201
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "ns-reader"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "ns-reader",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "hub", "namespace": NS}],
    }
    assert (await root("POST", f"{RBAC}/clusterrolebindings", binding))[0] == 201
    assert (await hub("GET", "/api/v1/namespaces"))[0] == 200


async def test_role_binding_to_a_cluster_role_applies_in_its_namespace_only(
    emulator: KubeEmulator, session: aiohttp.ClientSession
) -> None:
    root = admin(emulator, session)
    role = {
        "metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    }
    assert (await root("POST", f"{RBAC}/clusterroles", role))[0] == 201
    binding = {
        "metadata": {"name": "readers"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "pod-reader",
        },
        # Subjects by group and by user name, not only service accounts.
        "subjects": [
            {
                "kind": "Group",
                "name": "system:serviceaccounts:jhub",
                "apiGroup": "rbac.authorization.k8s.io",
            },
            {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
        ],
    }
    assert (await root("POST", f"{RBAC}/namespaces/{NS}/rolebindings", binding))[0] == 201
    hub = Client(session, emulator.url, emulator.access.authn.issue_service_account(NS, "hub"))
    assert (await hub("GET", f"/api/v1/namespaces/{NS}/pods"))[0] == 200
    assert (await hub("GET", "/api/v1/namespaces/other/pods"))[0] == 403
    from lsst_spawner.testing.kube.rbac import UserInfo

    alice = Client(session, emulator.url, emulator.access.authn.issue(UserInfo("alice")))
    assert (await alice("GET", f"/api/v1/namespaces/{NS}/pods"))[0] == 200
    bob = Client(session, emulator.url, emulator.access.authn.issue(UserInfo("bob")))
    status, reply = await bob("GET", f"/api/v1/namespaces/{NS}/pods")
    forbidden(
        status,
        reply,
        f'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the '
        f'namespace "{NS}"',
    )


async def test_a_binding_to_a_missing_role_says_so(
    emulator: KubeEmulator, session: aiohttp.ClientSession
) -> None:
    hub = hub_with(emulator, session, [])
    emulator.store.delete("roles", NS, "hub")
    status, reply = await hub("GET", f"/api/v1/namespaces/{NS}/pods")
    forbidden(
        status,
        reply,
        f'pods is forbidden: User "{HUB}" cannot list resource "pods" in API group "" in the '
        f'namespace "{NS}": RBAC: role.rbac.authorization.k8s.io "hub" not found',
    )


async def test_rbac_objects_are_served_and_created_through_the_api(
    emulator: KubeEmulator, session: aiohttp.ClientSession
) -> None:
    root = admin(emulator, session)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "hub"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    }
    assert (await root("POST", f"{RBAC}/namespaces/{NS}/roles", role))[0] == 201
    binding = {
        "metadata": {"name": "hub"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "hub"},
        "subjects": [{"kind": "ServiceAccount", "name": "hub", "namespace": NS}],
    }
    assert (await root("POST", f"{RBAC}/namespaces/{NS}/rolebindings", binding))[0] == 201
    hub = Client(session, emulator.url, emulator.access.authn.issue_service_account(NS, "hub"))
    assert (await hub("GET", f"/api/v1/namespaces/{NS}/pods"))[0] == 200
    # Patching the Role takes effect at the next request.
    patch = {"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]}
    status, _ = await root(
        "PATCH", f"{RBAC}/namespaces/{NS}/roles/hub", patch, "application/merge-patch+json"
    )
    assert status == 200
    assert (await hub("GET", f"/api/v1/namespaces/{NS}/pods"))[0] == 403
    status, listed = await root("GET", f"{RBAC}/namespaces/{NS}/roles")
    assert listed["kind"] == "RoleList"
    assert listed["apiVersion"] == "rbac.authorization.k8s.io/v1"
    assert [r["metadata"]["name"] for r in listed["items"]] == ["hub"]
    # The bootstrap cluster roles are there, with names only RBAC allows (a colon).
    status, got = await root("GET", f"{RBAC}/clusterroles/system:basic-user")
    assert status == 200
    assert got["rules"][0]["resources"] == ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]
    # Validated by the schema: a rule without verbs is refused.
    bad = {"metadata": {"name": "bad"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}]}
    status, reply = await root("POST", f"{RBAC}/namespaces/{NS}/roles", bad)
    assert status == 422, reply
    assert "verbs" in reply["message"]
    # A kind in the wrong group, and RBAC kinds in the core group, do not exist.
    assert (await root("GET", f"/api/v1/namespaces/{NS}/roles"))[0] == 404
    assert (await root("GET", f"{RBAC}/namespaces/{NS}/pods"))[0] == 404
    assert (await root("DELETE", f"{RBAC}/namespaces/{NS}/roles/hub"))[0] == 200
    assert (await root("GET", f"{RBAC}/namespaces/{NS}/roles/hub"))[0] == 404


async def test_authentication(emulator: KubeEmulator, session: aiohttp.ClientSession) -> None:
    anonymous = Client(session, emulator.url, None)
    status, reply = await anonymous("GET", f"/api/v1/namespaces/{NS}/pods")
    forbidden(
        status,
        reply,
        'pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" '
        f'in the namespace "{NS}"',
    )
    status, reply = await anonymous("GET", "/api")
    forbidden(status, reply, 'forbidden: User "system:anonymous" cannot get path "/api"')
    assert (await anonymous("GET", "/version"))[0] == 200  # public info, as on a cluster
    wrong = Client(session, emulator.url, "not-a-token")
    status, reply = await wrong("GET", "/api")
    assert status == 401
    assert reply["message"] == "Unauthorized"
    assert reply["reason"] == "Unauthorized"
    hub = hub_with(emulator, session, [])
    assert (await hub("GET", "/api"))[0] == 200  # discovery for every authenticated user
    assert (await hub("GET", "/apis"))[0] == 200
    emulator.access.authn.revoke(hub.token or "")
    assert (await hub("GET", "/api"))[0] == 401


async def test_rbac_off_serves_everyone(session: aiohttp.ClientSession) -> None:
    emu = KubeEmulator(namespaces=(NS,), rbac=False)
    await emu.start()
    try:
        anonymous = Client(session, emu.url, None)
        assert (await anonymous("POST", f"/api/v1/namespaces/{NS}/configmaps", CM))[0] == 201
    finally:
        await emu.stop()


async def test_self_subject_reviews(emulator: KubeEmulator, session: aiohttp.ClientSession) -> None:
    hub = hub_with(emulator, session, Z2JH_HUB_ROLE_RULES)

    async def can(**attrs: str) -> bool:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": NS, **attrs}},
        }
        status, reply = await hub(
            "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review
        )
        assert status == 201, reply
        return bool(reply["status"]["allowed"])

    assert await can(verb="create", resource="pods")
    assert await can(verb="watch", resource="events")
    assert not await can(verb="create", resource="configmaps")
    assert not await can(verb="patch", resource="pods")
    assert not await can(verb="get", resource="pods", subresource="log")
    status, reply = await hub(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        {"kind": "SelfSubjectAccessReview", "spec": {}},
    )
    assert status == 422
    review = {
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "spec": {"namespace": NS},
    }
    status, reply = await hub(
        "POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", review
    )
    assert status == 201
    rules = reply["status"]["resourceRules"]
    for rule in Z2JH_HUB_ROLE_RULES:
        assert rule in rules


@pytest.mark.parametrize("kube_role", [list(Z2JH_HUB_ROLE_RULES)])
async def test_kube_api_hub_identity(kube_api: KubeHandle) -> None:
    from kubernetes_asyncio import client
    from kubernetes_asyncio.client.exceptions import ApiException

    assert kube_api.hub_user == f"system:serviceaccount:{kube_api.namespace}:hub"
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_secret(kube_api.namespace, {"metadata": {"name": "s"}})
        with pytest.raises(ApiException) as info:
            await v1.create_namespaced_config_map(kube_api.namespace, {"metadata": {"name": "c"}})
        assert info.value.status == 403
        message = json.loads(info.value.body)["message"]
        assert f'User "{kube_api.hub_user}" cannot create resource "configmaps"' in message
    async with kube_api.api_client(admin=True) as api:
        await client.CoreV1Api(api).create_namespaced_config_map(
            kube_api.namespace, {"metadata": {"name": "c"}}
        )
    kube_api.set_hub_role([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}])
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.read_namespaced_config_map("c", kube_api.namespace)
        with pytest.raises(ApiException):
            await v1.read_namespaced_secret("s", kube_api.namespace)


KUBECTL = shutil.which("kubectl")


def test_kubectl_auth_can_i(tmp_path: Path) -> None:
    """The real kubectl: can-i (SelfSubjectAccessReview), --list (rules review), get."""
    assert KUBECTL, "kubectl is on this machine (see MACHINE_NOTES)"
    emu = KubeEmulator(namespaces=("default", NS), tls=True).start_in_thread()
    try:
        token = emu.call(
            lambda: emu.access.grant_role(
                NS, "hub", Z2JH_HUB_ROLE_RULES, service_account=(NS, "hub")
            )
        )
        kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig", NS, token=token)

        def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        for verb, resource, answer in [
            ("create", "pods", "yes"),
            ("delete", "persistentvolumeclaims", "yes"),
            ("watch", "events", "yes"),
            ("create", "configmaps", "no"),
            ("patch", "pods", "no"),
            ("list", "namespaces", "no"),
        ]:
            done = kubectl("auth", "can-i", verb, resource)
            assert done.stdout.strip() == answer, (verb, resource, done.stdout, done.stderr)
            assert done.returncode == (0 if answer == "yes" else 1)
        listed = kubectl("auth", "can-i", "--list")
        assert listed.returncode == 0, listed.stderr
        lines = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
        assert "[get watch list create delete]" in lines["pods"]
        assert "[get watch list]" in lines["events"]
        assert "configmaps" not in lines
        refused = kubectl("create", "configmap", "x", "--from-literal=a=b")
        assert refused.returncode == 1
        assert (
            'configmaps is forbidden: User "system:serviceaccount:jhub:hub" cannot create resource '
            '"configmaps" in API group "" in the namespace "jhub"'
        ) in refused.stderr
    finally:
        emu.stop_thread()


async def test_rbac_objects_are_validated_as_the_apiserver_does(
    emulator: KubeEmulator, session: aiohttp.ClientSession
) -> None:
    root = admin(emulator, session)

    async def refused(path: str, body: Any, method: str = "POST") -> str:
        content = "application/merge-patch+json" if method == "PATCH" else "application/json"
        status, reply = await root(method, path, body, content)
        assert status == 422, reply
        assert reply["reason"] == "Invalid"
        return str(reply["message"])

    roles = f"{RBAC}/namespaces/{NS}/roles"
    message = await refused(roles, {"metadata": {"name": "r"}, "rules": [{"verbs": ["get"]}]})
    assert message == (
        'Role.rbac.authorization.k8s.io "r" is invalid: [rules[0].apiGroups: Required value: '
        "resource rules must supply at least one api group, rules[0].resources: Required value: "
        "resource rules must supply at least one resource]"
    )
    urls = {"metadata": {"name": "r"}, "rules": [{"nonResourceURLs": ["/x"], "verbs": ["get"]}]}
    assert "namespaced rules cannot apply to non-resource URLs" in await refused(roles, urls)
    both = {
        "metadata": {"name": "c"},
        "rules": [{"nonResourceURLs": ["/x"], "resources": ["pods"], "verbs": ["get"]}],
    }
    assert "both regular resources and non-resource URLs" in await refused(
        f"{RBAC}/clusterroles", both
    )
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}
    cluster_binding = {
        "metadata": {"name": "b"},
        "roleRef": ref,
        "subjects": [{"kind": "ServiceAccount", "name": "hub"}],
    }
    message = await refused(f"{RBAC}/clusterrolebindings", cluster_binding)
    assert 'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"' in message
    assert "subjects[0].namespace: Required value" in message
    bad_subject = {
        "metadata": {"name": "b"},
        "roleRef": ref,
        "subjects": [{"kind": "Robot", "name": "x"}],
    }
    assert 'subjects[0].kind: Unsupported value: "Robot"' in await refused(
        f"{RBAC}/namespaces/{NS}/rolebindings", bad_subject
    )
    good = {"metadata": {"name": "b"}, "roleRef": ref, "subjects": [{"kind": "User", "name": "x"}]}
    assert (await root("POST", f"{RBAC}/namespaces/{NS}/rolebindings", good))[0] == 201
    message = await refused(
        f"{RBAC}/namespaces/{NS}/rolebindings/b", {"roleRef": {**ref, "name": "other"}}, "PATCH"
    )
    assert message == (
        'RoleBinding.rbac.authorization.k8s.io "b" is invalid: roleRef: Invalid value: '
        "cannot change roleRef"
    )
    # Subjects may change.
    status, _ = await root(
        "PATCH",
        f"{RBAC}/namespaces/{NS}/rolebindings/b",
        {"subjects": [{"kind": "Group", "name": "g"}]},
        "application/merge-patch+json",
    )
    assert status == 200
