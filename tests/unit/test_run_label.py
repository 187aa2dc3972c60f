"""The bioinfra.io/run-id label is a valid label value for every run id bioinfra accepts (#16)."""

from __future__ import annotations

import copy
import functools
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bioinfra.config import parse_config
from bioinfra.core import cluster_run
from bioinfra.engine.rundir import check_run_id

K8S_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
RUN_IDS = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z").filter(lambda r: ".." not in r)
AWS = parse_config({"target": "aws", "name": "lab-seq", "region": "eu-west-2"})


@functools.cache
def _rendered() -> dict:
    """fastqc-to-bwa rendered for aws by the engine (bundled sample; the cluster is not contacted)."""
    from bioinfra.engine.cluster import ClusterBackend
    from bioinfra.engine.engine import RunOptions, prepare
    from bioinfra.engine.spec import find_pipeline

    prepared = prepare(AWS, find_pipeline("fastqc-to-bwa"), {}, RunOptions(target="aws"),
                       ClusterBackend(AWS, None, "aws", offline=True), say=lambda _m: None, vet=False)
    return prepared.workflow


@settings(max_examples=200, deadline=None)
@example(run_id="run_")
@example(run_id="r" * 100)
@example(run_id="fastqc-to-bwa-20261206-050000-a1b2")
@given(run_id=RUN_IDS)
def test_every_run_id_gets_a_valid_run_id_label_on_the_submitted_workflow(run_id):
    from bioinfra.engine.cluster import submission

    check_run_id(run_id)
    # Only the label is under test: the Workflow name is Argo's own rule, checked by the lint.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cluster_run, "checked_submission", lambda wf: wf)
        workflow = submission(copy.deepcopy(_rendered()), run_id)
    label = workflow["metadata"]["labels"][cluster_run.RUN_LABEL]
    assert len(label) <= 63 and K8S_LABEL_VALUE.fullmatch(label), label
    assert label == cluster_run.run_label(run_id)  # what a selector by run id uses
    if len(run_id) <= 63 and K8S_LABEL_VALUE.fullmatch(run_id):
        assert label == run_id
