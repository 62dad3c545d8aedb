"""The running-labs view's join of the hub's servers and the lab pods (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from lsst_spawner.editor.labs import join_running_labs

DIGEST = "sha256:" + "e" * 64


def test_servers_are_joined_with_their_pods() -> None:
    users = [
        {
            "name": "annie",
            "servers": {
                "": {
                    "started": "2026-12-02T01:00:00.000000Z",
                    "last_activity": "2026-12-02T02:30:00Z",
                    "user_options": {"image": "w_2024_04", "size": "gpu"},
                }
            },
        },
        {"name": "bob", "servers": {"big": {"user_options": {"image_class": "latest-weekly"}}}},
        {"name": "carl", "servers": {}},
    ]
    pods = [
        {
            "metadata": {"name": "nb-annie", "annotations": {"hub.jupyter.org/username": "annie"}},
            "spec": {
                "nodeName": "gpu-node-1",
                "containers": [{"name": "notebook", "image": f"r.example/lab:w_2024_04@{DIGEST}"}],
            },
        },
        {  # another user's server of the same name: not bob's
            "metadata": {"name": "nb-x", "annotations": {"hub.jupyter.org/username": "x"}},
            "spec": {"containers": [{"name": "notebook", "image": "r.example:5000/lab:w"}]},
        },
        {
            "metadata": {
                "name": "nb-bob-big",
                "annotations": {
                    "hub.jupyter.org/username": "bob",
                    "hub.jupyter.org/servername": "big",
                },
            },
            "spec": {"containers": [{"name": "notebook", "image": "r.example:5000/lab"}]},
            "status": {
                "containerStatuses": [
                    {"name": "notebook", "imageID": f"docker-pullable://r.example/lab@{DIGEST}"}
                ]
            },
        },
    ]
    annie, bob = join_running_labs(users, pods)
    assert (annie.user, annie.server, annie.profile) == ("annie", "", "gpu")
    assert (annie.image_tag, annie.image_digest) == ("w_2024_04", DIGEST)
    assert (annie.node, annie.pod) == ("gpu-node-1", "nb-annie")
    assert annie.age(datetime(2026, 12, 2, 4, 12, tzinfo=UTC)) == "3h 12m"
    assert annie.last_activity == datetime(2026, 12, 2, 2, 30, tzinfo=UTC)
    # No tag in the pod's reference (a registry port is not a tag): the options say what.
    assert (bob.server, bob.image_tag, bob.image_digest) == ("big", "latest-weekly", DIGEST)
    assert (bob.node, bob.started, bob.age(datetime.now(UTC))) == ("", None, "")
