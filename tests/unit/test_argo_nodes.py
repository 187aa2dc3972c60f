"""status.compressedNodes (Argo v3.7 workflow/packer/packer.go): decoded before the status is read, bounded."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from pathlib import Path

import pytest

from bioinfra.core import cluster_run
from bioinfra.core.argo_nodes import ClusterDataError, decode_nodes, inflate_nodes
from tests.argo_status import MIB
from tests.unit.test_workflow_defects import widest_sheet


def packed(workflow: dict) -> dict:
    """As packer.compressWorkflow stores it: nodes JSON gzipped, base64, status.nodes emptied."""
    blob = base64.b64encode(gzip.compress(json.dumps(workflow["status"]["nodes"], separators=(",", ":")).encode()))
    status = {k: v for k, v in workflow["status"].items() if k != "nodes"}
    return {**workflow, "status": {**status, "compressedNodes": blob.decode()}}


def test_a_default_200_chunk_run_stored_compressed_reads_as_the_uncompressed_one():
    raw = widest_sheet(200)
    assert len(json.dumps(raw, separators=(",", ":"))) > MIB  # Argo compresses it
    stored = packed(raw)
    tasks = cluster_run.dag_tasks(stored)
    states = cluster_run.task_states(stored, tasks, Path("logs"), 1)
    assert len([s for s in states if "(" in s]) == 3 * 200
    assert {k: (v.phase, v.attempts) for k, v in states.items()} == {
        k: (v.phase, v.attempts) for k, v in cluster_run.task_states(raw, tasks, Path("logs"), 1).items()}


def test_nodes_already_there_win_as_in_decompress_workflow():
    wf = {"metadata": {"name": "w"}, "status": {"nodes": {"a": {"id": "a"}}, "compressedNodes": "!!"}}
    assert inflate_nodes(wf) is wf


@pytest.mark.parametrize("blob, why", [
    ("not base64!", "not base64"),
    (base64.b64encode(b"plain text").decode(), "not gzip"),
    (base64.b64encode(gzip.compress(b"[1,2]")).decode(), "not an object of nodes"),
    (base64.b64encode(gzip.compress(b"{")).decode(), "not JSON"),
    (base64.b64encode(gzip.compress(b'{"a": 1}')[:-12]).decode(), "truncated"),
])
def test_a_corrupt_blob_is_a_clear_error(blob, why):
    with pytest.raises(ClusterDataError) as info:
        inflate_nodes({"metadata": {"name": "w"}, "status": {"compressedNodes": blob}})
    assert "Workflow w: its status.compressedNodes cannot be read" in info.value.message and why in info.value.message


def test_a_gzip_bomb_stops_at_the_bound_without_inflating_it():
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = bomb.compress(b"\0" * (64 * MIB)) + bomb.flush()  # 64 MiB of zeros in ~64 KB
    with pytest.raises(ClusterDataError, match="more than 8,388,608 bytes once decompressed"):
        decode_nodes(base64.b64encode(body).decode(), "w", max_inflated=8 * MIB)
