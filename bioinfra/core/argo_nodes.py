"""status.compressedNodes: the nodes of a large Workflow, as the Argo v3.7 controller stores them.

Argo keeps a Workflow in one Kubernetes object. Before each write the controller measures the JSON of
the whole Workflow (workflow/packer/packer.go `getSize`) against 1 MiB (`getMaxWorkflowSize`, the
MAX_WORKFLOW_SIZE environment variable); when it is larger, `compressWorkflow` marshals status.nodes to
JSON, stores it gzipped and base64-encoded (util/file/fileutil.go `CompressEncodeString`:
base64.StdEncoding of pgzip/gzip output) in status.compressedNodes, and empties status.nodes
(workflow/hydrator/hydrator.go `Dehydrate` calls `CompressWorkflowIfNeeded`). Readers undo it
(`DecompressWorkflow`: only when status.nodes is empty and compressedNodes is not). bioinfra's
`--samples` runs reach it from about 90 chunks, cellprofiler screens from about 260 batches.

The blob comes from the cluster, so it is decoded with bounds: a corrupt or hostile one (a gzip bomb)
fails with a ClusterDataError naming the Workflow, never with a traceback or gigabytes of memory.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

from bioinfra.errors import BioinfraError

# The controller never writes more than MAX_WORKFLOW_SIZE (1 MiB by default) of Workflow, and the API
# server refuses objects over its request limit (3 MiB by default, etcd's 1.5 MiB in practice): a
# longer blob is not one Argo wrote.
MAX_ENCODED = 8 * 1024 * 1024
# Node JSON compresses about 15-25 times (tests/argo_status.py: the widest run bioinfra allows, every
# child retried once, is ~12 MB of JSON); 256 MiB leaves room for any Workflow Argo can store and stops
# a bomb long before it can hurt.
MAX_INFLATED = 256 * 1024 * 1024
_CHUNK = 1024 * 1024


class ClusterDataError(BioinfraError):
    """What the cluster returned cannot be read (a Workflow's compressed status is corrupt)."""


def inflate_nodes(workflow: dict[str, Any], *, max_inflated: int = MAX_INFLATED) -> dict[str, Any]:
    """`workflow` with status.nodes decoded from status.compressedNodes when Argo compressed them (as
    packer.DecompressWorkflow does: only when status.nodes is empty); otherwise `workflow` itself.
    The input is not changed."""
    status = workflow.get("status") if isinstance(workflow, dict) else None
    if not isinstance(status, dict):
        return workflow
    blob = status.get("compressedNodes")
    if not blob or status.get("nodes"):
        return workflow
    name = (workflow.get("metadata") or {}).get("name", "?")
    nodes = decode_nodes(blob, name, max_inflated=max_inflated)
    rest = {k: v for k, v in status.items() if k != "compressedNodes"}
    return {**workflow, "status": {**rest, "nodes": nodes}}


def decode_nodes(blob: Any, name: str = "?", *, max_inflated: int = MAX_INFLATED) -> dict[str, Any]:
    """base64 -> gzip (one or more members, as pgzip may write) -> JSON object of nodes, bounded."""
    def bad(why: str) -> ClusterDataError:
        return ClusterDataError(
            f"Workflow {name}: its status.compressedNodes cannot be read ({why})",
            hint="the Workflow object is corrupt or was not written by Argo's controller; "
                 "`kubectl -n bioinfra get workflow " + name + " -o yaml` shows it",
        )

    if not isinstance(blob, str):
        raise bad(f"a {type(blob).__name__}, not a base64 string")
    if len(blob) > MAX_ENCODED:
        raise bad(f"{len(blob):,} characters, more than any Workflow Argo stores")
    try:
        packed = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise bad("not base64") from None
    raw = bytearray()
    data = packed
    try:
        while data:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip only, as Argo v3.7 writes
            while not inflater.eof:
                chunk = inflater.decompress(data, _CHUNK)
                raw += chunk
                if len(raw) > max_inflated:
                    raise bad(f"more than {max_inflated:,} bytes once decompressed")
                data = inflater.unconsumed_tail
                if not data and not chunk:
                    raise bad("the gzip stream is truncated")
            data = inflater.unused_data
    except zlib.error as exc:
        raise bad(f"not gzip: {exc}") from None
    try:
        nodes = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise bad("not JSON once decompressed") from None
    if not isinstance(nodes, dict):
        raise bad(f"a JSON {type(nodes).__name__}, not an object of nodes")
    return nodes
