"""The HTTP face of the emulator: path routing, verbs, watch streams, faults."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import table
from .patch import check_patch_type
from .resources import RESOURCES
from .status import ApiError, status_body
from .wire import (
    api_resource,
    dry_run_requested,
    json_response,
    objects_response,
    openapi_response,
    read_body,
    server_version,
)

if TYPE_CHECKING:
    from .server import KubeEmulator

__all__ = ["build_app", "server_version"]

_JSON = "application/json"
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _route(path: str) -> tuple[str | None, str | None, str | None, str | None]:
    """``/api/v1/...`` -> (resource, namespace, name, subresource)."""
    parts = path.strip("/").split("/")[2:]
    if not parts:
        return None, None, None, None
    if parts[0] == "namespaces" and len(parts) >= 3:
        if parts[2] in ("status", "finalize") and len(parts) == 3:
            return "namespaces", None, parts[1], parts[2]
        namespace, rest = parts[1], parts[2:]
        return (
            rest[0],
            namespace,
            (rest[1] if len(rest) > 1 else None),
            ("/".join(rest[2:]) or None),
        )
    if parts[0] == "namespaces":
        return "namespaces", None, (parts[1] if len(parts) > 1 else None), None
    if len(parts) == 1:
        return parts[0], None, None, None
    # A cluster-scoped object (nodes/NAME[/status]); dispatch refuses namespaced kinds here.
    return parts[0], None, parts[1], ("/".join(parts[2:]) or None)


def _verb(method: str, name: str | None, query: Any) -> str:
    if method == "GET":
        if name:
            return "get"
        return "watch" if str(query.get("watch", "")).lower() in ("true", "1") else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    raise ApiError(405, "the server does not allow this method on the requested resource")


def _int(query: Any, key: str) -> int | None:
    value = query.get(key)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError.bad_request(f"invalid value for {key}: {value!r}") from None


def build_app(emulator: KubeEmulator) -> web.Application:
    store, faults, counters = emulator.store, emulator.faults, emulator.counters

    async def discovery(request: web.Request) -> web.Response:
        path = request.path.rstrip("/")
        if path == "/api":
            return json_response(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}
                    ],
                }
            )
        if path == "/api/v1":
            return json_response(
                {
                    "kind": "APIResourceList",
                    "groupVersion": "v1",
                    "resources": [e for r in RESOURCES.values() for e in api_resource(r)],
                }
            )
        if path == "/apis":
            groups = emulator.access.api_groups() + emulator.groups.api_groups()
            return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        try:
            if (group := emulator.groups.discovery(path)) is not None:
                return json_response(group)
        except ApiError as exc:
            return json_response(exc.body, exc.code)
        if path == "/version":
            return json_response(server_version(emulator.kubernetes_version))
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        documents = (  # the custom resources' schemas, built only when asked for
            emulator.custom_resources.openapi_documents(emulator.kubernetes_version)
            if path.startswith("/openapi/v3")
            else None
        )
        if (
            served := openapi_response(request, emulator.kubernetes_version, documents)
        ) is not None:
            return served
        return json_response(
            status_body(404, "the server could not find the requested resource"), 404
        )

    async def watch(
        request: web.Request, resource: str, namespace: str | None, started: float
    ) -> web.StreamResponse:
        query = request.query
        rtype = store.resource_type(resource)
        as_table = table.negotiate(request.headers.get("Accept", ""))
        if rtype.printer is None and resource not in table.PRINTED:
            as_table = None  # as objects_response answers a list of this kind

        async def write_event(resp: web.StreamResponse, kind: str, obj: dict[str, Any]) -> None:
            if as_table is not None and kind != "ERROR":  # each object as a one-row Table
                obj = table.to_table(
                    resource,
                    [obj],
                    obj["metadata"].get("resourceVersion"),
                    version=as_table,
                    include_object=query.get("includeObject"),
                    printer=rtype.printer,
                )
            await resp.write(_dumps({"type": kind, "object": obj}).encode() + b"\n")

        if "sendInitialEvents" in query:  # WatchList: not modelled, refused as without the gate
            raise ApiError.invalid(
                "ListOptions.meta.k8s.io",
                "",
                [
                    (
                        "FieldValueForbidden",
                        "sendInitialEvents",
                        "Forbidden: sendInitialEvents is forbidden for watch unless the "
                        "WatchList feature gate is enabled",
                    )
                ],
            )
        timeout = _int(query, "timeoutSeconds") or emulator.watch_timeout
        resp = web.StreamResponse(headers={"Content-Type": _JSON})
        try:
            watcher, initial = store.watch(
                resource,
                namespace,
                query.get("resourceVersion"),
                query.get("labelSelector"),
                query.get("fieldSelector"),
            )
        except ApiError as exc:
            if exc.code != 410:
                raise
            await resp.prepare(request)
            await write_event(resp, "ERROR", exc.body)
            return resp
        counters.timed("watch", time.perf_counter() - started)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # BOOKMARKs (asked for with allowWatchBookmarks) every bookmark_interval and at the
        # end: the newest resourceVersion, sent only while nothing is queued, so the client
        # has seen every change up to it. A watch that ends with changes still queued (its
        # writer behind a slow reader) ends without one: the client resumes from the last
        # change it was sent, and the history replays the rest, as from an API server.
        bookmarks = as_table is None and query.get("allowWatchBookmarks", "") in ("true", "1")
        next_bookmark = loop.time() + emulator.bookmark_interval

        async def bookmark() -> None:
            meta = {"resourceVersion": str(store.rv)}
            marker = {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": meta}
            await resp.write(_dumps({"type": "BOOKMARK", "object": marker}).encode() + b"\n")

        try:
            await resp.prepare(request)
            for kind, obj in initial:
                await write_event(resp, kind, obj)
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    if bookmarks and watcher.queue.empty():
                        await bookmark()
                    break
                if not watcher.queue.empty():  # queued changes first, without waiting
                    change = watcher.queue.get_nowait()
                elif bookmarks and loop.time() >= next_bookmark:
                    await bookmark()
                    next_bookmark = loop.time() + emulator.bookmark_interval
                    continue
                else:
                    wait = min(remaining, next_bookmark - loop.time()) if bookmarks else remaining
                    try:
                        change = await asyncio.wait_for(watcher.queue.get(), max(wait, 0.001))
                    except TimeoutError:
                        continue
                if change is None:  # emulator stopping, or API going down
                    break
                lag = faults.lag_of(resource)
                if lag > 0:
                    await asyncio.sleep(max(0.0, change.at + lag - time.monotonic()))
                event_type = watcher.translate(change)
                if event_type:
                    await write_event(resp, event_type, change.obj)
        except (ConnectionError, asyncio.CancelledError):
            # The watcher went away (a hub stopped, or dropped its connection): aiohttp
            # raises ConnectionResetError, or a bare ConnectionError("Connection lost")
            # when a write waited for a full send buffer to drain.
            pass
        finally:
            store.unwatch(watcher)
        return resp

    async def dispatch(
        request: web.Request,
        verb: str,
        resource: str,
        namespace: str | None,
        name: str | None,
        sub: str | None,
        started: float,
    ) -> web.StreamResponse:
        query = request.query
        rtype = store.resource_type(resource)
        if resource == "pods" and sub in emulator.pod_subresources:  # the kubelet's streams
            return await emulator.pod_subresources[sub](request, namespace or "", name or "")
        if sub == "log" and resource == "pods" and verb == "get":
            store.get("pods", namespace, name or "")
            return web.Response(text=emulator.pod_log(namespace or "", name or ""))
        if sub not in (None, "status") or (sub == "status" and not rtype.status_subresource):
            raise ApiError(404, "the server could not find the requested resource")
        if rtype.namespaced and namespace is None and verb not in ("list", "watch"):
            raise ApiError(404, "the server could not find the requested resource")
        if sub is None and verb not in rtype.verbs:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        if verb == "patch":  # the patch type is checked before the object is looked up
            check_patch_type(
                request.headers.get("Content-Type", "").split(";")[0].strip(),
                strategic=rtype.strategic_merge,
            )
        dry_run = dry_run_requested(query.getall("dryRun", []), verb)
        field_validation = query.get("fieldValidation")
        headers: dict[str, str] = {}

        def warn(warnings: list[str]) -> None:
            if warnings:
                headers["Warning"] = ", ".join(f'299 - "{w}"' for w in warnings)

        if verb == "watch":
            return await watch(request, resource, namespace, started)
        if verb == "list":
            items, rv = store.list(
                resource, namespace, query.get("labelSelector"), query.get("fieldSelector")
            )
            listed = {
                "kind": f"{rtype.kind}List",
                "apiVersion": rtype.api_version,
                "metadata": {"resourceVersion": str(rv)},
                "items": items,
            }
            return objects_response(request, rtype, listed)
        if verb == "get":
            return objects_response(request, rtype, store.get(resource, namespace, name or ""))
        if verb == "create":
            if name:
                raise ApiError(
                    405, "the server does not allow this method on the requested resource"
                )
            obj, warnings = store.create(
                resource,
                namespace,
                await read_body(request),
                field_validation=field_validation,
                dry_run=dry_run,
            )
            warn(warnings)
            return json_response(obj, 201, headers)
        if verb == "update":
            obj, warnings = store.replace(
                resource,
                namespace,
                name or "",
                await read_body(request),
                subresource=sub,
                field_validation=field_validation,
                dry_run=dry_run,
            )
            warn(warnings)
            return json_response(obj, 200, headers)
        if verb == "patch":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            obj, warnings = store.patch(
                resource,
                namespace,
                name or "",
                await read_body(request, patch=True),
                content_type,
                subresource=sub,
                field_validation=field_validation,
                dry_run=dry_run,
            )
            warn(warnings)
            return json_response(obj, 200, headers)
        options = await read_body(request) or {}
        grace = _int(query, "gracePeriodSeconds")
        if grace is None:
            grace = options.get("gracePeriodSeconds")
        propagation = query.get("propagationPolicy") or options.get("propagationPolicy")
        if verb == "deletecollection":
            deleted = store.delete_collection(
                resource,
                namespace,
                query.get("labelSelector"),
                query.get("fieldSelector"),
                grace,
                dry_run=dry_run or dry_run_requested(options.get("dryRun") or [], verb),
            )
            return json_response(
                {
                    "kind": f"{rtype.kind}List",
                    "apiVersion": rtype.api_version,
                    "metadata": {"resourceVersion": str(store.rv)},
                    "items": deleted,
                }
            )
        obj = store.delete(
            resource,
            namespace,
            name or "",
            grace_period=grace,
            propagation=propagation,
            preconditions=options.get("preconditions"),
            dry_run=dry_run or dry_run_requested(options.get("dryRun") or [], verb),
        )
        if rtype.returns_object_on_delete or obj["metadata"].get("deletionTimestamp"):
            return json_response(obj)  # graceful kinds, and objects finalizers hold
        details = {"name": name, "kind": rtype.resource_name, "uid": obj["metadata"]["uid"]}
        if rtype.group:
            details["group"] = rtype.group
        return json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            }
        )

    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        path = request.path
        # Authentication, RBAC, and the rbac/authorization API groups (rbac_api.py).
        if (answered := await emulator.access.handle(request)) is not None:
            return answered
        try:
            grouped = emulator.groups.route(path)  # /apis/<group>/<version>/... served here
        except ApiError as exc:
            return json_response(exc.body, exc.code)
        if grouped is None and not path.startswith("/api/v1/") and path.rstrip("/") != "/api/v1/":
            return await discovery(request)
        verb, resource = "unknown", "unknown"
        try:
            resource_, namespace, name, sub = grouped or _route(path)
            if resource_ is None:
                return await discovery(request)
            if grouped is None and resource_ not in RESOURCES:  # /api/v1/roles, /api/v1/leases
                raise ApiError(404, "the server could not find the requested resource")
            resource = resource_ if sub is None else f"{resource_}/{sub}"
            verb = _verb(request.method, name, request.query)
            counters.count(verb, resource)
            if emulator.unavailable:
                counters.fault("down", verb, resource)
                raise ApiError(
                    503,
                    "the server is currently unable to handle the request",
                    "ServiceUnavailable",
                )
            verdict = faults.decide(verb, resource)
            if verdict.delay:
                counters.fault("latency", verb, resource)
                await asyncio.sleep(verdict.delay)
            if verdict.reset:
                counters.fault("reset", verb, resource)
                if request.transport is not None:
                    request.transport.abort()
                raise web.HTTPServiceUnavailable()  # never reaches the client
            if verdict.error is not None:
                rule = verdict.error
                counters.fault("error", verb, resource)
                headers = {}
                details = None
                if rule.retry_after is not None:
                    headers["Retry-After"] = str(rule.retry_after)
                    details = {"retryAfterSeconds": rule.retry_after}
                messages = {
                    429: "the server has received too many requests and has asked us "
                    "to try again later",
                    503: "the server is currently unable to handle the request",
                }
                raise ApiError(
                    rule.status,
                    messages.get(rule.status, "Internal error occurred: injected fault"),
                    details=details,
                    headers=headers,
                )
            response = await dispatch(request, verb, resource_, namespace, name, sub, started)
            if verdict.lost:
                counters.fault("lost", verb, resource)
                if request.transport is not None:
                    request.transport.abort()
                raise web.HTTPServiceUnavailable()  # never reaches the client
        except ApiError as exc:
            response = json_response(exc.body, exc.code, exc.headers)
        if verb != "watch":
            counters.timed(verb, time.perf_counter() - started)
        return response

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
