"""`bioinfra doctor` on aws says who may use the EKS cluster (issue #18).

STAND-IN, named: a STUBBED boto3 client (botocore's Stubber on real eks and sts clients, so every
request and answer is checked against the AWS API models): moto 5.2.5 has no access-entry API
(ListAccessEntries is a 404 there) and drops a cluster's accessConfig. The CONFIG_MAP case is also
checked against moto in tests/integration/test_doctor.py.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from bioinfra.adaptors.aws import AwsSession, cluster_access
from bioinfra.config import parse_config
from bioinfra.core.doctor import FAILED, OK, WARNING, Doctor, steps_for
from bioinfra.targets.aws_cluster import check_access as check_aws_access  # the aws target's own check

ACCOUNT = "123456789012"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/team/Admin"  # an SSO-style role under a path
CI_USER = f"arn:aws:iam::{ACCOUNT}:user/ci"
NODE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/demo-node"


class StubbedAws(AwsSession):
    """An AwsSession whose clients are stubbed: each expected call is queued on its Stubber."""

    def __init__(self) -> None:
        session = boto3.session.Session(region_name="eu-west-2", aws_access_key_id="stub",
                                        aws_secret_access_key="stub")
        super().__init__(session, None)
        self.clients = {name: session.client(name) for name in ("eks", "sts")}
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}

    def client(self, service: str):
        return self.clients[service]


def stubbed(caller: str, mode: str | None, entries: list[str] | None) -> StubbedAws:
    aws = StubbedAws()
    aws.stubs["sts"].add_response("get_caller_identity", {"Arn": caller, "Account": ACCOUNT, "UserId": "AID"})
    cluster = {"name": "demo", "status": "ACTIVE"}
    if mode:
        cluster["accessConfig"] = {"authenticationMode": mode}
    aws.stubs["eks"].add_response("describe_cluster", {"cluster": cluster}, {"name": "demo"})
    if entries is not None:
        aws.stubs["eks"].add_response("list_access_entries", {"accessEntries": entries}, {"clusterName": "demo"})
    for stub in aws.stubs.values():
        stub.activate()
    return aws


def doctor(aws: StubbedAws) -> Doctor:
    config = parse_config({"name": "demo", "target": "aws", "region": "eu-west-2"}, source="test")
    return Doctor(config, None, session=aws, account=ACCOUNT)


def run(aws: StubbedAws):
    check = check_aws_access(doctor(aws))
    for stub in aws.stubs.values():
        stub.assert_no_pending_responses()  # every call made, in order, with those parameters
    return check


def test_a_role_session_matches_its_roles_entry_under_a_path():
    check = run(stubbed(f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice", "API_AND_CONFIG_MAP",
                        [ADMIN_ROLE, CI_USER, NODE_ROLE]))
    assert check.status == OK, check
    assert check.detail == (f"API_AND_CONFIG_MAP; access entries: {NODE_ROLE}, {ADMIN_ROLE}, {CI_USER}; "
                            f"you (arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice) are among them")


def test_a_user_matches_by_its_arn():
    assert run(stubbed(CI_USER, "API", [CI_USER])).status == OK


def test_a_caller_without_an_entry_fails_naming_the_arn_to_add_to_aws_admins():
    check = run(stubbed(f"arn:aws:sts::{ACCOUNT}:assumed-role/Analyst/bob", "API_AND_CONFIG_MAP",
                        [ADMIN_ROLE, NODE_ROLE]))
    assert check.status == FAILED
    assert f"you (arn:aws:sts::{ACCOUNT}:assumed-role/Analyst/bob) have no access entry" in check.detail
    assert ADMIN_ROLE in check.detail
    assert check.fix.startswith(f"ask someone with access to add arn:aws:iam::{ACCOUNT}:role/Analyst to aws.admins")
    assert "`bioinfra up aws`" in check.fix
    # another account's role of the same name is not you
    other = run(stubbed(f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice", "API",
                        ["arn:aws:iam::999999999999:role/team/Admin"]))
    assert other.status == FAILED


def test_config_map_mode_is_a_warning_saying_up_switches_it():
    """A cluster made before access entries: nobody can be listed (ListAccessEntries is not called)."""
    check = run(stubbed(f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice", None, None))
    assert check.status == WARNING and check.ok
    assert check.detail.startswith("authentication mode CONFIG_MAP: only the identity that created the cluster")
    assert "`bioinfra up aws` switches it to API_AND_CONFIG_MAP" in check.fix and "aws.admins" in check.fix


def test_entries_are_read_page_by_page():
    aws = StubbedAws()
    aws.stubs["sts"].add_response("get_caller_identity", {"Arn": CI_USER, "Account": ACCOUNT, "UserId": "AID"})
    aws.stubs["eks"].add_response("describe_cluster", {"cluster": {"name": "demo", "accessConfig": {
        "authenticationMode": "API"}}}, {"name": "demo"})
    aws.stubs["eks"].add_response("list_access_entries", {"accessEntries": [ADMIN_ROLE], "nextToken": "t"},
                                  {"clusterName": "demo"})
    aws.stubs["eks"].add_response("list_access_entries", {"accessEntries": [CI_USER]},
                                  {"clusterName": "demo", "nextToken": "t"})
    for stub in aws.stubs.values():
        stub.activate()
    assert cluster_access(aws, "demo").principals == [ADMIN_ROLE, CI_USER]


def test_the_access_check_runs_on_aws_after_the_cluster_check_only():
    aws_steps = [name for name, _, _ in steps_for(parse_config({"name": "d", "target": "aws", "region": "eu-west-2"}))]
    assert aws_steps[aws_steps.index("cluster") + 1] == "cluster access"
    assert dict((n, needs) for n, _, needs in steps_for(parse_config(
        {"name": "d", "target": "aws", "region": "eu-west-2"})))["cluster access"] == ("cluster",)
    gcp = parse_config({"name": "d", "target": "gcp", "project": "my-project-123", "region": "europe-west2"})
    assert "cluster access" not in [name for name, _, _ in steps_for(gcp)]


@pytest.mark.parametrize("caller", ["arn:aws:iam::123456789012:root", f"arn:aws:iam::{ACCOUNT}:user/x/ci"])
def test_other_callers_match_only_exactly(caller):
    assert run(stubbed(caller, "API", [CI_USER])).status == FAILED
