"""The #16 point-4 defects of the rendered Workflows, each pinned by a test that failed before its fix:
the namespace `render` names, deadlines, label values, and the fan-out width cap."""

from __future__ import annotations

import pytest
import yaml

from bioinfra.core import cluster_run
from bioinfra.targets import addons
from tests.unit.test_no_code_injection import VARIANTS


# -- render names the namespace ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_workflow_names_the_namespace_the_controller_watches(name):
    """The addons stack installs Argo to watch WORKFLOW_NAMESPACE only; a Workflow `render` prints
    (and `kubectl create -f` would create) must land there, as the cluster path submits it."""
    workflow = yaml.safe_load(VARIANTS[name])
    assert workflow["metadata"]["namespace"] == addons.WORKFLOW_NAMESPACE == cluster_run.NAMESPACE
