"""The cluster backend's staging (bioinfra.engine.cluster): what each input uploads into the workspace
and what is said, with a stand-in object store (the cluster paths through the CLI, against kmock and
moto, are tests/integration/test_cluster_*.py)."""

from __future__ import annotations

from pathlib import Path

from bioinfra.engine.cluster import local_files, submission, upload_inputs
from bioinfra.engine.inputs import CheckedInput, RemoteInput, StagedFile
from bioinfra.engine.spec import InputSpec
from bioinfra.files import sha256_file


class Store:
    """What upload_inputs uses of the workspace store: has(key, sha256), upload(path, key, sha256)."""

    def __init__(self, present: dict[str, str] | None = None) -> None:
        self.objects: dict[str, str] = dict(present or {})
        self.uploaded: list[str] = []

    def has(self, key: str, sha256: str) -> bool:
        return self.objects.get(key) == sha256

    def upload(self, path: Path, key: str, sha256: str, progress=None) -> None:
        assert path.is_file() and sha256_file(path) == sha256
        self.objects[key] = sha256
        self.uploaded.append(key)


def _files(folder: Path, names: list[str]) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"{name}\n")


def test_each_input_uploads_its_files_by_content_and_says_so_once_for_many(tmp_path: Path) -> None:
    images, data = tmp_path / "images", tmp_path / "data"
    _files(images, ["a.png", "b.png", "unnamed.png"])
    _files(data, ["x.txt", "sub/y.txt"])
    (tmp_path / "ref.fa").write_text(">r\nACGT\n")
    ref_sha = sha256_file(tmp_path / "ref.fa")
    image_input = CheckedInput(InputSpec(name="images", type="image_folder", help="h"), images, "inputs/i/images",
                               [StagedFile("images", "inputs/i/images", images)])
    # Only the images the data file names are uploaded (check_inputs puts them in extra["files"]).
    image_input.extra["files"] = [StagedFile("image", f"inputs/i/images/{n}", images / n) for n in ("a.png", "b.png")]
    checked = {
        "images": image_input,
        "data": CheckedInput(InputSpec(name="data", type="folder", help="h"), data, "inputs/d/data",
                             [StagedFile("data", "inputs/d/data", data)]),
        "reference": CheckedInput(InputSpec(name="reference", type="fasta", help="h"), tmp_path / "ref.fa",
                                  "references/r/reference.fa",
                                  [StagedFile("reference", "references/r/reference.fa", tmp_path / "ref.fa", ref_sha,
                                              8)]),
        "r1": CheckedInput(InputSpec(name="r1", type="fastq", help="h"), None, "inputs/remote-1/s_R1.fastq.gz",
                           [StagedFile("r1", "inputs/remote-1/s_R1.fastq.gz",
                                       remote=RemoteInput("s3://b/s_R1.fastq.gz", "b", "s_R1.fastq.gz"))]),
        "sheet": CheckedInput(InputSpec(name="samples", type="sample_sheet", help="h"), None, "{run_dir}/sheet.tsv",
                              [StagedFile("samples", "sheet.tsv", text="sample\n", in_run=True)]),
    }
    assert [f.workspace_path for f in local_files(checked["data"])] == ["inputs/d/data/sub/y.txt",
                                                                         "inputs/d/data/x.txt"]
    assert local_files(checked["r1"]) == [] and local_files(checked["sheet"]) == []
    said: list[str] = []
    store = Store({"inputs/i/images/a.png": sha256_file(images / "a.png")})
    upload_inputs(store, checked, said.append)
    assert sorted(store.uploaded) == ["inputs/d/data/sub/y.txt", "inputs/d/data/x.txt", "inputs/i/images/b.png",
                                      "references/r/reference.fa"]
    assert said == ["images: 1 uploaded, 1 already in the workspace (inputs/i/images/)",
                    "data: 2 uploaded, 0 already in the workspace (inputs/d/data/)",
                    "reference: uploaded to the workspace (references/r/reference.fa, 8 bytes)",
                    "r1: s3://b/s_R1.fastq.gz is read in place by the stage-in step"]
    said.clear()
    upload_inputs(store, checked, said.append)  # a second run uploads nothing
    assert said[:3] == ["images: 0 uploaded, 2 already in the workspace (inputs/i/images/)",
                        "data: 0 uploaded, 2 already in the workspace (inputs/d/data/)",
                        "reference: already in the workspace (references/r/reference.fa)"]


def test_the_submitted_workflow_is_named_after_the_run_in_the_namespace_and_labelled(monkeypatch) -> None:
    from bioinfra.core import cluster_run

    monkeypatch.setattr(cluster_run, "checked_submission", lambda wf: wf)
    wf = submission({"metadata": {"generateName": "p-", "labels": {"bioinfra.io/pipeline": "p"}}, "spec": {}}, "p-1_")
    # A label value may not end in '_': the run label is made one (core.cluster_run.run_label).
    assert wf["metadata"] == {"name": "p-1_", "namespace": "bioinfra",
                              "labels": {"bioinfra.io/pipeline": "p", "bioinfra.io/run-id": cluster_run.run_label("p-1_")}}
    assert cluster_run.run_label("p-1_").startswith("p-1")
