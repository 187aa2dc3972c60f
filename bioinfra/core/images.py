"""`bioinfra images build`: build the tool images with the Docker SDK.

A tag is `<tool version>-<content hash of images/<name>/>` (plus `-bwa` for the bwa variant of the
aligner image), so a rebuild with nothing changed is a no-op: the tag already exists. What was
built is recorded in `<workspace>/images.json`; the local target's docker runtime renders its
Workflow with exactly those images.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from bioinfra.errors import BioinfraError, InputError
from bioinfra.files import write_json_atomic
from bioinfra.images import IMAGES, image_tag, images_root

Progress = Optional[Callable[[str, int, int, str], None]]  # image, step, steps, line
_STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)")


class ImageBuildError(BioinfraError):
    pass


@dataclass(frozen=True)
class BuiltImage:
    name: str
    ref: str
    image_id: str
    cached: bool
    seconds: float
    aligner: Optional[str] = None


def records_path(workspace: Path) -> Path:
    return workspace / "images.json"


def read_records(workspace: Path) -> dict[str, Any]:
    try:
        return json.loads(records_path(workspace).read_text())
    except (OSError, ValueError):
        return {}


def build_images(
    client: Any,
    names: list[str],
    *,
    registry: str,
    base_image: Optional[str],
    aligner: str,
    workspace: Path,
    progress: Progress = None,
    extra_ca: Optional[Path] = None,
    no_cache: bool = False,
) -> list[BuiltImage]:
    """Build each image unless its tag exists (`no_cache`: always, from scratch)."""
    unknown = [n for n in names if n not in IMAGES]
    if unknown:
        raise InputError(f"unknown image(s): {', '.join(unknown)}; known: {', '.join(IMAGES)}")
    import docker  # the SDK; callers got `client` from bioinfra.adaptors.docker

    records = read_records(workspace)
    built = []
    for name in names:
        variant = aligner if name == "bwa-mem2" else None
        ref = f"{registry.rstrip('/')}/{name}:{image_tag(name, variant)}"
        t0 = time.monotonic()
        try:
            if no_cache:
                raise docker.errors.ImageNotFound(ref)
            image = client.images.get(ref)
            cached = True
        except docker.errors.ImageNotFound:
            image = _build(client, name, ref, base_image, variant, progress, extra_ca, no_cache)
            cached = False
        result = BuiltImage(name, ref, image.id, cached, round(time.monotonic() - t0, 2), variant)
        built.append(result)
        records[name] = {
            "ref": ref,
            "id": image.id,
            "aligner": variant,
            "recorded": dt.datetime.now(dt.timezone.utc).isoformat(),
        }
        write_json_atomic(records_path(workspace), records)
    return built


def _build(
    client: Any, name: str, ref: str, base_image: Optional[str], aligner: Optional[str], progress: Progress,
    extra_ca: Optional[Path], no_cache: bool = False,
) -> Any:
    if extra_ca is None:
        return _build_context(client, images_root() / name, name, ref, base_image, aligner, progress, no_cache)
    # A TLS-intercepting proxy's CA goes into a copy of the context (images/NAME/extra-ca/), never
    # into the repository; the tag's content hash is of the repository folder, so it is unchanged.
    if not extra_ca.is_file():
        raise InputError(f"--extra-ca {extra_ca} is not a file")
    with tempfile.TemporaryDirectory(prefix=f"bioinfra-{name}-") as tmp:
        context = Path(tmp) / name
        shutil.copytree(images_root() / name, context)
        (context / "extra-ca").mkdir(exist_ok=True)
        shutil.copyfile(extra_ca, context / "extra-ca" / "extra-ca.crt")
        return _build_context(client, context, name, ref, base_image, aligner, progress, no_cache)


def _build_context(
    client: Any, context: Path, name: str, ref: str, base_image: Optional[str], aligner: Optional[str],
    progress: Progress, no_cache: bool = False,
) -> Any:
    buildargs = {}
    if base_image:
        buildargs["BASE_IMAGE"] = base_image
    if aligner:
        buildargs["ALIGNER"] = aligner
    image_id = None
    tail: list[str] = []
    step, steps = 0, 0
    # rm/forcerm: the API's default keeps intermediate containers, unlike `docker build`.
    for event in client.api.build(
        path=str(context), tag=ref, buildargs=buildargs, network_mode="host",
        rm=True, forcerm=True, decode=True, nocache=no_cache,
    ):
        if "error" in event:
            detail = (event.get("errorDetail") or {}).get("message") or event["error"]
            lines = "\n".join(tail[-15:])
            raise ImageBuildError(f"building {name} failed: {detail.strip()}\n{lines}", hint=_hint(detail))
        if "stream" in event:
            line = event["stream"].rstrip("\n")
            if not line.strip():
                continue
            tail.append(line)
            m = _STEP_RE.match(line)
            if m:
                step, steps = int(m.group(1)), int(m.group(2))
            if progress:
                progress(name, step, steps, line)
        aux = event.get("aux") or {}
        if "ID" in aux:
            image_id = aux["ID"]
    if image_id is None:
        raise ImageBuildError(f"building {name} gave no image id:\n" + "\n".join(tail[-15:]))
    return client.images.get(ref)


def _hint(detail: str) -> Optional[str]:
    if "registry-1.docker.io" in detail or "pull access denied" in detail:
        return "the base image cannot be pulled here: pass --base-image (e.g. a local debootstrap import)"
    if "bwa-mem2" in detail:
        return "build with --aligner bwa to use bwa instead"
    return None


class ImagePushError(BioinfraError):
    pass


@dataclass(frozen=True)
class PushedImage:
    name: str
    ref: str
    digest: str

    @property
    def pinned(self) -> str:
        """repository@digest: exactly the image that was built, whatever the tag later points at."""
        return f"{self.ref.rsplit(':', 1)[0]}@{self.digest}"


PushProgress = Optional[Callable[[str, int, int], None]]  # image, bytes done, bytes total


def push_images(client: Any, names: list[str], *, workspace: Path, progress: PushProgress = None) -> list[PushedImage]:
    """Push recorded images to their registry; record each pushed digest."""
    records = read_records(workspace)
    missing = [n for n in names if n not in records]
    if missing:
        raise InputError(f"not built here yet: {', '.join(missing)}", hint="run `bioinfra images build` first")
    pushed = []
    for name in names:
        ref = records[name]["ref"]
        repository, tag = ref.rsplit(":", 1)
        layers: dict[str, tuple[int, int]] = {}
        digest = None
        for event in client.api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                detail = (event.get("errorDetail") or {}).get("message") or event["error"]
                raise ImagePushError(
                    f"pushing {ref} failed: {detail.strip()}",
                    hint="is the registry running and reachable? (`bioinfra up local --registry` starts one)",
                )
            detail = event.get("progressDetail") or {}
            if event.get("id") and detail.get("total"):
                layers[event["id"]] = (detail.get("current", 0), detail["total"])
                if progress:
                    progress(name, sum(c for c, _ in layers.values()), sum(t for _, t in layers.values()))
            aux = event.get("aux") or {}
            if "Digest" in aux:
                digest = aux["Digest"]
        if digest is None:
            raise ImagePushError(f"pushing {ref} reported no digest")
        result = PushedImage(name, ref, digest)
        pushed.append(result)
        records[name]["digest"] = digest
        records[name]["pinned"] = result.pinned
        write_json_atomic(records_path(workspace), records)
    return pushed


def cloud_registry(config: Any, names: list[str], *, aws_endpoint_url: Optional[str] = None) -> tuple[str, Any]:
    """(registry path, login) for pushing under the config's cloud target; repositories made on AWS.

    AWS: the ECR registry of the credentials' account (from GetAuthorizationToken), repositories
    `<name>/<image>` created if missing. GCP: REGION-docker.pkg.dev/PROJECT/NAME with an OAuth token
    (the repository itself is made by the gcp stack, issue #5).
    """
    from bioinfra.targets import get_target

    return get_target(config.target).registry_login(config, names, endpoint_url=aws_endpoint_url)


def retag(client: Any, names: list[str], *, registry: str, workspace: Path) -> None:
    """Tag recorded images under another registry (same tag) and record the new references."""
    records = read_records(workspace)
    for name in names:
        old = records[name]["ref"]
        tag = old.rsplit(":", 1)[1]
        repository = f"{registry.rstrip('/')}/{name}"
        client.images.get(old).tag(repository, tag=tag)
        records[name]["ref"] = f"{repository}:{tag}"
        records[name].pop("digest", None)
        records[name].pop("pinned", None)
    write_json_atomic(records_path(workspace), records)


def pushed_images(config: Any, target_name: str, workspace: Path) -> dict[str, str]:
    """name -> repository@digest of images pushed to this target's registry from this machine."""
    from bioinfra.targets import get_target

    target = get_target(target_name)
    return {
        name: record["pinned"]
        for name, record in read_records(workspace).items()
        if record.get("pinned") and target.serves(config, record["pinned"])
    }
