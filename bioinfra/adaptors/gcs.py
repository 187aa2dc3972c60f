"""GCS for target gcp: the results bucket around destroy (keep or empty, and take back), and the
remote-state bucket. Through google-cloud-storage (`GcpSession.storage()`), so $STORAGE_EMULATOR_HOST
points it at a stand-in such as gcp-storage-emulator.
"""

from __future__ import annotations

from typing import Any, Optional


def _not_found(exc: BaseException) -> bool:
    return type(exc).__name__ == "NotFound"  # google.api_core.exceptions.NotFound, imported lazily


def bucket_labels(session: Any, name: str) -> Optional[dict[str, str]]:
    """The bucket's labels, or None when there is no such bucket."""
    try:
        bucket = session.storage().get_bucket(name)
    except Exception as exc:
        if _not_found(exc):
            return None
        raise
    return dict(bucket.labels or {})


def results_bucket_problem(session: Any, bucket: str, cluster: str, label: str, *, suggestion: str) -> Optional[str]:
    """Why `up` could not make (or take back) the results bucket, or None: the name is free, or the
    bucket carries this cluster's label (in Terraform's state, or kept by a `destroy` and taken back by
    adopt_kept). Bucket names are global across every project, so a taken name would fail the storage
    stack only after the network and the cluster (issue #18.6). buckets.get: 404 no such bucket, 403 it
    exists and the caller may not read it (another project's), 200 readable: its labels say whose.
    Ref https://cloud.google.com/storage/docs/json_api/v1/buckets/get"""
    fix = f"set buckets.results in bioinfra.yaml to a name of your own (e.g. {suggestion})"
    try:
        found = session.storage().get_bucket(bucket)
    except Exception as exc:
        if _not_found(exc):
            return None
        if type(exc).__name__ == "Forbidden":  # google.api_core.exceptions.Forbidden, imported lazily
            return (f"buckets.results: bucket {bucket} exists and belongs to another project (GCS buckets.get: 403; "
                    f"bucket names are global) — {fix}")
        raise
    owner = (found.labels or {}).get(label)
    if owner == cluster:
        return None
    whose = f"cluster {owner}'s" if owner else "not made by bioinfra for this cluster"
    return (f"buckets.results: bucket {bucket} already exists in project number {found.project_number} ({whose}: "
            f"no label {label}={cluster}) — {fix}, or delete that bucket if it is unused")


def set_bucket_label(session: Any, name: str, key: str, value: Optional[str]) -> bool:
    """Set one label of a bucket (value None: take it off) by a PATCH of the bucket's labels; every other
    label stays. Returns False when there was nothing to change. The labels are read first and sent whole,
    a removed one as null: GCS merges a patch's `labels` into the bucket's and deletes a key sent as null
    (the google provider's bucket update does the same: "To delete a label using PATCH, we have to
    explicitly set its value to null", terraform-provider-google google/services/storage/
    resource_storage_bucket.go), and a stand-in that replaces the map whole keeps them too.
    Ref https://cloud.google.com/storage/docs/json_api/v1/buckets/patch"""
    bucket = session.storage().get_bucket(name)
    labels = dict(bucket.labels or {})
    if value is None:
        if key not in labels:
            return False
        del labels[key]
    elif labels.get(key) == value:
        return False
    else:
        labels[key] = value
    bucket.labels = labels  # google-cloud-storage sends a label dropped here as null on patch()
    bucket.patch()
    return True


def bucket_contents(session: Any, name: str) -> str:
    """"" for an empty (or absent) bucket, else e.g. "3 objects (2 live, 1 older versions)"."""
    try:
        blobs = list(session.storage().list_blobs(name, versions=True, max_results=1001))
    except Exception as exc:
        if _not_found(exc):
            return ""
        raise
    if not blobs:
        return ""
    # A noncurrent version has time_deleted set; a live one does not.
    live = sum(1 for b in blobs if b.time_deleted is None)
    count = f"{len(blobs)}+" if len(blobs) > 1000 else str(len(blobs))
    noun = "object version" if len(blobs) == 1 else "object versions"
    return f"{count} {noun} ({live} live, {len(blobs) - live} older)"


def empty_bucket(session: Any, name: str) -> int:
    """Delete every object version (live and noncurrent); returns how many."""
    client = session.storage()
    deleted = 0
    while True:
        blobs = list(client.list_blobs(name, versions=True, max_results=1000))
        if not blobs:
            return deleted
        bucket = client.bucket(name)
        for blob in blobs:
            try:
                bucket.delete_blob(blob.name, generation=blob.generation)
            except Exception as exc:
                if not _not_found(exc):
                    raise
            deleted += 1


def delete_bucket(session: Any, name: str) -> None:
    """Delete an empty bucket (absent is fine)."""
    try:
        session.storage().bucket(name).delete()
    except Exception as exc:
        if not _not_found(exc):
            raise


def bootstrap_state(session: Any, name: str, location: str, labels: dict[str, str]) -> list[str]:
    """Create the remote-state bucket if missing: versioned (every state kept), uniform access, public
    access prevented. The GCS backend locks state with a lock object, so no table is needed.
    Ref https://developer.hashicorp.com/terraform/language/backend/gcs. Returns what was created."""
    client = session.storage()
    created = []
    try:
        bucket = client.get_bucket(name)
    except Exception as exc:
        if not _not_found(exc):
            raise
        bucket = client.bucket(name)
        bucket.iam_configuration.uniform_bucket_level_access_enabled = True
        bucket.iam_configuration.public_access_prevention = "enforced"
        bucket.versioning_enabled = True
        bucket.labels = labels
        bucket = client.create_bucket(bucket, location=location)
        created.append(f"bucket {name}")
    if not bucket.versioning_enabled or (bucket.labels or {}) != {**(bucket.labels or {}), **labels}:
        bucket.versioning_enabled = True
        bucket.labels = {**(bucket.labels or {}), **labels}
        bucket.patch()
    return created
