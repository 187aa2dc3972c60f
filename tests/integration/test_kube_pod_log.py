"""Pod logs come back as the text the container wrote (bioinfra.adaptors.kube.Kube.pod_log).

STAND-IN, named: the API server is kmock's emulator (tests/fakes/kube_api.py), answering
GET .../pods/{name}/log with text/plain bytes as kube-apiserver does (core/v1 readNamespacedPodLog).
The client is the real kubernetes package at the version pinned in pyproject.toml (36.0.0), whose
own decoding returns the repr of the bytes ("b'...'", kubernetes-client/python#2596) and, in older
versions, re-printed a log that parsed as JSON with Python quotes (kubernetes-client/python#811).
"""

from __future__ import annotations

import pytest

from bioinfra.adaptors.kube import connect

TEXT = {"Content-Type": "text/plain"}

LOGS = [
    "plain line\nsecond line\n",
    '{"level": "info", "msg": "a JSON log line"}',  # json-loaded and re-printed by older clients
    "[1, 2, 3]\n",
    "ünïcödé ✓ and a tab\there\n",
    "",
]


@pytest.mark.parametrize("text", LOGS, ids=["plain", "json", "json-list", "unicode", "empty"])
def test_pod_log_is_the_text_the_container_wrote(kube_api, tmp_path, text):
    api = kube_api
    api.create("/api/v1/namespaces/bioinfra/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "namespace": "bioinfra"},
        "spec": {"containers": [{"name": "main", "image": "x"}]}})
    api.call(lambda: api.k["get /api/v1/namespaces/bioinfra/pods/p1/log"] << TEXT << text.encode())
    kube = connect(api.kubeconfig(tmp_path / "kubeconfig"))
    assert kube.pod_log("bioinfra", "p1") == text
