"""Image tags: tool version plus a content hash of the image's folder."""

from __future__ import annotations

import os

from bioinfra.images import IMAGES, content_hash, image_ref, image_tag, images_root


def test_hash_follows_content_not_timestamps(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "a.txt").write_text("a")
    first = content_hash(tmp_path)
    os.utime(tmp_path / "Dockerfile", (1, 1))
    assert content_hash(tmp_path) == first
    (tmp_path / "smoke" / "a.txt").write_text("b")
    assert content_hash(tmp_path) != first
    (tmp_path / "smoke" / "a.txt").write_text("a")
    (tmp_path / "smoke" / "a.txt").rename(tmp_path / "smoke" / "renamed.txt")
    assert content_hash(tmp_path) != first  # paths count too


def test_tags_name_the_tool_version_and_variant():
    for name, spec in IMAGES.items():
        assert (images_root() / name / "Dockerfile").is_file(), name
        assert image_tag(name).startswith(f"{spec.tool_version}-")
    assert image_tag("bwa-mem2", "bwa").startswith("bwa-0.7.17-")
    assert image_ref("localhost:5000/bioinfra/", "fastqc") == f"localhost:5000/bioinfra/fastqc:{image_tag('fastqc')}"


def test_targets_know_their_registries():
    from bioinfra.config import parse_config
    from bioinfra.targets import get_target

    aws = parse_config({"target": "aws", "region": "eu-west-2", "name": "lab"})
    ecr = "123456789012.dkr.ecr.eu-west-2.amazonaws.com/lab/fastqc@sha256:" + "0" * 64
    assert get_target("aws").serves(aws, ecr)
    assert not get_target("aws").serves(aws, ecr.replace("eu-west-2", "us-east-1"))
    gcp = parse_config({"target": "gcp", "region": "europe-west2", "project": "my-lab-project", "name": "lab"})
    assert get_target("gcp").serves(gcp, "europe-west2-docker.pkg.dev/my-lab-project/lab/fastqc@sha256:" + "0" * 64)
    assert not get_target("local").serves(gcp, "europe-west2-docker.pkg.dev/my-lab-project/lab/fastqc:1")
