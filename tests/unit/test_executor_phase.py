"""The run's phase as Argo v3.7.18 decides a DAG's (bioinfra/executor/phase.py, a port of
assessDAGPhase in workflow/controller/dag.go): cases taken from what that function does, with the
node graph Argo builds (connectDependencies)."""

from __future__ import annotations

from bioinfra.executor.phase import assess_dag_phase, group_phase, leaf_tasks


def phase(upstream, phases, *, children=None, targets=None, fail_fast=True, continue_on=()):
    return assess_dag_phase(upstream, phases, children or {}, targets or leaf_tasks(upstream), fail_fast=fail_fast,
                            continues_on=lambda task, _phase: task in continue_on)


def test_a_failure_a_later_task_takes_does_not_fail_the_dag_when_the_leaf_succeeds():
    # examples/dag-continue-on-fail.yaml's D: depends "B.Failed && C".
    up = {"A": [], "B": ["A"], "C": ["A"], "D": ["B", "C"]}
    assert phase(up, {"A": "Succeeded", "B": "Failed", "C": "Succeeded", "D": "Succeeded"}) == "Succeeded"


def test_an_omitted_leaf_inherits_failed_in_preference_to_succeeded():
    # G depends "E && F": E failed, F succeeded, G Omitted -> reached with Failed and Succeeded: Failed.
    up = {"A": [], "E": ["A"], "F": ["A"], "G": ["E", "F"]}
    assert phase(up, {"A": "Succeeded", "E": "Failed", "F": "Succeeded", "G": "Omitted"}) == "Failed"
    # An Omitted/Skipped leaf on an all-succeeded branch is Succeeded (e.g. a `when: false` stage-out).
    up = {"A": [], "B": ["A"]}
    assert phase(up, {"A": "Succeeded", "B": "Skipped"}) == "Succeeded"
    assert phase(up, {"A": "Failed", "B": "Skipped"}) == "Failed"


def test_a_completed_node_resets_the_branch_phase():
    # A fails, B (depends A.Failed) succeeds, C Omitted after B: C inherits B's Succeeded, not A's Failed.
    up = {"A": [], "B": ["A"], "C": ["B"]}
    assert phase(up, {"A": "Failed", "B": "Succeeded", "C": "Omitted"}) == "Succeeded"


def test_targets_decide_not_the_leaves():
    up = {"report": [], "stage-out": ["report"]}
    phases = {"report": "Failed", "stage-out": "Succeeded"}
    assert phase(up, phases) == "Succeeded"  # the leaf alone
    assert phase(up, phases, targets=["report", "stage-out"]) == "Failed"


def test_continue_on_a_failed_target_does_not_fail_the_dag():
    assert phase({"A": []}, {"A": "Failed"}, continue_on={"A"}) == "Succeeded"
    assert phase({"A": []}, {"A": "Failed"}) == "Failed"


def test_a_target_never_created_keeps_the_dag_running_and_fail_fast_decides_the_order():
    up = {"A": [], "B": [], "C": ["B"]}  # targets A, C
    phases = {"A": "Failed", "B": "Succeeded", "C": None}
    assert phase(up, phases, fail_fast=True) == "Failed"  # a failed target ends it at once
    assert phase(up, phases, fail_fast=False) == "Running"  # first every target must be done
    assert phase(up, {"A": "Running", "B": "Succeeded", "C": None}) == "Running"


def test_a_fan_out_group_is_failed_if_a_child_is_and_its_children_lead_on():
    up = {"plan": [], "fan": ["plan"], "gather": ["fan"]}
    kids = {"fan": ["fan(0:a)", "fan(1:b)"]}
    base = {"plan": "Succeeded", "fan": "Failed", "fan(0:a)": "Succeeded", "fan(1:b)": "Failed"}
    assert group_phase(["Succeeded", "Skipped", "Failed"]) == "Failed" and group_phase(["Skipped"]) == "Succeeded"
    assert phase(up, {**base, "gather": "Succeeded"}, children=kids) == "Succeeded"
    assert phase(up, {**base, "gather": "Omitted"}, children=kids) == "Failed"
    assert phase(up, {**base, "fan(1:b)": "Running", "gather": None}, children=kids) == "Running"
