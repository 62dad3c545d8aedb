"""lsst-spawner render-pod: every object a spawn would create, offline, or a clear refusal."""

import base64
import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from lsst_spawner.cli import main
from lsst_spawner.commands import RENDERED_API_TOKEN
from lsst_spawner.testing.kube.podenv import resolve_lab_env

DIGEST = "sha256:" + "b" * 64
CONFIG = f"""
c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.namespace = "labs"
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
c.LSSTSpawner.static_image_tags = ["recommended", "w_2024_10", "w_2024_09", "r27_0_0"]
c.LSSTSpawner.static_image_digests = {{"recommended": "{DIGEST}", "w_2024_10": "{DIGEST}"}}
c.LSSTSpawner.node_selector = {{"pool": "labs"}}  # a KubeSpawner trait: must survive
"""
IDENTITY = {
    "username": "rra",
    "uid": 4137,
    "gid": 4137,
    "groups": [{"name": "rra", "gid": 4137}, {"name": "lsst-sqre", "gid": 3010}],
    "name": "Russ Allbery",
    "email": "rra@example.org",
    "git_token": "gho_render_test_token_value",
}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "config.py").write_text(CONFIG)
    (tmp_path / "auth.json").write_text(json.dumps({"identity": IDENTITY}))
    (tmp_path / "options.json").write_text(json.dumps({"image": "w_2024_10", "size": "large"}))
    return {name: str(tmp_path / name) for name in ("config.py", "auth.json", "options.json")}


def render(files: dict[str, str], *extra: str) -> list[str]:
    return [
        "render-pod", "-f", files["config.py"], "--user", "rra",
        "--auth-state", files["auth.json"], *extra,
    ]  # fmt: skip


def test_render_pod_prints_the_secret_and_the_pod(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*render(files), "--options", files["options.json"], "--format", "yaml"]) == 0
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [o["kind"] for o in objects] == ["Secret", "Pod"]
    for obj in objects:
        kubernetes_validate.validate(obj, "1.30", strict=True)
        assert obj["metadata"]["namespace"] == "labs"
    secret, pod = objects
    assert secret["metadata"]["name"] == "nb-rra-secret"
    files = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert "rra:x:4137:4137:Russ Allbery:" in files["passwd"]
    assert "lsst-sqre:x:3010:rra" in files["group"]
    container = pod["spec"]["containers"][0]
    assert container["image"] == f"ghcr.io/lsst-sqre/sciplat-lab:w_2024_10@{DIGEST}"
    assert container["securityContext"]["runAsUser"] == 4137
    assert pod["spec"]["securityContext"]["supplementalGroups"] == [4137, 3010]
    assert pod["spec"]["nodeSelector"] == {"pool": "labs"}
    assert "envFrom" not in container
    in_pod = {e["name"]: e for e in container["env"]}
    assert in_pod["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "nb-rra-secret"
    assert in_pod["CONTAINER_SIZE"]["value"].startswith("large")
    # KubeSpawner's own variables reach the lab too.
    env = resolve_lab_env(objects)
    assert env["JUPYTERHUB_USER"] == "rra"
    assert env["JUPYTERHUB_API_TOKEN"] == RENDERED_API_TOKEN
    assert env["CONTAINER_SIZE"] == in_pod["CONTAINER_SIZE"]["value"]
    text = json.dumps(pod)
    assert RENDERED_API_TOKEN not in text
    assert IDENTITY["git_token"] not in text
    assert secret["metadata"]["name"] == "nb-rra-secret"


def test_render_pod_json_and_defaults(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*render(files), "--format", "json"]) == 0
    objects = json.loads(capsys.readouterr().out)
    container = objects[1]["spec"]["containers"][0]
    assert container["image"] == f"ghcr.io/lsst-sqre/sciplat-lab:recommended@{DIGEST}"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"image": "other.registry/x:w_2024_10"}, "rejected:"),
        ({"image": "w_2024_10", "size": "enormous"}, "rejected:"),
        ({"image": "w_2024_10", "shell": "/bin/sh"}, "rejected:"),
    ],
)
def test_render_pod_rejects_bad_options(
    files: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: dict[str, str],
    message: str,
) -> None:
    (tmp_path / "bad.json").write_text(json.dumps(options))
    assert main([*render(files), "--options", str(tmp_path / "bad.json")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


@pytest.mark.parametrize(
    ("identity_change", "message"),
    [
        ({"uid": 0}, "uid"),
        ({"username": "evil\nroot"}, "username"),
        ({"groups": [{"name": "a:b", "gid": 5}]}, "groups[0].name"),
    ],
)
def test_render_pod_rejects_bad_identities(
    files: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    identity_change: dict[str, object],
    message: str,
) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"identity": {**IDENTITY, **identity_change}}))
    args = render(files)
    args[args.index(files["auth.json"])] = str(tmp_path / "bad.json")
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Cannot start a lab for rra" in captured.err
    assert message in captured.err


@pytest.mark.parametrize("auth_state", [["identity"], "identity", 42])
def test_render_pod_rejects_a_malformed_auth_state(
    files: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    auth_state: object,
) -> None:
    (tmp_path / "bad.json").write_text(json.dumps(auth_state))
    args = render(files)
    args[args.index(files["auth.json"])] = str(tmp_path / "bad.json")
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Cannot start a lab for rra: auth_state must be a JSON object holding 'identity'" in (
        captured.err
    )


def test_render_pod_without_auth_state_uses_the_example_identity(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from lsst_spawner.auth.example import example_identity

    args = ["render-pod", "-f", files["config.py"], "--user", "vera", "--format", "json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "using an example identity for vera" in captured.err
    pod = json.loads(captured.out)[1]
    assert pod["spec"]["securityContext"]["runAsUser"] == example_identity("vera").uid


def test_render_pod_unreadable_files(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = render(files)
    args[args.index(files["auth.json"])] = "/nonexistent/auth.json"
    assert main(args) == 1
    assert "cannot read auth state file" in capsys.readouterr().err
