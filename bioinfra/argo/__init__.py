"""Argo Workflows as bioinfra sees it: one typed model of the objects we use (model.py) and the
admission rules the Argo v3.7 controller applies when a Workflow is submitted (validate.py).

Argo is the spec: what the v3.7 controller refuses, `bioinfra lint` refuses, with Argo's message.
"""

from bioinfra.argo.model import (
    DAG,
    DAGTask,
    NodeStatus,
    Parameter,
    RetryStrategy,
    Step,
    Template,
    Workflow,
)
from bioinfra.argo.validate import LintedDocument, LintProblem, check_workflow, lint, lint_yaml

__all__ = [
    "DAG",
    "DAGTask",
    "LintProblem",
    "LintedDocument",
    "NodeStatus",
    "Parameter",
    "RetryStrategy",
    "Step",
    "Template",
    "Workflow",
    "check_workflow",
    "lint",
    "lint_yaml",
]
