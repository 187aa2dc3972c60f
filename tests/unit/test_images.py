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
