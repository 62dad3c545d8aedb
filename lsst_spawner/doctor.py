"""``lsst-spawner doctor``: check a configuration against the live cluster and registry.

Every check runs, and every problem is reported:

- the lab settings and the rest of the configuration (what ``check-config`` checks);
- each permission of the minimal Role (:mod:`lsst_spawner.rbac`), asked with a
  SelfSubjectAccessReview as the hub's own kubeconfig user; a missing one is printed
  with the Role rule that grants it;
- that the lab namespace exists (read, or, when the hub may not read namespaces, a
  dry-run create of a Secret there, which writes nothing);
- that the image registry answers with the configured credentials, and that the
  recommended image's manifest resolves to a digest;
- the prepull image x node table (``prepull-status``); with prepull on, that the hub
  may list the nodes.

The Kubernetes and registry requests are the I/O edge; what to check comes from the
pure rule computation and settings.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DoctorReport", "run_doctor"]

#: How long any one cluster or registry request may take.
REQUEST_TIMEOUT = 10.0


@dataclass
class DoctorReport:
    """What was found: problems (each a line) and the checks that passed."""

    problems: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    #: Tables printed after the checks (the prepull image x node table).
    notes: list[str] = field(default_factory=list)


def _namespace(config: Mapping[str, Any], context_namespace: str | None) -> str:
    for section in ("LSSTSpawner", "KubeSpawner"):
        has = getattr(config, "_has_section", None)
        if has is not None and not has(section):
            continue
        value = (config.get(section) or {}).get("namespace")
        if value:
            return str(value)
    return context_namespace or "default"


async def _kube_checks(
    config: Mapping[str, Any], kubeconfig: str | None, report: DoctorReport
) -> None:
    from kubernetes_asyncio import client
    from kubernetes_asyncio.client.exceptions import ApiException
    from kubernetes_asyncio.config import ConfigException, load_kube_config

    from .operator.manifests import hub_role_for_mode

    configuration = client.Configuration()
    try:
        loader = await load_kube_config(
            config_file=kubeconfig, client_configuration=configuration, persist_config=False
        )
    except (ConfigException, OSError) as error:
        report.problems.append(f"kubeconfig: cannot load it: {error}")
        return
    current = loader.current_context
    context = (current or {}).get("context") or {}
    namespace = _namespace(config, context.get("namespace"))
    role = hub_role_for_mode(config)
    async with client.ApiClient(configuration) as api:
        authz = client.AuthorizationV1Api(api)
        try:
            for rule in role["rules"]:
                for resource in rule["resources"]:
                    missing = []
                    for verb in rule["verbs"]:
                        review: Any = {
                            "apiVersion": "authorization.k8s.io/v1",
                            "kind": "SelfSubjectAccessReview",
                            "spec": {
                                "resourceAttributes": {
                                    "namespace": namespace,
                                    "verb": verb,
                                    "group": "",
                                    "resource": resource,
                                }
                            },
                        }
                        answer = await asyncio.wait_for(
                            authz.create_self_subject_access_review(review), REQUEST_TIMEOUT
                        )
                        if not answer.status.allowed:
                            missing.append(verb)
                    if missing:
                        grant = {"apiGroups": [""], "resources": [resource], "verbs": missing}
                        report.problems.append(
                            f"permission: the hub cannot {', '.join(missing)} {resource} in "
                            f"namespace {namespace}; add this rule to its Role: "
                            f"{json.dumps(grant)}"
                        )
                    else:
                        report.passed.append(f"permission: {resource}: {', '.join(rule['verbs'])}")
        except (ApiException, OSError, TimeoutError) as error:
            report.problems.append(f"Kubernetes API: {configuration.host} did not answer: {error}")
            return
        await _namespace_check(client.CoreV1Api(api), namespace, report)


async def _namespace_check(v1: Any, namespace: str, report: DoctorReport) -> None:
    from kubernetes_asyncio.client.exceptions import ApiException

    try:
        await asyncio.wait_for(v1.read_namespace(namespace), REQUEST_TIMEOUT)
    except ApiException as error:
        if error.status == 404:
            report.problems.append(f"namespace: {namespace} does not exist")
            return
        if error.status != 403:
            report.problems.append(f"namespace: reading {namespace} failed: {error.status}")
            return
        # z2jh's hub may not read namespaces; a dry-run create tells without writing.
        probe = {"metadata": {"name": "lsst-spawner-doctor-probe"}}
        try:
            await asyncio.wait_for(
                v1.create_namespaced_secret(namespace, probe, dry_run="All"), REQUEST_TIMEOUT
            )
        except ApiException as probe_error:
            if probe_error.status == 404:
                report.problems.append(f"namespace: {namespace} does not exist")
                return
            if probe_error.status != 409:  # 403: the permission check says it
                return
    report.passed.append(f"namespace: {namespace} exists")


async def _registry_checks(settings: Any, report: DoctorReport) -> None:
    from .images.cache import redact

    source = settings.make_image_source()
    tag = settings.image_menu_policy().recommended_tag
    try:
        try:
            tags = await asyncio.wait_for(source.list_tags(), REQUEST_TIMEOUT)
        except Exception as error:  # any failure of the source is the finding
            report.problems.append(
                f"registry: {source.image_base} did not answer with the configured "
                f"credentials: {redact(str(error)) or type(error).__name__}"
            )
            return
        report.passed.append(f"registry: {source.image_base} lists {len(tags)} tag(s)")
        try:
            digests = await asyncio.wait_for(source.resolve_digests([tag]), REQUEST_TIMEOUT)
        except Exception as error:
            report.problems.append(f"image: resolving {source.image_base}:{tag} failed: {error}")
            return
        if tag in digests:
            report.passed.append(f"image: {source.image_base}:{tag} is {digests[tag]}")
        else:
            report.problems.append(
                f"image: the recommended image {source.image_base}:{tag} has no manifest in "
                "the registry (LSSTSpawner.image_recommended_tag)"
            )
    finally:
        close = getattr(source, "aclose", None)
        if close is not None:
            await close()


async def run_doctor(config: Any, kubeconfig: str | None = None) -> DoctorReport:
    """Run every check; never raises for what it finds."""
    from .checks import check_config, spawner_settings
    from .config import ConfigError, problems_as_lines

    report = DoctorReport()
    problems, _ = check_config(config)
    report.problems.extend(f"settings: {line}" for line in problems_as_lines(problems))
    if not problems:
        report.passed.append("settings: no problems (lab volumes, sizes, NSS, images, ...)")
    await _kube_checks(config, kubeconfig, report)
    try:
        settings = spawner_settings(config)
    except ConfigError as error:
        report.problems.append(f"registry: not checked: {error}")
    else:
        await _registry_checks(settings, report)
    await _prepull_checks(config, kubeconfig, report)
    return report


async def _prepull_checks(config: Any, kubeconfig: str | None, report: DoctorReport) -> None:
    """The prepull table (``prepull-status``); its problems count only with prepull on."""
    from .kube.prepull_command import prepull_report
    from .rbac import features_for_config

    enabled = features_for_config(config)[0].prepull
    table, problems = await prepull_report(config, kubeconfig)
    if table is not None:
        report.notes.append("prepull: which lab nodes have the menu's radio images\n" + table)
    if enabled:
        report.problems.extend(problems)
        if not problems:
            report.passed.append("prepull: the hub can list the nodes")
    else:
        report.notes.append("prepull: off (LSSTSpawner.image_prepull_enabled)")
